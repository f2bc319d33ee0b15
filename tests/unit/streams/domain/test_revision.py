"""Policy revisions on the pure domain (issue #22): the preview of one person-year, the book
overlay, and a year's file stating only what changed since last year's."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from streams.domain.exceptions import PolicyError
from streams.domain.identity import validate_identity
from streams.domain.messages import PaymentAck
from streams.domain.person import PersonState
from streams.domain.revision import Budgeted, PreviewTotals, person_row, preview_year
from streams.policies import SHIPPED_POLICY_DIR, load_book, parse_documents
from tests.fixtures import event, new_id, payment, shipped_book

KEY = "ab" * 32


def _revised(tmp_path: Path, amount: int = 30000) -> Path:
    directory = tmp_path / "candidates"
    directory.mkdir()
    doc = yaml.safe_load((SHIPPED_POLICY_DIR / "410000-2025.yaml").read_text(encoding="utf-8"))
    doc["subsidies"]["MINIMUM_LIVING"]["subsidy"]["amount_fen"] = amount
    (directory / "410000-2025.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return directory


def _person(paid: bool) -> bytes:
    state = PersonState(new_id())
    ident = validate_identity(event(state.id_number, "MINIMUM_LIVING"))
    state.apply_identity(ident, shipped_book(), KEY, 1)
    if paid:
        state.apply_payment(PaymentAck.from_record(payment(state.id_number, 2025, 1, "PAID", 12000)), shipped_book(), 1)
    return state.dumps()


def test_a_raise_previews_a_new_version_for_the_unpaid_and_a_difference_for_the_paid(tmp_path):
    candidates = _revised(tmp_path)
    book = shipped_book().overlay(parse_documents([(str(p), p.read_text(encoding="utf-8"))
                                                   for p in candidates.glob("*.yaml")]))
    unpaid, paid = _person(False), _person(True)
    change = preview_year(unpaid, 2025, "410000", book, KEY, 2)
    assert change is not None and change.new_version and not change.frozen
    assert (change.old, change.new) == (Budgeted("MINIMUM_LIVING", "MEDICAL_ASSISTANCE_FUND", 28000),
                                        Budgeted("MINIMUM_LIVING", "MEDICAL_ASSISTANCE_FUND", 30000))
    frozen = preview_year(paid, 2025, "410000", book, KEY, 2)
    assert frozen is not None and frozen.frozen and not frozen.new_version
    assert frozen.old == frozen.new and frozen.raised_fen == 2000  # the year keeps what was paid
    assert PersonState.loads(unpaid).years[2025].version == 1  # the preview wrote nothing
    totals = PreviewTotals()
    totals.add(change)
    totals.add(frozen)
    doc = totals.doc()
    assert doc["by_class"] == [["MINIMUM_LIVING", 1, 28000, 30000]]
    assert doc["raised"] == [["MINIMUM_LIVING", 1, 2000]]
    assert doc["budget_old"] == [["MINIMUM_LIVING", "MEDICAL_ASSISTANCE_FUND", 2, 56000]]
    assert doc["budget_new"] == [["MINIMUM_LIVING", "MEDICAL_ASSISTANCE_FUND", 2, 58000]]
    row = person_row(PersonState.loads(unpaid).id_number, change)
    assert "********" in row[0] and row[3:7] == ["MINIMUM_LIVING", 28000, "MINIMUM_LIVING", 30000]


def test_an_unchanged_book_previews_no_change_and_another_region_nothing(tmp_path):
    same = shipped_book().overlay(parse_documents([(str(SHIPPED_POLICY_DIR / "410000-2025.yaml"),
                                                    (SHIPPED_POLICY_DIR / "410000-2025.yaml").read_text("utf-8"))]))
    stored = _person(False)
    change = preview_year(stored, 2025, "410000", same, KEY, 2)
    assert change is not None and change.old == change.new and not change.new_version and not change.raised_fen
    assert preview_year(stored, 2025, "510400", same, KEY, 2) is None


def test_a_candidate_that_fails_over_the_live_book_is_refused(tmp_path):
    doc = yaml.safe_load((SHIPPED_POLICY_DIR / "410000-2025.yaml").read_text(encoding="utf-8"))
    del doc["paid_year_revision"]
    with pytest.raises(PolicyError, match="paid_year_revision"):
        shipped_book().overlay([("candidates/410000-2025.yaml", doc)])


def test_a_year_may_state_only_what_changed_since_last_year(tmp_path):
    """``inherits: 410000-2025``: next year's Henan file is its window and its new 低保 amount."""
    directory = tmp_path / "policies"
    shutil.copytree(SHIPPED_POLICY_DIR, directory)
    next_year = {"region_code": "410000", "region_name": "河南省", "insurance_year": 2026, "inherits": "410000-2025",
                 "documents": ["豫医保办〔2024〕65号"],
                 "window": {"start": dt.date(2025, 9, 1), "end": dt.date(2025, 12, 31),
                            "reference": "豫医保办〔2024〕65号 三", "example": True},
                 "subsidies": {"MINIMUM_LIVING": {"subsidy": {"kind": "fixed", "amount_fen": 30000},
                                                  "funding_source": "MEDICAL_ASSISTANCE_FUND",
                                                  "reference": "豫医保办〔2024〕65号 三 (定额资助低保对象)",
                                                  "example": True}}}
    (directory / "410000-2026.yaml").write_text(yaml.safe_dump(next_year, allow_unicode=True), encoding="utf-8")
    book = load_book(directory)
    policy = book.lookup("410102", 2026)
    assert policy.spec.subsidies["MINIMUM_LIVING"].subsidy.amount_fen == 30000  # type: ignore[union-attr]
    assert policy.spec.premiums == book.lookup("410102", 2025).spec.premiums  # the rest is last year's
    assert policy.spec.window.end == dt.date(2025, 12, 31)
    # without its own window it would keep last year's: refused, naming the window
    del next_year["window"]
    (directory / "410000-2026.yaml").write_text(yaml.safe_dump(next_year, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError, match="window"):
        load_book(directory)
