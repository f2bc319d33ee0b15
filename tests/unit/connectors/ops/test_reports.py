"""The ledger's arithmetic without Kafka (connectors/ops/reports.py): records in, rows out."""

from __future__ import annotations

import datetime as dt

from connectors.ops.reports import coverage_rows, latest_suspected, ledger_rows, settlement_lines
from streams.domain.ids import person_key
from streams.domain.messages import FeeStandardIssued
from tests.fixtures import new_id, shipped_book

SECRET = b"reports-secret"
AS_OF = dt.datetime(2025, 1, 31, tzinfo=dt.UTC)


def fee(idn: str, version: int, *, region: str = "410102", category: str = "MINIMUM_LIVING", subsidy: int = 28000,
        mode: str = "DIFFERENCE", year: int = 2025) -> tuple[str, FeeStandardIssued]:
    return person_key(idn, SECRET), FeeStandardIssued.from_record({
        "message_id": f"m-{idn}-{version}", "id_number": idn, "name": "张三", "basis": "", "issued_at": 0,
        "version": version, "insurance_year": year, "payment_mode": mode, "region_code": region,
        "category": category, "funding_source": "MEDICAL_ASSISTANCE_FUND", "contribution_level": 1,
        "premium_fen": 40000, "subsidy_fen": subsidy, "payable_fen": 40000 - subsidy, "on_the_spot": False,
        "policy_id": "410000-2025@x"})


def ack(idn: str, version: int, status: str, amount: int = 12000, year: int = 2025) -> tuple[str, dict]:
    return "", {"id_number": idn, "insurance_year": year, "fee_version": version, "status": status,
                "amount_fen": amount, "contribution_level": None}


def test_the_ledger_reports_each_person_year_once_with_its_state():
    paid, rejected, silent, withdrawn = (new_id() for _ in range(4))
    fees = [fee(paid, 1, subsidy=20000), fee(paid, 2), fee(rejected, 1), fee(silent, 1),
            fee(withdrawn, 1), fee(withdrawn, 2, mode="WITHDRAWN", subsidy=0)]
    acks = [ack(paid, 1, "PAID", 20000), ack(rejected, 1, "REJECTED"), ack(paid, 2, "PAID")]
    rows = sorted((s, r.version, r.subsidy_fen) for r, s in ledger_rows(fees, acks, shipped_book(), SECRET))
    # the paid year froze at the version tax acted on first (v1, its subsidy), not v2; the withdrawn one is gone
    assert rows == [("NO_ANSWER", 1, 28000), ("PAID", 1, 20000), ("REJECTED", 1, 28000)]


def test_coverage_by_county_city_and_province():
    a, b, c = new_id("410102"), new_id("410103"), new_id("410202")
    fees = [fee(a, 1, region="410102"), fee(b, 1, region="410103"), fee(c, 1, region="410202")]
    rows = list(ledger_rows(fees, [ack(a, 1, "PAID")], shipped_book(), SECRET))
    by_city = {r.region_code: (r.live, r.enrolled) for r in coverage_rows(rows, shipped_book(), "city")}
    assert by_city == {"410100": (2, 1), "410200": (1, 0)}
    (province,) = coverage_rows(rows, shipped_book(), "province")
    assert (province.region_code, province.live, province.enrolled, province.meets_target) == ("410000", 3, 1, False)
    # the target is the region's policy data, with its clause (Henan's 99%)
    assert (province.target, province.target_reference) == (0.99, "豫医保办〔2024〕65号 一 (基本医保参保率稳定在99%以上)")
    assert [r.region_code for r in coverage_rows(rows, shipped_book())] == ["410102", "410103", "410202"]


def test_settlement_counts_the_enrolled_with_a_subsidy_per_class_and_fund():
    a, b, c, d = (new_id() for _ in range(4))
    fees = [fee(a, 1), fee(b, 1), fee(c, 1, category="EXTREME_POVERTY", subsidy=40000), fee(d, 1)]
    acks = [ack(a, 1, "PAID"), ack(b, 1, "PAID"), ack(c, 1, "ZERO_DECLARED", 0)]  # d never paid
    lines = settlement_lines(ledger_rows(fees, acks, shipped_book(), SECRET), AS_OF)
    assert [(x["category"], x["persons"], x["subsidy_fen"]) for x in lines] == [
        ("EXTREME_POVERTY", 1, 40000), ("MINIMUM_LIVING", 2, 56000)]


def test_the_suspected_list_keeps_the_latest_entry_per_person_and_year_in_the_region():
    records = [("k1", {"region_code": "410102", "insurance_year": 2025, "reason": "old"}),
               ("k1", {"region_code": "410102", "insurance_year": 2025, "reason": "new"}),
               ("k2", {"region_code": "370102", "insurance_year": 2025, "reason": "elsewhere"})]
    assert [r["reason"] for r in latest_suspected(records, "410000", 2025)] == ["new"]
    assert len(latest_suspected(records)) == 2


def instruction(idn: str, kind: str, amount: int, *, region: str = "410102", year: int = 2025,
                category: str = "MINIMUM_LIVING") -> dict:
    return {"instruction_id": f"i-{idn}-{kind}", "kind": kind, "cause_id": "c", "id_number": idn, "name": "张三",
            "region_code": region, "insurance_year": year, "amount_fen": amount, "category": category,
            "funding_source": "MEDICAL_ASSISTANCE_FUND", "channel": "SOCIAL_SECURITY_CARD", "notify_sms": False,
            "policy_id": "p", "basis": "", "issued_at": 0}


def test_settlement_shows_instructions_apart_and_never_also_as_an_enrolment_subsidy():
    """Issue #23, 5: a late-data refund keeps the frozen figures' subsidy (given through tax's
    refund); the person-year is settled once, under the instruction's kind."""
    enrolled, refunded, away = new_id("510402"), new_id("510402"), new_id("410102")
    fees = [fee(enrolled, 1, region="510402", subsidy=24000, year=2022),
            fee(refunded, 1, region="510402", subsidy=24000, year=2022)]
    acks = [ack(enrolled, 1, "PAID", 8000, year=2022), ack(refunded, 1, "ALREADY_PAID", 32000, year=2022)]
    moves = [instruction(refunded, "LATE_DATA_REFUND", 24000, region="510402", year=2022),
             instruction(away, "CROSS_REGION_SUBSIDY", 28000)]
    lines = settlement_lines(ledger_rows(fees, acks, shipped_book(), SECRET), AS_OF, moves, shipped_book())
    assert [(x["region_code"], x["kind"], x["persons"], x["subsidy_fen"], x["department"]) for x in lines] == [
        ("410102", "CROSS_REGION_SUBSIDY", 1, 28000, None),
        ("510402", "ENROLMENT_SUBSIDY", 1, 24000, None),
        ("510402", "LATE_DATA_REFUND", 1, 24000, None)]


def test_chongqing_settles_per_funding_department():
    """渝医保发〔2019〕78号 二(二)2 (资助参保部门分别形成资助汇总表): each line names the department."""
    low, veteran = new_id("500101"), new_id("500101")
    fees = [fee(low, 1, region="500101", subsidy=14000, year=2020),
            fee(veteran, 1, region="500101", category="ENTITLED_VETERAN", subsidy=28000, mode="ZERO_DECLARATION",
                year=2020)]
    acks = [ack(low, 1, "PAID", 14000, year=2020), ack(veteran, 1, "ZERO_DECLARED", 0, year=2020)]
    lines = settlement_lines(ledger_rows(fees, acks, shipped_book(), SECRET), AS_OF, (), shipped_book())
    assert {(x["category"], x["department"]) for x in lines} == {("MINIMUM_LIVING", "CIVIL_AFFAIRS"),
                                                                ("ENTITLED_VETERAN", "VETERANS")}


def test_the_budget_can_include_claims_paid_to_people_and_counts_each_person_year_once():
    from connectors.ops.reports import budget_rows

    home, away = new_id(), new_id()
    rows = list(ledger_rows([fee(home, 1), fee(away, 1)], [], shipped_book(), SECRET))
    plain = budget_rows(rows)
    assert [(r.kind, r.persons, r.subsidy_fen) for r in plain] == [("ENROLMENT_SUBSIDY", 2, 56000)]
    with_claims = budget_rows(rows, [instruction(away, "CROSS_REGION_SUBSIDY", 28000)])
    assert [(r.kind, r.persons, r.subsidy_fen) for r in with_claims] == [
        ("CROSS_REGION_SUBSIDY", 1, 28000), ("ENROLMENT_SUBSIDY", 1, 28000)]
