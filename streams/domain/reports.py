"""The ledger's reports (coverage, settlement, budget), pure: the ledger's totals in, rows out.

The totals (``streams/domain/ledger.py``) are kept by the workers, per partition, as the sum of
their people's ledger lines (``streams/runtime/ledger.py``); ``connectors/ops/ledger.py`` reads
their snapshots (one record per partition) and calls these. A report costs the number of
counties x classes, never the number of people. ``recount`` counts them again from
``ledger.v1`` itself (``zhucan ledger check``)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.domain.enums import Category
from streams.domain.exceptions import NoPolicy
from streams.domain.ledger import (
    ENROLMENT,
    VALUES,
    WITHDRAWN,
    LedgerLine,
    Totals,
    TotalsKey,
    contributions,
    merge,
)
from streams.domain.money import PaidOut
from streams.domain.policy.spec import PolicyBook
from streams.domain.regions import Level, at_level, contains

Keyed = tuple[str, dict[str, Any]]  # (record key, decoded record)


@dataclass
class CoverageRow:
    region_code: str
    insurance_year: int
    live: int = 0  # people with a live (not withdrawn) standard
    enrolled: int = 0  # of those, with PAID / ZERO_DECLARED / ALREADY_PAID
    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # the region's 参保率 target for the year, and its clause (policy ``coverage_target``); None: no policy
    target: float | None = None
    target_reference: str = ""

    @property
    def rate(self) -> float:
        return self.enrolled / self.live if self.live else 1.0

    @property
    def meets_target(self) -> bool | None:
        return None if self.target is None else self.rate >= self.target

    def as_dict(self) -> dict[str, Any]:
        return {"region_code": self.region_code, "insurance_year": self.insurance_year, "live": self.live,
                "enrolled": self.enrolled, "rate": round(self.rate, 4), "target": self.target,
                "target_reference": self.target_reference, "meets_target": self.meets_target,
                "by_status": dict(self.by_status)}


@dataclass
class BudgetRow:
    category: str
    funding_source: str
    persons: int = 0
    subsidy_fen: int = 0
    kind: str = "ENROLMENT_SUBSIDY"  # or the kind of the payment instructions the row counts


def _in(key: TotalsKey, region: str | None, year: int | None) -> bool:
    return (not region or contains(region, key.county)) and (not year or key.year == year)


def coverage_rows(totals: Totals, book: PolicyBook, by: Level = "county", region: str | None = None,
                  year: int | None = None) -> list[CoverageRow]:
    """Coverage per region and year from the ledger's totals: enrolled (the year froze) / people
    with a standard that is not withdrawn, against the target of the policy that decides the
    region's year (``coverage_target``)."""
    out: dict[tuple[str, int], CoverageRow] = {}
    for key, values in totals.items():
        if key.kind != ENROLMENT or key.state == WITHDRAWN or not _in(key, region, year):
            continue
        group = at_level(key.county, by)
        row = out.get((group, key.year))
        if row is None:
            row = out[(group, key.year)] = CoverageRow(group, key.year)
            try:
                target = book.lookup(key.county, key.year).spec.coverage_target
                example = " [示例值: the notice gives no target]" if target.example else ""
                row.target, row.target_reference = target.value, target.reference + example
            except NoPolicy:
                pass
        persons = values[0]
        row.live += persons
        if key.enrolled:
            row.enrolled += persons
        row.by_status[key.state] += persons
    return [out[k] for k in sorted(out)]


def _department(book: PolicyBook | None, region: str, year: int, category: str) -> str | None:
    """The funding department of a class, where the region's policy settles by department."""
    if book is None:
        return None
    try:
        policy = book.lookup(region, year)
    except NoPolicy:
        return None
    if not policy.spec.money.settle_by_department.value:
        return None
    reporters = book.departments.reporters.get(Category(category), ())
    return reporters[0] if reporters else None


def settlement_lines(totals: Totals, as_of: dt.datetime, book: PolicyBook | None = None, region: str | None = None,
                     year: int | None = None) -> list[dict[str, Any]]:
    """资助汇总表: enrolled people and subsidy per county, year, class, funding source and
    on-the-spot flag (豫医保办〔2024〕65号 六; 渝医保发〔2019〕78号 二(二)2), as SettlementLine records,
    with the money paid to people by instructions on lines of their own ``kind``. Only the
    enrolled with a subsidy are settled (攀医保〔2021〕58号 六(二)); a person-year paid by an
    instruction is settled under that instruction's kind, never also as an enrolment subsidy.
    Where the region's policy settles by department (``money.settle_by_department``), each line
    names the funding department (the one that certifies its class)."""
    lines: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, values in totals.items():
        if not key.enrolled or not _in(key, region, year):
            continue
        if key.kind == ENROLMENT and key.instructed:
            continue  # settled under the instruction's kind
        persons, subsidy = values[4], values[2]  # the persons with a subsidy, and the subsidy
        if not persons:
            continue
        department = _department(book, key.county, key.year, key.category)
        spot = key.on_the_spot if key.kind == ENROLMENT else False
        slot = (key.county, key.year, key.category, key.funding_source, spot, key.kind, department or "")
        line = lines.setdefault(slot, {"region_code": key.county, "insurance_year": key.year, "category": key.category,
                                       "funding_source": key.funding_source, "on_the_spot": spot, "persons": 0,
                                       "subsidy_fen": 0, "as_of": as_of, "kind": key.kind, "department": department})
        line["persons"] += persons
        line["subsidy_fen"] += subsidy
    return [lines[k] for k in sorted(lines)]


def settlement_key(line: dict[str, Any]) -> bytes:
    """settlement.v1's key: the line's own fields (a line is about no one person)."""
    return "|".join(str(line[k]) for k in ("region_code", "insurance_year", "category", "funding_source",
                                           "on_the_spot", "kind", "department")).encode()


def budget_rows(totals: Totals, region: str | None = None, year: int | None = None,
                with_claims: bool = False) -> list[BudgetRow]:
    """资金支出测算: the subsidy the standards cost (the paid figures once frozen, a withdrawal
    counting for nothing: ``revision.budgeted``), per class and funding source, and with
    ``with_claims`` the money paid to people by instruction, per kind (a person-year paid by an
    instruction is counted there, not also through its standard). A what-if is the workers'
    preview of a revision, ``connectors/ops/revision.py``."""
    out: dict[tuple[str, str, str], BudgetRow] = {}
    for key, values in totals.items():
        if not _in(key, region, year):
            continue
        if key.kind == ENROLMENT:
            if not key.budgeted or (with_claims and key.instructed):
                continue
        elif not with_claims:
            continue
        row = out.setdefault((key.category, key.funding_source, key.kind),
                             BudgetRow(key.category, key.funding_source, kind=key.kind))
        row.persons += values[0]
        row.subsidy_fen += values[2]
    return [out[k] for k in sorted(out)]


def recount(entries: Iterable[dict[str, Any]], instructions: Iterable[dict[str, Any]] = ()) -> Totals:
    """The totals from scratch: from ``ledger.v1``'s lines (the latest per key) and the payment
    instructions (each id once), for ``zhucan ledger check`` against the live totals."""
    totals: Totals = {}
    for e in entries:
        line = LedgerLine(e["region_code"], e["category"], e["funding_source"], e["contribution_level"],
                          e["live_version"], e["paid_version"], e["state"], e["premium_fen"], e["subsidy_fen"],
                          e["payable_fen"], e["on_the_spot"], None, None, e["policy_id"], "",
                          e.get("instructed_fen", 0), e.get("payment_mode", "DIFFERENCE"))
        merge(totals, contributions({e["insurance_year"]: line}))
    seen: set[str] = set()
    for i in instructions:
        if i["instruction_id"] in seen:
            continue
        seen.add(i["instruction_id"])
        paid = PaidOut(i["insurance_year"], i["kind"], i["cause_id"], i["amount_fen"], i["instruction_id"],
                       i["region_code"], i["category"], i["funding_source"])
        merge(totals, contributions({}, [paid]))
    return totals


def differences(live: Totals, counted: Totals) -> list[tuple[TotalsKey, list[int], list[int]]]:
    """Where the live totals and a recount differ: (key, live values, recounted values)."""
    zero = [0] * len(VALUES)
    return [(k, live.get(k, zero), counted.get(k, zero)) for k in sorted(set(live) | set(counted))
            if live.get(k, zero) != counted.get(k, zero)]


def latest_suspected(records: Iterable[Keyed], region: str | None = None,
                     year: int | None = None) -> list[dict[str, Any]]:
    """The suspected un-enrolled list: the latest entry per person and year."""
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for key, rec in records:
        if region and not contains(region, rec["region_code"]):
            continue
        if year and rec["insurance_year"] != year:
            continue
        latest[(key, rec["insurance_year"])] = rec
    return list(latest.values())
