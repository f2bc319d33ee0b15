"""Broker-free helpers shared by the unit, agent and integration tiers."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from connectors.dev.sample import certified_day, identity_event, make_id, utc
from schemas import native
from streams.domain.departments import SHIPPED
from streams.domain.exceptions import NoPolicy
from streams.domain.policy.spec import PolicyBook
from streams.policies import load_book

_seq = itertools.count(100)

# The C fast paths' tests: skipped only where ZHUCAN_NATIVE=0 chooses the Python alone; where the
# C is meant to run but was not built they fail (test_the_c_fast_paths_are_built says why)
needs_c = pytest.mark.skipif(not native.ENABLED, reason="ZHUCAN_NATIVE=0: the Python alone is under test")

HENAN, WEIHAI, CHONGQING, PANZHIHUA = "410102", "371002", "500101", "510402"
SOURCE_OF = {str(c): sources[0] for c, sources in SHIPPED.reporters.items()}  # the department of each class
NO_POLICY_DAY = dt.date(2024, 6, 1)  # the default day of an identity in a region no policy covers


def new_id(region: str = HENAN, born: dt.date = dt.date(1970, 1, 1)) -> str:
    """A fresh, valid, synthetic ID number."""
    n = next(_seq)
    return make_id(region, born + dt.timedelta(days=n // 1000), n % 1000)


def event(id_number: str, category: str, *, region: str = HENAN, change: str = "CERTIFIED", name: str = "测试",
          effective: dt.date | None = None, occurred: dt.datetime | None = None, event_id: str | None = None,
          is_student: bool = False, source: str | None = None) -> dict[str, Any]:
    effective = effective or in_window(region)
    occurred = occurred or utc(effective.year, effective.month, effective.day)
    return identity_event(
        event_id=event_id or f"ev-{next(_seq)}", source=source or SOURCE_OF[category], id_number=id_number,
        name=name, category=category, region=region, effective=effective, occurred=occurred, change=change,
        is_student=is_student,
    )


def payment(id_number: str, year: int, version: int, status: str = "PAID", amount: int = 0,
            ack_id: str | None = None) -> dict[str, Any]:
    return {
        "ack_id": ack_id or f"ack-{next(_seq)}", "id_number": id_number, "insurance_year": year,
        "fee_version": version, "status": status, "amount_fen": amount, "tax_reference": "T-1",
        "acted_at": utc(2024, 10, 1),
    }


_book: PolicyBook | None = None


def shipped_book() -> PolicyBook:
    global _book
    if _book is None:
        _book = load_book()
    return _book


def in_window(region: str) -> dt.date:
    """A day that counts for the region's first policy year at the normal rate (from the shipped book)."""
    try:
        return certified_day(shipped_book(), region)
    except NoPolicy:
        return NO_POLICY_DAY
