"""The ledger (台账) as the reports read it: the live totals, ``ledger.v1``'s lines, the check.

Coverage, settlement and budget read the ledger's totals (``streams/kafka/snapshots.py``: the
last snapshot of each partition, kept by the workers), so their cost is the number of counties x
classes, not of people; the arithmetic is ``streams/domain/reports.py`` (pure). ``ledger`` reads
``ledger.v1``'s lines (the latest per person-year) and ``check`` counts the totals again from
them, to compare with the live ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.kafka_io import read_to_end
from schemas.codec import Codec
from schemas.exceptions import DecodeError
from streams.domain.ledger import Totals, TotalsKey
from streams.domain.policy.spec import PolicyBook
from streams.domain.regions import Level, contains
from streams.domain.reports import (
    BudgetRow,
    CoverageRow,
    budget_rows,
    coverage_rows,
    differences,
    latest_suspected,
    recount,
    settlement_lines,
)
from streams.kafka.snapshots import LiveTotals, read_totals
from streams.policies import load_book
from streams.settings import Settings

__all__ = ["BudgetRow", "CoverageRow", "budget", "check", "coverage", "ledger", "live", "settlement", "suspected"]
log = logging.getLogger("zhucan.ledger")


FRESH_WAIT_S = 15.0  # how long a report waits for the totals to count every command written before it


def live(settings: Settings, warn: Callable[[str], None] | None = None, wait_s: float = FRESH_WAIT_S) -> LiveTotals:
    """The ledger's totals now, once they count every command written before the call (waited for
    up to ``wait_s``); what is incomplete about them is said through ``warn``."""
    found = read_totals(settings.kafka_bootstrap_servers, settings.topics.ledger_totals, settings.partitions,
                        settings.topics.person_commands, wait_s)
    for text in found.warnings():
        (warn or log.warning)(text)
    return found


def coverage(settings: Settings, region: str | None = None, year: int | None = None,
             by: Level = "county", book: PolicyBook | None = None, totals: LiveTotals | None = None) -> list[CoverageRow]:
    book = book or load_book(settings.policy_dir)
    return coverage_rows((totals or live(settings)).totals, book, by, region, year)


def settlement(settings: Settings, region: str | None, year: int | None, as_of: dt.datetime,
               totals: LiveTotals | None = None) -> list[dict[str, Any]]:
    """Enrolment subsidies and the instructions' money, per class, fund, kind (and department)."""
    return settlement_lines((totals or live(settings)).totals, as_of, load_book(settings.policy_dir), region, year)


def budget(settings: Settings, region: str, year: int, with_claims: bool = False) -> list[BudgetRow]:
    """The standards' budget, with the instructions paid to people when ``with_claims``; a what-if
    is ``revision.request_preview`` (the same lines: equal with the live policies)."""
    return budget_rows(live(settings).totals, region, year, with_claims)


def _read(settings: Settings, topic: str, record: str, codec: Codec) -> list[tuple[bytes, dict[str, Any]]]:
    out = []
    for rec in read_to_end(settings.kafka_bootstrap_servers, topic):
        if rec.value is None:
            continue
        try:
            out.append((rec.key or b"", codec.decode(rec.value, expect=record)[1]))
        except DecodeError:
            continue
    return out


def ledger(settings: Settings, region: str | None = None, year: int | None = None) -> list[dict[str, Any]]:
    """``ledger.v1``'s lines (LedgerEntry records), the latest per person-year."""
    latest: dict[bytes, dict[str, Any]] = {}
    for key, entry in _read(settings, settings.topics.ledger, "LedgerEntry", Codec()):
        latest[key] = entry
    return [e for e in latest.values()
            if (not region or contains(region, e["region_code"])) and (not year or e["insurance_year"] == year)]


def suspected(settings: Settings, region: str | None = None, year: int | None = None) -> list[dict[str, Any]]:
    """The suspected un-enrolled list (latest entry per person and year)."""
    records = [(k.decode(), v) for k, v in _read(settings, settings.topics.unenrolled, "SuspectedUnenrolled", Codec())]
    return latest_suspected(records, region, year)


@dataclass
class Check:
    live: LiveTotals
    counted: Totals
    lines: int
    instructions: int
    differences: list[tuple[TotalsKey, list[int], list[int]]]


def check(settings: Settings, attempts: int = 3, wait_s: float = 3.0) -> Check:
    """The totals counted again from ``ledger.v1`` and ``payment-instruction.v1``, against the
    live ones. The live totals trail the lines by up to ``ledger_publish_s``: a difference is
    looked at again ``attempts`` times before it is reported (one that stays is a bug)."""
    result: Check | None = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(wait_s)
        lines = ledger(settings)
        instructions = [v for _, v in _read(settings, settings.topics.instructions, "PaymentInstruction", Codec())]
        counted = recount(lines, instructions)
        now = live(settings, warn=lambda text: None)
        result = Check(now, counted, len(lines), len(instructions), differences(now.totals, counted))
        if not result.differences and not now.unbuilt and not now.missing:
            break
    assert result is not None
    return result
