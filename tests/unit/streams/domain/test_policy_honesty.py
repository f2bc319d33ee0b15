"""Policies as data, honestly marked: references quote the notice, ids follow content, state evolves."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import orjson
import pytest
import yaml

from connectors.dev.sample import make_id
from schemas import load_history
from schemas.codec import Codec
from streams.domain.identity import identity_from_command
from streams.domain.messages import PaymentAck
from streams.domain.person import PersonState
from streams.policies import SHIPPED_POLICY_DIR, load_book
from tests.fixtures import PANZHIHUA, event, new_id, shipped_book
from tests.unit.schemas.test_codec import FIXED_HEX_V1
from tests.unit.streams.domain.test_person import ident

NOTICES = SHIPPED_POLICY_DIR / "notices"
DOCUMENT_FILES = {  # document number -> the notice's text in notices/ (copies of shared/seeds/)
    "豫医保办〔2024〕65号": ["000_1236b123c9d65e63.txt"],
    "鲁医保发〔2024〕22号": ["001_91161b91381aeaa5.txt", "004_fd2bfb5f201e8903.txt"],
    "威医保发〔2024〕19号": ["001_91161b91381aeaa5.txt"],
    "渝医保发〔2019〕78号": ["002_d5d3c6946397f932.txt"],
    "攀医保〔2021〕58号": ["003_cb852ba9a59ff5aa.txt"],
}


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _references(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "reference":
                yield path, v
            else:
                yield from _references(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _references(v, f"{path}.{i}")


def _all_references():
    for path in sorted(SHIPPED_POLICY_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for where, ref in _references(doc):
            yield pytest.param(ref, id=f"{path.name}{where}")


@pytest.mark.parametrize("reference", _all_references())
def test_a_reference_quotes_only_words_that_are_in_the_notice(reference):
    document = reference.split(" ", 1)[0]
    assert document in DOCUMENT_FILES, f"{reference!r}: cites a document zhucan does not ship"
    if " (" not in reference:
        return  # a citation without a quotation
    quote = reference[reference.index(" (") + 2:reference.rindex(")")]
    texts = [_squeeze((NOTICES / name).read_text(encoding="utf-8")) for name in DOCUMENT_FILES[document]]
    for part in quote.split(" … "):
        assert any(_squeeze(part) in text for text in texts), f"{part!r} is not in {document}"


def test_the_notice_copies_are_the_seed_notices_unchanged():
    """The copies the references are checked against are the notices as published (SHA256SUMS was
    written from shared/seeds/); where shared/ is beside the checkout, byte for byte too."""
    import hashlib

    sums = dict(line.split()[::-1] for line in (NOTICES / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {f for files in DOCUMENT_FILES.values() for f in files}
    for name, digest in sums.items():
        assert hashlib.sha256((NOTICES / name).read_bytes()).hexdigest() == digest, name
    seeds = Path(__file__).resolve().parents[5] / "shared" / "seeds"
    for path in sorted(seeds.glob("*.txt")) if seeds.is_dir() else []:
        assert (NOTICES / path.name).read_bytes() == path.read_bytes(), path.name


def test_policy_id_follows_content_not_comments_or_notes(tmp_path):
    shutil.copytree(SHIPPED_POLICY_DIR, tmp_path / "p")
    path = tmp_path / "p" / "410000-2025.yaml"
    text = path.read_text(encoding="utf-8")
    before = load_book(tmp_path / "p").lookup("410102", 2025).policy_id
    path.write_text("# a new comment\n" + text.replace("note: 示例定额 280元", "note: 示例定额 280元 (edited)"),
                    encoding="utf-8")
    assert load_book(tmp_path / "p").lookup("410102", 2025).policy_id == before
    path.write_text(text.replace("amount_fen: 28000", "amount_fen: 29000"), encoding="utf-8")
    assert load_book(tmp_path / "p").lookup("410102", 2025).policy_id != before


def test_a_new_policy_id_with_the_same_figures_sends_tax_no_new_version(tmp_path):
    shutil.copytree(SHIPPED_POLICY_DIR, tmp_path / "p")
    path = tmp_path / "p" / "410000-2025.yaml"
    idn = new_id()
    state = PersonState(idn)

    assert state.apply_identity(ident(event(idn, "MINIMUM_LIVING")), load_book(tmp_path / "p"), "k" * 64, 1)
    path.write_text(path.read_text(encoding="utf-8").replace("文件规定由各地", "(edited) 文件规定由各地")
                    .replace("(居民医保集中缴费期)", "(集中缴费期)"), encoding="utf-8")
    edited = load_book(tmp_path / "p")
    assert edited.lookup("410102", 2025).policy_id != shipped_book().lookup("410102", 2025).policy_id
    assert state.apply_identity(ident(event(idn, "MONITORED_RELAPSE_RISK")), edited, "k" * 64, 2) == []


def test_every_example_value_is_listed_and_marked_in_the_basis():
    policy = shipped_book().lookup("510402", 2022)
    assert {"premiums.1", "premiums.2", "window", "outside_window", "child_age_below"} <= set(policy.spec.examples())
    idn = new_id("510402")

    (fee,) = PersonState(idn).apply_identity(ident(event(idn, "MINIMUM_LIVING", region=PANZHIHUA)), shipped_book(),
                                             "k" * 64, 1)
    assert "[示例值]" in fee.basis  # the level-1 premium is an example value


# -- state that can evolve ------------------------------------------------------------------
V1_STATE = {  # a person as the worker stored it before the timeline (STATE_VERSION 1, by field position)
    "i": make_id("410102", dt.date(1970, 1, 1), 12), "n": "测试", "s": ["ev-1", "ack:a1:0123abcd"], "d": False, "e": {},
    "h": {"CIVIL_AFFAIRS/MINIMUM_LIVING": ["CIVIL_AFFAIRS", "MINIMUM_LIVING", "410102", "2024-06-01",
                                           1717200000000, False, 2025, False]},
    "y": {"2025": {"version": 1, "fingerprint":
                   "MINIMUM_LIVING|MEDICAL_ASSISTANCE_FUND|1|40000|28000|12000|DIFFERENCE|410000-2025@6f1e2d3c4b5a",
                   "mode": "DIFFERENCE", "category": "MINIMUM_LIVING", "funding_source": "MEDICAL_ASSISTANCE_FUND",
                   "premium_fen": 40000, "subsidy_fen": 28000, "payable_fen": 12000, "region_code": "410102",
                   "due": "2024-12-31"}},
}


def test_a_state_of_the_previous_encoding_is_read_and_decides_the_same():
    state = PersonState.loads(orjson.dumps(V1_STATE))
    assert set(state.identities) == {"CIVIL_AFFAIRS/MINIMUM_LIVING"}
    assert state.identities["CIVIL_AFFAIRS/MINIMUM_LIVING"].since == dt.date(2024, 6, 1)
    rec = state.years[2025]
    assert (rec.version, rec.subsidy_fen, rec.policy_id) == (1, 28000, "410000-2025@6f1e2d3c4b5a")
    # the same identities under a policy file of another revision: no new version for tax

    assert state.apply_identity(ident(event(state.id_number, "MONITORED_RELAPSE_RISK")), shipped_book(), "k" * 64, 1) == []
    again = PersonState.loads(state.dumps())
    assert orjson.loads(again.dumps())["v"] == 3 and again.years[2025].version == 1


def test_an_identity_event_of_the_pre_addition_schema_is_decided_as_before():
    _, raw = Codec().decode(bytes.fromhex(FIXED_HEX_V1))
    ident = identity_from_command(raw)
    assert ident.previous_category is None and ident.living_status is None
    (fee,) = PersonState(ident.id_number).apply_identity(ident, shipped_book(), "k" * 64, 1)
    assert (fee.insurance_year, fee.subsidy_fen, fee.payable_fen) == (2025, 28000, 12000)


def test_a_payment_status_of_the_pre_addition_schema_is_decided_as_before():
    old = next(s for s in load_history() if s.name == "PaymentStatus")
    codec = Codec()

    idn = new_id()
    state = PersonState(idn)
    state.apply_identity(ident(event(idn, "MINIMUM_LIVING")), shipped_book(), "k" * 64, 1)
    body = {"ack_id": "old-1", "id_number": idn, "insurance_year": 2025, "fee_version": 1, "status": "PAID",
            "amount_fen": 12000, "tax_reference": "T", "acted_at": dt.datetime(2024, 10, 1, tzinfo=dt.UTC)}
    data = b"\xc3\x01" + old.fingerprint + codec.encode_body(old, body)
    name, ack = codec.decode(data, expect="PaymentStatus")
    assert name == "PaymentStatus" and ack["contribution_level"] is None
    assert state.apply_payment(PaymentAck.from_record(ack), shipped_book(), 2) == []
    assert state.years[2025].frozen and state.years[2025].frozen_figures().level == 1
