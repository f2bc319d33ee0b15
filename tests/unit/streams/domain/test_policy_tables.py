"""Table tests as data (OpenFisca style): one YAML file per region in ``tests/cases/``, each case a
person's timeline (identity events with their dates, tax acknowledgements, a policy file
added later, an operator's OPEN_YEAR) and the standard expected per insurance year, citing
the clause it checks. One test runs them all through the pure domain; the integration tier
shows the same rules on real Kafka.

A case::

    - name: ...
      clause: 豫医保办〔2024〕65号 三 (...)
      born: 2013-05-01            # optional: the birth date in the synthetic ID number
      steps:
        - identity: {category: MINIMUM_LIVING, effective: 2024-06-01}     # change, recorded, region,
                                                                           # student, previous_category,
                                                                           # living_status, event_id
        - payment: {year: 2025, version: 1, status: PAID, amount: 12000, level: 2}
        - policy: {add: 410000-2026}   # next year's file (a copy of this year's one year on)
        - open_year: {year: 2026, region: "410000"}
        - claim: {kind: CROSS_REGION_ENROLMENT, year: 2025, enrolled: "440106", paid: 40000}
                                       # claim_id, scheme, evidence, submitted (a date)
        - other_channel: {year: 2025, amount: 10000, funder: 慈善总会}   # record_id
      expect:
        2025: {version: 1, category: MINIMUM_LIVING, subsidy: 28000, payable: 12000, mode: DIFFERENCE}
        2026: none                     # no standard was ever issued for the year
      paid: {2025: {level: 2, subsidy: 32000, payable: 20000}}   # what the year froze at
      owed: {2025: 28000}              # money the payment left owed to the person
      reviews: [WAITING_FOR_POLICY]    # the review codes raised, in any order (exactly these)
      decisions:                       # every ClaimDecision, in order (exactly these)
        - {claim: c1, outcome: APPROVED, reasons: [], amount: 28000}   # code
      instructions:                    # every PaymentInstruction, in order (exactly these)
        - {kind: CROSS_REGION_SUBSIDY, amount: 28000, channel: SOCIAL_SECURITY_CARD, sms: false}
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.dev.sample import identity_event, make_id
from streams.domain.identity import Identity, validate_identity
from streams.domain.messages import (
    Claim,
    ClaimDecided,
    FeeStandardIssued,
    InstructionIssued,
    OtherChannel,
    PaymentAck,
    ReviewRaised,
)
from streams.domain.person import PersonState
from streams.policies import SHIPPED_POLICY_DIR, load_book
from tests.fixtures import SOURCE_OF

CASES_DIR = Path(__file__).resolve().parents[3] / "cases"
KEY = "cd" * 32
NOW = 1_800_000_000_000
FIELDS = {"version": "version", "category": "category", "level": "level", "premium": "premium_fen",
          "subsidy": "subsidy_fen", "payable": "payable_fen", "mode": "mode", "on_the_spot": "on_the_spot",
          "funding": "funding_source", "region": "region_code"}
_serial = itertools.count(1)


def load_cases() -> list[tuple[str, dict[str, Any]]]:
    """(id, case) of every case in tests/cases/*.yaml, each with its region filled in."""
    out = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            case.setdefault("region", doc["region"])
            out.append((f"{path.stem}: {case['name']}", case))
    return out


def case_id_number(case: dict[str, Any]) -> str:
    """A fresh synthetic ID number for the case's person (born on ``born``, in its region)."""
    return make_id(str(case["region"]), case.get("born") or dt.date(1970, 1, 1), next(_serial) % 1000)


CASE_POLICIES = Path(__file__).resolve().parents[3] / "cases" / "policies"


def shifted_policy(directory: Path, name: str) -> None:
    """Write ``<region>-<year>.yaml``: the case's own file when ``tests/cases/policies/`` has one
    (a revision), else a copy of the region's file for the year before, every date one year on
    (the way next year's notice usually reads, with the figures unchanged)."""
    own = CASE_POLICIES / f"{name}.yaml"
    if own.is_file():
        shutil.copyfile(own, directory / own.name)
        return
    region, year = name.split("-")
    doc = yaml.safe_load((directory / f"{region}-{int(year) - 1}.yaml").read_text(encoding="utf-8"))

    def shift(value: Any) -> Any:
        if isinstance(value, dt.date):
            return value.replace(year=value.year + 1)
        if isinstance(value, dict):
            return {k: shift(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shift(v) for v in value]
        return value

    doc = shift(doc)
    doc["insurance_year"] = int(year)
    (directory / f"{name}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")


def raw_identity(case: dict[str, Any], id_number: str, step: dict[str, Any], n: int) -> dict[str, Any]:
    """The IdentityEvent a department would send for an ``identity`` step (n: the step's number)."""
    effective = step["effective"]
    recorded = step.get("recorded") or effective
    if not isinstance(recorded, dt.datetime):
        recorded = dt.datetime.combine(recorded, dt.time(0, 0, n), tzinfo=dt.UTC)
    category = step["category"]
    raw = identity_event(
        event_id=step.get("event_id") or f"ev-{next(_serial)}", source=SOURCE_OF[category], id_number=id_number,
        name="测试", category=category, region=str(step.get("region") or case["region"]), effective=effective,
        occurred=recorded, change=step.get("change", "CERTIFIED"), is_student=bool(step.get("student", False)),
    )
    raw["previous_category"] = step.get("previous_category")
    raw["living_status"] = step.get("living_status")
    return raw


def raw_payment(id_number: str, body: dict[str, Any]) -> dict[str, Any]:
    """The PaymentStatus tax would send for a ``payment`` step."""
    return {"ack_id": body.get("ack_id") or f"ack-{next(_serial)}", "id_number": id_number,
            "insurance_year": body["year"], "fee_version": body["version"], "status": body["status"],
            "amount_fen": body["amount"], "tax_reference": "T", "contribution_level": body.get("level"),
            "acted_at": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)}


def raw_claim(case: dict[str, Any], id_number: str, body: dict[str, Any], n: int) -> dict[str, Any]:
    """The SubsidyClaim a county would send for a ``claim`` step."""
    submitted = body.get("submitted") or dt.date(body["year"], 3, 1)
    return {"claim_id": str(body.get("claim_id") or f"claim-{n}"), "kind": body["kind"], "id_number": id_number,
            "name": "测试", "insurance_year": body["year"],
            "enrolled_region_code": str(body.get("enrolled") or case["region"]),
            "scheme": body.get("scheme") or ("EMPLOYEE" if body["kind"] == "EMPLOYEE_INSURANCE" else "RESIDENT"),
            "amount_paid_fen": body["paid"], "paid_at": dt.datetime(body["year"] - 1, 12, 1, tzinfo=dt.UTC),
            "evidence": body.get("evidence", "T-1"),
            "submitted_at": dt.datetime.combine(submitted, dt.time(9), tzinfo=dt.UTC)}


def raw_other(id_number: str, body: dict[str, Any], n: int) -> dict[str, Any]:
    """The OtherChannelSubsidy another funder would send for an ``other_channel`` step."""
    return {"record_id": str(body.get("record_id") or f"other-{n}"), "funder": body.get("funder", "慈善总会"),
            "id_number": id_number, "insurance_year": body["year"], "amount_fen": body["amount"],
            "reported_at": dt.datetime(body["year"] - 1, 11, 1, tzinfo=dt.UTC)}


def check_money(case: dict[str, Any], decisions: list[dict[str, Any]], instructions: list[dict[str, Any]]) -> None:
    """The case's ``decisions`` and ``instructions`` (when it lists them) against the records
    (a case that lists neither expects none of either)."""
    want = case.get("decisions") or []
    assert len(decisions) == len(want), f"decisions: {[(d['claim_id'], d['outcome'], d['basis']) for d in decisions]}"
    for got, w in zip(decisions, want, strict=True):
        assert got["claim_id"].endswith(str(w["claim"])), (got["claim_id"], w)
        assert (got["outcome"], sorted(got["reasons"]), got["amount_fen"]) == (
            w["outcome"], sorted(w.get("reasons") or []), w.get("amount", 0)), got["basis"]
        assert got.get("code", "") == w.get("code", ""), got["basis"]
    want_i = case.get("instructions") or []
    assert len(instructions) == len(want_i), f"instructions: {[(i['kind'], i['amount_fen']) for i in instructions]}"
    for got, w in zip(instructions, want_i, strict=True):
        assert (got["kind"], got["amount_fen"], got["channel"], got["notify_sms"]) == (
            w["kind"], w["amount"], w["channel"], w.get("sms", False)), got["basis"]


def check_standards(case: dict[str, Any], standards: list[dict[str, Any]]) -> None:
    """The case's ``expect`` against the FeeStandard records issued to its person (every version)."""
    for year, want in (case.get("expect") or {}).items():
        of_year = sorted((f for f in standards if f["insurance_year"] == year), key=lambda f: f["version"])
        if want == "none":
            assert not of_year, f"{year}: expected no standard, got {[f['basis'] for f in of_year]}"
            continue
        assert of_year, f"{year}: no standard was issued"
        last = of_year[-1]
        got = {k: last[RECORD_FIELDS[k]] for k in want if k in RECORD_FIELDS}
        assert got == {k: v for k, v in want.items() if k in RECORD_FIELDS}, f"{year}: basis {last['basis']}"
        for text in want.get("basis", []):
            assert text in last["basis"], f"{year}: {text!r} not in basis {last['basis']!r}"
        assert [f["version"] for f in of_year] == list(range(1, last["version"] + 1)), f"{year}: versions"


RECORD_FIELDS = {"version": "version", "category": "category", "level": "contribution_level",
                 "premium": "premium_fen", "subsidy": "subsidy_fen", "payable": "payable_fen",
                 "mode": "payment_mode", "on_the_spot": "on_the_spot", "funding": "funding_source",
                 "region": "region_code"}


@pytest.mark.parametrize("case", [pytest.param(c, id=i) for i, c in load_cases()])
def test_policy_table(case: dict[str, Any], tmp_path: Path) -> None:
    assert case.get("clause"), "every case cites the clause it checks"
    policies = tmp_path / "policies"
    shutil.copytree(SHIPPED_POLICY_DIR, policies)
    book = load_book(policies)
    id_number = case_id_number(case)
    state = PersonState(id_number)
    effects: list[Any] = []
    opened: dict[str, int] = {}  # the years opened per region, as the worker keeps them per partition
    for n, step in enumerate(case["steps"], start=1):
        (kind, body), = step.items()
        if kind == "identity":
            ident = validate_identity(raw_identity(case, id_number, body, n))
            assert isinstance(ident, Identity), f"step {n}: {ident}"
            effects += state.apply_identity(ident, book, KEY, NOW, opened)
        elif kind == "payment":
            effects += state.apply_payment(PaymentAck.from_record(raw_payment(id_number, body)), book, NOW)
        elif kind == "policy":
            shifted_policy(policies, body["add"])
            book = load_book(policies)
        elif kind == "open_year":
            region = str(body["region"])
            effects += state.open_year(body["year"], region, book, KEY, NOW, f"cmd-{n}", opened)
            opened[region] = max(body["year"], opened.get(region, body["year"]))
        elif kind == "redecide":
            effects += state.redecide(body["year"], str(body["region"]), book, KEY, NOW, opened)
        elif kind == "claim":
            effects += state.apply_claim(Claim.from_record(raw_claim(case, id_number, body, n)), book, NOW, opened)
        elif kind == "other_channel":
            effects += state.apply_other_channel(OtherChannel.from_record(raw_other(id_number, body, n)), book, KEY,
                                                 NOW, opened)
        else:
            raise AssertionError(f"step {n}: unknown step {kind}")
        state = PersonState.loads(state.dumps())  # every step through the stored form, as the worker does

    check_standards(case, [e.to_record() for e in effects if isinstance(e, FeeStandardIssued)])
    check_money(case, [e.to_record() for e in effects if isinstance(e, ClaimDecided)],
                [e.to_record() for e in effects if isinstance(e, InstructionIssued)])
    for year in case.get("expect") or {}:  # the state agrees with what was published
        if case["expect"][year] != "none":
            assert state.years[year].version == max(e.version for e in effects
                                                     if isinstance(e, FeeStandardIssued) and e.insurance_year == year)
    for year, want in (case.get("paid") or {}).items():
        frozen = state.years[year].frozen_figures()
        assert frozen is not None, f"{year}: not frozen"
        got = {k: getattr(frozen, FIELDS[k]) for k in want}
        assert got == want, f"{year}: frozen at {frozen}"
    codes = sorted(e.code for e in effects if isinstance(e, ReviewRaised))
    assert codes == sorted(case.get("reviews") or []), [e.detail for e in effects if isinstance(e, ReviewRaised)]
    for year, amount in (case.get("owed") or {}).items():  # money the year keeps as owed to the person
        assert state.years[year].owed_fen == amount, f"{year}: owed {state.years[year].owed_fen}"
    amounts = case.get("review_amounts")
    if amounts:
        got_amounts = {e.code: e.amount_fen for e in effects if isinstance(e, ReviewRaised) and e.amount_fen}
        assert got_amounts == amounts
