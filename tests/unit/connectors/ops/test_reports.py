"""The ledger's reports without Kafka (streams/domain/reports.py): the ledger's totals in, rows out."""

from __future__ import annotations

import datetime as dt

from streams.domain.ledger import LedgerLine, Totals, contributions, merge
from streams.domain.money import PaidOut
from streams.domain.reports import budget_rows, coverage_rows, latest_suspected, settlement_lines
from tests.fixtures import shipped_book

AS_OF = dt.datetime(2025, 1, 31, tzinfo=dt.UTC)


def line(*, region: str = "410102", category: str = "MINIMUM_LIVING", subsidy: int = 28000, state: str = "NO_ANSWER",
         paid: int | None = None, mode: str = "DIFFERENCE", instructed: int = 0) -> LedgerLine:
    return LedgerLine(region, category, "MEDICAL_ASSISTANCE_FUND", 1, 1, paid, state, 40000, subsidy, 40000 - subsidy,
                      False, None, None, "p", "", instructed, mode)


def totals(*people: tuple[dict[int, LedgerLine], list[PaidOut]]) -> Totals:
    out: Totals = {}
    for lines, paid_out in people:
        merge(out, contributions(lines, paid_out))
    return out


def test_coverage_by_county_city_and_province():
    t = totals(({2025: line(region="410102", state="PAID", paid=1)}, []), ({2025: line(region="410103")}, []),
               ({2025: line(region="410202")}, []))
    by_city = {r.region_code: (r.live, r.enrolled) for r in coverage_rows(t, shipped_book(), "city")}
    assert by_city == {"410100": (2, 1), "410200": (1, 0)}
    (province,) = coverage_rows(t, shipped_book(), "province")
    assert (province.region_code, province.live, province.enrolled, province.meets_target) == ("410000", 3, 1, False)
    # the target is the region's policy data, with its clause (Henan's 99%)
    assert (province.target, province.target_reference) == (0.99, "豫医保办〔2024〕65号 一 (基本医保参保率稳定在99%以上)")
    assert [r.region_code for r in coverage_rows(t, shipped_book())] == ["410102", "410103", "410202"]
    assert [r.region_code for r in coverage_rows(t, shipped_book(), region="410103")] == ["410103"]


def test_settlement_counts_the_enrolled_with_a_subsidy_per_class_and_fund():
    t = totals(({2025: line(state="PAID", paid=1)}, []), ({2025: line(state="PAID", paid=1)}, []),
               ({2025: line(category="EXTREME_POVERTY", subsidy=40000, state="ZERO_DECLARED", paid=1)}, []),
               ({2025: line()}, []),  # never paid
               ({2025: line(subsidy=0, state="PAID", paid=1, mode="WITHDRAWN")}, []))  # paid in full, no subsidy
    lines = settlement_lines(t, AS_OF)
    assert [(x["category"], x["persons"], x["subsidy_fen"]) for x in lines] == [
        ("EXTREME_POVERTY", 1, 40000), ("MINIMUM_LIVING", 2, 56000)]


def test_the_suspected_list_keeps_the_latest_entry_per_person_and_year_in_the_region():
    records = [("k1", {"region_code": "410102", "insurance_year": 2025, "reason": "old"}),
               ("k1", {"region_code": "410102", "insurance_year": 2025, "reason": "new"}),
               ("k2", {"region_code": "370102", "insurance_year": 2025, "reason": "elsewhere"})]
    assert [r["reason"] for r in latest_suspected(records, "410000", 2025)] == ["new"]
    assert len(latest_suspected(records)) == 2


def paid_out(kind: str, amount: int, *, region: str = "410102", year: int = 2025) -> PaidOut:
    return PaidOut(year, kind, "c", amount, f"i-{kind}", region, "MINIMUM_LIVING", "MEDICAL_ASSISTANCE_FUND")


def test_settlement_shows_instructions_apart_and_never_also_as_an_enrolment_subsidy():
    """Issue #23, 5: a late-data refund keeps the frozen figures' subsidy (given through tax's
    refund); the person-year is settled once, under the instruction's kind."""
    enrolled = ({2022: line(region="510402", subsidy=24000, state="PAID", paid=1)}, [])
    refund = paid_out("LATE_DATA_REFUND", 24000, region="510402", year=2022)
    refunded = ({2022: line(region="510402", subsidy=24000, state="ALREADY_PAID", paid=1, instructed=24000)}, [refund])
    away = ({}, [paid_out("CROSS_REGION_SUBSIDY", 28000)])  # a claim with no standard of its own
    lines = settlement_lines(totals(enrolled, refunded, away), AS_OF, shipped_book())
    assert [(x["region_code"], x["kind"], x["persons"], x["subsidy_fen"], x["department"]) for x in lines] == [
        ("410102", "CROSS_REGION_SUBSIDY", 1, 28000, None),
        ("510402", "ENROLMENT_SUBSIDY", 1, 24000, None),
        ("510402", "LATE_DATA_REFUND", 1, 24000, None)]


def test_chongqing_settles_per_funding_department():
    """渝医保发〔2019〕78号 二(二)2 (资助参保部门分别形成资助汇总表): each line names the department."""
    t = totals(({2020: line(region="500101", subsidy=14000, state="PAID", paid=1)}, []),
               ({2020: line(region="500101", category="ENTITLED_VETERAN", subsidy=28000, state="ZERO_DECLARED",
                            paid=1, mode="ZERO_DECLARATION")}, []))
    lines = settlement_lines(t, AS_OF, shipped_book())
    assert {(x["category"], x["department"]) for x in lines} == {("MINIMUM_LIVING", "CIVIL_AFFAIRS"),
                                                                ("ENTITLED_VETERAN", "VETERANS")}


def test_the_budget_can_include_claims_paid_to_people_and_counts_each_person_year_once():
    home = ({2025: line()}, [])
    away = ({2025: line(instructed=28000)}, [paid_out("CROSS_REGION_SUBSIDY", 28000)])
    t = totals(home, away)
    assert [(r.kind, r.persons, r.subsidy_fen) for r in budget_rows(t, "410000", 2025)] == [
        ("ENROLMENT_SUBSIDY", 2, 56000)]
    assert [(r.kind, r.persons, r.subsidy_fen) for r in budget_rows(t, "410000", 2025, with_claims=True)] == [
        ("CROSS_REGION_SUBSIDY", 1, 28000), ("ENROLMENT_SUBSIDY", 1, 28000)]
