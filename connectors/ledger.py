"""The ledger (台账) read from the topics: latest standards, payment status, coverage per region and year."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from connectors.kafka_io import make_producer, read_to_end
from schemas.codec import Codec
from schemas.exceptions import DecodeError
from streams.domain.categories import Category, PaymentState
from streams.domain.decision import Held, decide
from streams.domain.exceptions import NoPolicy
from streams.domain.ids import normalize_id, person_key
from streams.domain.payments import Figures, settle
from streams.domain.person import region_matches
from streams.domain.policy import PolicyBook
from streams.settings import Settings

ENROLLED = ("PAID", "ZERO_DECLARED", "ALREADY_PAID")  # the acknowledgements that freeze a year
COVERAGE_TARGET = 0.99  # 豫医保办〔2024〕65号 一; 鲁医保发〔2024〕22号 一


@dataclass
class CoverageRow:
    region_code: str
    insurance_year: int
    live: int = 0  # people with a live (not withdrawn) standard
    enrolled: int = 0  # of those, with PAID / ZERO_DECLARED / ALREADY_PAID
    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def rate(self) -> float:
        return self.enrolled / self.live if self.live else 1.0

    @property
    def meets_target(self) -> bool:
        return self.rate >= COVERAGE_TARGET

    def as_dict(self) -> dict[str, Any]:
        return {"region_code": self.region_code, "insurance_year": self.insurance_year, "live": self.live,
                "enrolled": self.enrolled, "rate": round(self.rate, 4), "target": COVERAGE_TARGET,
                "meets_target": self.meets_target, "by_status": dict(self.by_status)}


def _read(settings: Settings, topic: str, record: str, codec: Codec) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for rec in read_to_end(settings.kafka_bootstrap_servers, topic):
        try:
            out.append((rec.key.decode() if rec.key else "", codec.decode(rec.value, expect=record)[1]))
        except DecodeError:
            continue
    return out


def ledger(settings: Settings, region: str | None = None, year: int | None = None,
           codec: Codec | None = None, book: PolicyBook | None = None) -> Iterator[tuple[dict[str, Any], str]]:
    """Each person-year's standard with its payment state: PAID / ZERO_DECLARED / ALREADY_PAID
    (enrolled), REJECTED, or NO_ANSWER.

    An enrolled year is reported as it froze: the version tax acted on (not the newest), with
    the level the person chose and what a full payment left of the subsidy (the same
    ``settle`` the person stage froze it with). An open year is its latest version, unless withdrawn."""
    codec = codec or Codec()
    book = book or PolicyBook.load(settings.policy_dir)
    versions: dict[tuple[str, int], dict[int, dict[str, Any]]] = defaultdict(dict)
    for key, fee in _read(settings, settings.topics.fee_standard, "FeeStandard", codec):
        versions[(key, fee["insurance_year"])][fee["version"]] = fee
    statuses: dict[tuple[str, int], set[str]] = defaultdict(set)
    freezing: dict[tuple[str, int], dict[str, Any]] = {}
    secret = settings.secret_bytes
    for _, ack in _read(settings, settings.topics.payment_status, "PaymentStatus", codec):
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
        elif fee["payment_mode"] == "WITHDRAWN":
            continue
        if region and not region_matches(fee["region_code"], region):
            continue
        if year and fee["insurance_year"] != year:
            continue
        seen = statuses.get(slot, set())
        final = ack["status"] if ack is not None else None
        yield fee, final or ("REJECTED" if "REJECTED" in seen else "NO_ANSWER")


def frozen_standard(fee: dict[str, Any], ack: dict[str, Any], book: PolicyBook) -> dict[str, Any]:
    """A FeeStandard record as the acknowledgement ``ack`` froze it (streams.domain.payments.settle)."""
    fig = Figures(fee["version"], fee["payment_mode"], fee["category"], fee["funding_source"],
                  fee["contribution_level"], fee["premium_fen"], fee["subsidy_fen"], fee["payable_fen"],
                  fee["on_the_spot"], fee["policy_id"], fee["region_code"])
    try:
        policy = book.lookup(fee["region_code"], fee["insurance_year"])
    except NoPolicy:
        policy = None
    settled, _ = settle(fig, PaymentState(ack["status"]), ack["amount_fen"], ack.get("contribution_level"), policy)
    return {**fee, "contribution_level": settled.level, "premium_fen": settled.premium_fen,
            "subsidy_fen": settled.subsidy_fen, "payable_fen": settled.payable_fen, "payment_mode": settled.mode}


def coverage(settings: Settings, region: str | None = None, year: int | None = None,
             by: str = "county") -> list[CoverageRow]:
    """Coverage per region and year: enrolled / people with a live standard, against the 99% target."""
    rows: dict[tuple[str, int], CoverageRow] = {}
    for fee, status in ledger(settings, region, year):
        code = fee["region_code"]
        group = {"county": code, "city": code[:4] + "00", "province": code[:2] + "0000"}[by]
        row = rows.setdefault((group, fee["insurance_year"]), CoverageRow(group, fee["insurance_year"]))
        row.live += 1
        if status in ENROLLED:
            row.enrolled += 1
        row.by_status[status] += 1
    return [rows[k] for k in sorted(rows)]


def settlement(settings: Settings, region: str | None, year: int | None,
               as_of: dt.datetime) -> list[dict[str, Any]]:
    """资助汇总表: enrolled people and subsidy per county, year, class, funding source and
    on-the-spot flag (豫医保办〔2024〕65号 六; 渝医保发〔2019〕78号 二(二)2), as SettlementLine records."""
    lines: dict[tuple[str, int, str, str, bool], dict[str, Any]] = {}
    for fee, status in ledger(settings, region, year):
        if status not in ENROLLED:
            continue  # only people who enrolled are settled (攀医保〔2021〕58号 六(二))
        if fee["subsidy_fen"] == 0:
            continue  # enrolled with no subsidy given (withdrawn, or paid in full and subsidised from next year)
        key = (fee["region_code"], fee["insurance_year"], fee["category"], fee["funding_source"], fee["on_the_spot"])
        line = lines.setdefault(key, {"region_code": key[0], "insurance_year": key[1], "category": key[2],
                                      "funding_source": key[3], "on_the_spot": key[4], "persons": 0,
                                      "subsidy_fen": 0, "as_of": as_of})
        line["persons"] += 1
        line["subsidy_fen"] += fee["subsidy_fen"]
    return [lines[k] for k in sorted(lines)]


def publish_settlement(settings: Settings, lines: list[dict[str, Any]]) -> None:
    """Settlement lines on ``settlement.v1``, keyed by their own line (a line is about no one person)."""
    codec = Codec()
    producer = make_producer(settings.kafka_bootstrap_servers)
    try:
        for line in lines:
            key = "|".join(str(line[k]) for k in ("region_code", "insurance_year", "category", "funding_source",
                                                  "on_the_spot"))
            producer.send(settings.topics.settlement, key=key.encode(),
                          value=codec.encode("SettlementLine", line, topic=settings.topics.settlement))
        producer.flush()
    finally:
        producer.close()


@dataclass
class BudgetRow:
    category: str
    funding_source: str
    persons: int = 0
    subsidy_fen: int = 0


def budget(settings: Settings, region: str, year: int, overlay: PolicyBook | None = None,
           target_year: int | None = None) -> list[BudgetRow]:
    """资金支出测算: the subsidy the live standards of ``region``/``year`` cost, per class and
    funding source; or, with ``overlay`` (another set of policy files: next year's, a
    what-if), what the same people would cost under it for ``target_year``. The live
    policies are never touched. Under an overlay each person is re-decided from the class
    that decided their standard (other identities they hold are not on the topic)."""
    rows: dict[tuple[str, str], BudgetRow] = {}
    for fee, _ in ledger(settings, region, year):
        category, funding, subsidy = fee["category"], fee["funding_source"], fee["subsidy_fen"]
        if overlay is not None:
            try:
                decision = decide([Held(Category(category))], overlay.lookup(fee["region_code"], target_year or year))
            except NoPolicy:
                decision = None
            if decision is None:
                continue
            funding, subsidy = decision.funding_source.value, decision.subsidy_fen
        row = rows.setdefault((category, funding), BudgetRow(category, funding))
        row.persons += 1
        row.subsidy_fen += subsidy
    return [rows[k] for k in sorted(rows)]


def suspected(settings: Settings, region: str | None = None, year: int | None = None) -> list[dict[str, Any]]:
    """The suspected un-enrolled list (latest entry per person and year)."""
    codec = Codec()
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for key, rec in _read(settings, settings.topics.unenrolled, "SuspectedUnenrolled", codec):
        if region and not region_matches(rec["region_code"], region):
            continue
        if year and rec["insurance_year"] != year:
            continue
        latest[(key, rec["insurance_year"])] = rec
    return list(latest.values())
