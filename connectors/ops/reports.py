"""The ledger's arithmetic (台账, coverage, settlement, budget), pure: records in, rows out.

``connectors/ops/ledger.py`` reads the topics and calls these; the unit tests call them on
records made in the test (``tests/unit/connectors/ops/test_reports.py``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streams.domain.enums import FREEZING_STATES, Category, PaymentState
from streams.domain.exceptions import NoPolicy
from streams.domain.ids import normalize_id, person_key
from streams.domain.messages import FeeStandardIssued
from streams.domain.payments import Figures, settle
from streams.domain.policy.spec import PolicyBook
from streams.domain.regions import Level, at_level, contains

ENROLLED = tuple(sorted(state.value for state in FREEZING_STATES))  # the acknowledgements that freeze a year
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


def ledger_rows(fees: Iterable[tuple[str, FeeStandardIssued]], acks: Iterable[Keyed], book: PolicyBook, secret: bytes,
                region: str | None = None, year: int | None = None) -> Iterator[tuple[FeeStandardIssued, str]]:
    """Each person-year's standard with its payment state: PAID / ZERO_DECLARED / ALREADY_PAID
    (enrolled), REJECTED, or NO_ANSWER.

    An enrolled year is reported as it froze: the version tax acted on (not the newest), with
    the level the person chose and what a full payment left of the subsidy (the same
    ``settle`` the person stage froze it with). An open year is its latest version, unless withdrawn."""
    versions: dict[tuple[str, int], dict[int, FeeStandardIssued]] = defaultdict(dict)
    for key, fee in fees:
        versions[(key, fee.insurance_year)][fee.version] = fee
    statuses: dict[tuple[str, int], set[str]] = defaultdict(set)
    freezing: dict[tuple[str, int], dict[str, Any]] = {}
    for _, ack in acks:
        id18, _ = normalize_id(ack["id_number"])
        if id18:
            slot = (person_key(id18, secret), ack["insurance_year"])
            statuses[slot].add(ack["status"])
            if ack["status"] in ENROLLED and slot not in freezing and ack["fee_version"] in versions.get(slot, {}):
                freezing[slot] = ack  # the first one freezes the year (CONTRACT rule 3)
    for slot, by_version in versions.items():
        fee = by_version[max(by_version)]
        ack = freezing.get(slot)
        if ack is not None:
            fee = frozen_standard(by_version[ack["fee_version"]], ack, book)
        elif fee.payment_mode == "WITHDRAWN":
            continue
        if region and not contains(region, fee.region_code):
            continue
        if year and fee.insurance_year != year:
            continue
        seen = statuses.get(slot, set())
        final = ack["status"] if ack is not None else None
        yield fee, final or (PaymentState.REJECTED.value if PaymentState.REJECTED in seen else "NO_ANSWER")


def frozen_standard(fee: FeeStandardIssued, ack: dict[str, Any], book: PolicyBook) -> FeeStandardIssued:
    """A FeeStandard record as the acknowledgement ``ack`` froze it (streams.domain.payments.settle)."""
    fig = Figures(fee.version, fee.payment_mode, fee.category, fee.funding_source,
                  fee.contribution_level, fee.premium_fen, fee.subsidy_fen, fee.payable_fen,
                  fee.on_the_spot, fee.policy_id, fee.region_code)
    try:
        policy = book.lookup(fee.region_code, fee.insurance_year)
    except NoPolicy:
        policy = None
    settled, _ = settle(fig, PaymentState(ack["status"]), ack["amount_fen"], ack.get("contribution_level"), policy)
    return dataclasses.replace(fee, contribution_level=settled.level, premium_fen=settled.premium_fen,
                               subsidy_fen=settled.subsidy_fen, payable_fen=settled.payable_fen,
                               payment_mode=settled.mode)


def coverage_rows(rows: Iterable[tuple[FeeStandardIssued, str]], book: PolicyBook,
                  by: Level = "county") -> list[CoverageRow]:
    """Coverage per region and year: enrolled / people with a live standard, against the target
    of the policy that decides the region's year (``coverage_target``)."""
    out: dict[tuple[str, int], CoverageRow] = {}
    for fee, status in rows:
        group = at_level(fee.region_code, by)
        row = out.get((group, fee.insurance_year))
        if row is None:
            row = out[(group, fee.insurance_year)] = CoverageRow(group, fee.insurance_year)
            try:
                target = book.lookup(fee.region_code, fee.insurance_year).spec.coverage_target
                example = " [示例值: the notice gives no target]" if target.example else ""
                row.target, row.target_reference = target.value, target.reference + example
            except NoPolicy:
                pass
        row.live += 1
        if status in ENROLLED:
            row.enrolled += 1
        row.by_status[status] += 1
    return [out[k] for k in sorted(out)]


def settlement_lines(rows: Iterable[tuple[FeeStandardIssued, str]], as_of: dt.datetime,
                     instructions: Iterable[dict[str, Any]] = (),
                     book: PolicyBook | None = None) -> list[dict[str, Any]]:
    """资助汇总表: enrolled people and subsidy per county, year, class, funding source and
    on-the-spot flag (豫医保办〔2024〕65号 六; 渝医保发〔2019〕78号 二(二)2), as SettlementLine records,
    with the money paid to people by instructions (PaymentInstruction records) on lines of their
    own ``kind``. A person-year paid by an instruction is settled under that instruction's kind,
    never also as an enrolment subsidy. Where the region's policy settles by department
    (``money.settle_by_department``), each line names the funding department (the one that
    certifies its class)."""
    lines: dict[tuple[Any, ...], dict[str, Any]] = {}
    paid_by_instruction = set()
    instructions = list(instructions)
    for ins in instructions:
        id18, _ = normalize_id(ins["id_number"])
        paid_by_instruction.add((id18 or ins["id_number"], ins["insurance_year"]))

    def department(region: str, year: int, category: str) -> str | None:
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

    def add(region: str, year: int, category: str, funding: str, spot: bool, kind: str, amount: int) -> None:
        key = (region, year, category, funding, spot, kind, department(region, year, category) or "")
        line = lines.setdefault(key, {"region_code": region, "insurance_year": year, "category": category,
                                      "funding_source": funding, "on_the_spot": spot, "persons": 0,
                                      "subsidy_fen": 0, "as_of": as_of, "kind": kind, "department": key[6] or None})
        line["persons"] += 1
        line["subsidy_fen"] += amount

    for fee, status in rows:
        if status not in ENROLLED:
            continue  # only people who enrolled are settled (攀医保〔2021〕58号 六(二))
        if fee.subsidy_fen == 0:
            continue  # enrolled with no subsidy given (withdrawn, or paid in full and subsidised from next year)
        if (fee.id_number, fee.insurance_year) in paid_by_instruction:
            continue  # settled under the instruction's kind below
        add(fee.region_code, fee.insurance_year, fee.category, fee.funding_source, fee.on_the_spot,
            "ENROLMENT_SUBSIDY", fee.subsidy_fen)
    for ins in instructions:
        add(ins["region_code"], ins["insurance_year"], ins["category"], ins["funding_source"], False, ins["kind"],
            ins["amount_fen"])
    return [lines[k] for k in sorted(lines)]


def budget_rows(rows: Iterable[tuple[FeeStandardIssued, str]],
                instructions: Iterable[dict[str, Any]] = ()) -> list[BudgetRow]:
    """资金支出测算: the subsidy the live standards cost, per class and funding source, and with
    ``instructions`` the money paid or to be paid to people by instruction, per kind (a person-year
    paid by an instruction is counted there, not also through its standard). A what-if is the
    workers' preview of a revision, ``connectors/ops/revision.py``."""
    instructions = list(instructions)
    by_instruction = {(normalize_id(i["id_number"])[0] or i["id_number"], i["insurance_year"]) for i in instructions}
    out: dict[tuple[str, str, str], BudgetRow] = {}
    for fee, _ in rows:
        if (fee.id_number, fee.insurance_year) in by_instruction:
            continue
        row = out.setdefault((fee.category, fee.funding_source, "ENROLMENT_SUBSIDY"),
                             BudgetRow(fee.category, fee.funding_source))
        row.persons += 1
        row.subsidy_fen += fee.subsidy_fen
    for ins in instructions:
        row = out.setdefault((ins["category"], ins["funding_source"], ins["kind"]),
                             BudgetRow(ins["category"], ins["funding_source"], kind=ins["kind"]))
        row.persons += 1
        row.subsidy_fen += ins["amount_fen"]
    return [out[k] for k in sorted(out)]


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
