"""The ledger (台账) read from the topics: standards, payment status, coverage, settlement, budget.

This module reads Kafka; the arithmetic is ``connectors/ops/reports.py`` (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from connectors.kafka_io import make_producer, read_to_end
from connectors.ops.reports import (
    ENROLLED,
    BudgetRow,
    CoverageRow,
    Keyed,
    budget_rows,
    coverage_rows,
    latest_suspected,
    ledger_rows,
    settlement_lines,
)
from schemas.codec import Codec
from schemas.exceptions import DecodeError
from streams.domain.messages import FeeStandardIssued
from streams.domain.policy.spec import PolicyBook
from streams.domain.regions import Level, contains
from streams.policies import load_book
from streams.settings import Settings

__all__ = ["ENROLLED", "BudgetRow", "CoverageRow", "budget", "coverage", "instructions", "ledger",
           "publish_settlement", "settlement", "suspected"]


def _read(settings: Settings, topic: str, record: str, codec: Codec) -> list[Keyed]:
    out = []
    for rec in read_to_end(settings.kafka_bootstrap_servers, topic):
        try:
            out.append((rec.key.decode() if rec.key else "", codec.decode(rec.value, expect=record)[1]))
        except DecodeError:
            continue
    return out


def ledger(settings: Settings, region: str | None = None, year: int | None = None,
           codec: Codec | None = None, book: PolicyBook | None = None) -> Iterator[tuple[FeeStandardIssued, str]]:
    """Each person-year's standard with its payment state (``reports.ledger_rows``), read from the topics."""
    codec = codec or Codec()
    book = book or load_book(settings.policy_dir)
    fees = [(key, FeeStandardIssued.from_record(value))
            for key, value in _read(settings, settings.topics.fee_standard, "FeeStandard", codec)]
    acks = _read(settings, settings.topics.payment_status, "PaymentStatus", codec)
    return ledger_rows(fees, acks, book, settings.secret_bytes, region, year)


def coverage(settings: Settings, region: str | None = None, year: int | None = None,
             by: Level = "county", book: PolicyBook | None = None) -> list[CoverageRow]:
    book = book or load_book(settings.policy_dir)
    return coverage_rows(ledger(settings, region, year, book=book), book, by)


def instructions(settings: Settings, region: str | None = None, year: int | None = None) -> list[dict[str, Any]]:
    """The payment instructions (payment-instruction.v1) of a region and year, each once (by id)."""
    out: dict[str, dict[str, Any]] = {}
    for _, rec in _read(settings, settings.topics.instructions, "PaymentInstruction", Codec()):
        if (region and not contains(region, rec["region_code"])) or (year and rec["insurance_year"] != year):
            continue
        out.setdefault(rec["instruction_id"], rec)
    return list(out.values())


def settlement(settings: Settings, region: str | None, year: int | None,
               as_of: dt.datetime) -> list[dict[str, Any]]:
    """Enrolment subsidies and the instructions' money, per class, fund, kind (and department)."""
    book = load_book(settings.policy_dir)
    return settlement_lines(ledger(settings, region, year, book=book), as_of, instructions(settings, region, year), book)


def publish_settlement(settings: Settings, lines: list[dict[str, Any]]) -> None:
    """Settlement lines on ``settlement.v1``, keyed by their own line (a line is about no one person)."""
    codec = Codec()
    producer = make_producer(settings.kafka_bootstrap_servers)
    try:
        for line in lines:
            key = "|".join(str(line[k]) for k in ("region_code", "insurance_year", "category", "funding_source",
                                                  "on_the_spot", "kind", "department"))
            producer.send(settings.topics.settlement, key=key.encode(),
                          value=codec.encode("SettlementLine", line, topic=settings.topics.settlement))
        producer.flush()
    finally:
        producer.close()


def budget(settings: Settings, region: str, year: int, with_claims: bool = False) -> list[BudgetRow]:
    """The live standards' budget (``reports.budget_rows``), with the instructions paid to people
    when ``with_claims``; a what-if is ``revision.request_preview``."""
    return budget_rows(ledger(settings, region, year), instructions(settings, region, year) if with_claims else ())


def suspected(settings: Settings, region: str | None = None, year: int | None = None) -> list[dict[str, Any]]:
    """The suspected un-enrolled list (latest entry per person and year)."""
    return latest_suspected(_read(settings, settings.topics.unenrolled, "SuspectedUnenrolled", Codec()), region, year)
