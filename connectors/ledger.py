"""The ledger (台账) read from the topics: latest standards, payment status, coverage per region and year."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from connectors.kafka_io import read_topic
from schemas.codec import Codec
from schemas.exceptions import DecodeError
from streams.domain.ids import normalize_id, person_key
from streams.domain.person import region_matches
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
    for rec in read_topic(settings.kafka_bootstrap_servers, topic, timeout_s=120, idle_s=1.5):
        try:
            out.append((rec.key.decode() if rec.key else "", codec.decode(rec.value, expect=record)[1]))
        except DecodeError:
            continue
    return out


def latest_standards(settings: Settings, codec: Codec | None = None) -> dict[tuple[str, int], dict[str, Any]]:
    codec = codec or Codec()
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for key, fee in _read(settings, settings.topics.fee_standard, "FeeStandard", codec):
        slot = (key, fee["insurance_year"])
        if slot not in latest or fee["version"] > latest[slot]["version"]:
            latest[slot] = fee
    return latest


def coverage(settings: Settings, region: str | None = None, year: int | None = None,
             by: str = "county") -> list[CoverageRow]:
    """Coverage per region and year: enrolled / people with a live standard, against the 99% target."""
    codec = Codec()
    standards = latest_standards(settings, codec)
    statuses: dict[tuple[str, int], set[str]] = defaultdict(set)
    secret = settings.secret_bytes
    for _, ack in _read(settings, settings.topics.payment_status, "PaymentStatus", codec):
        id18, _ = normalize_id(ack["id_number"])
        if id18:
            statuses[(person_key(id18, secret), ack["insurance_year"])].add(ack["status"])
    rows: dict[tuple[str, int], CoverageRow] = {}
    for slot, fee in standards.items():
        if fee["payment_mode"] == "WITHDRAWN":
            continue
        if region and not region_matches(fee["region_code"], region):
            continue
        if year and fee["insurance_year"] != year:
            continue
        code = fee["region_code"]
        group = {"county": code, "city": code[:4] + "00", "province": code[:2] + "0000"}[by]
        row = rows.setdefault((group, fee["insurance_year"]), CoverageRow(group, fee["insurance_year"]))
        row.live += 1
        seen = statuses.get(slot, set())
        final = next((s for s in ENROLLED if s in seen), None)
        if final:
            row.enrolled += 1
        row.by_status[final or ("REJECTED" if "REJECTED" in seen else "NO_ANSWER")] += 1
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
