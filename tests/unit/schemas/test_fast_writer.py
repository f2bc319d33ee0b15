"""The generated writers (schemas/fast_writer.py) write fastavro's bytes, for every record of the
contract they write, whatever the values: the ones they are sure of by themselves, the others
(a datetime for a timestamp, a bool for an int, an enum member, a missing field, a number out of
range, an unknown symbol) by handing the record to fastavro, which encodes it or refuses it."""

from __future__ import annotations

import datetime as dt
import enum
import io
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import Codec
from schemas.exceptions import SchemaError
from schemas.fast_writer import Slow, compile_writer

CODEC = Codec()
FAST = sorted(name for name, s in CODEC.schemas.items() if compile_writer(s.raw) is not None)


def test_the_records_the_person_stage_writes_per_event_have_a_fast_writer():
    assert {"FeeStandard", "LedgerEntry", "ReviewCase", "SuspectedUnenrolled"} <= set(FAST)
    assert compile_writer({"type": "record", "name": "R", "fields": [{"name": "a", "type": {"type": "array",
                                                                                          "items": "int"}}]}) is None


def _fastavro(name: str, value: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, CODEC.schemas[name].parsed, value)
    return buf.getvalue()


class Sym(enum.StrEnum):  # an enum member where the schema has a symbol or a string
    A = "MINIMUM_LIVING"


def _values(t: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of Avro type ``t``, with some the fast writer hands to fastavro."""
    if isinstance(t, list):
        return st.one_of(*(_values(b, named) for b in t))
    if isinstance(t, str) and t in named:
        t = named[t]
    if t == "null":
        return st.none()
    if t == "string":
        return st.one_of(st.text(max_size=80), st.text(min_size=60, max_size=300), st.just(Sym.A))
    if t == "boolean":
        return st.booleans()
    if t == "int":
        return st.one_of(st.integers(-70, 70), st.integers(-(2**31), 2**31 - 1), st.booleans())
    if t == "long":
        return st.one_of(st.integers(-70, 70), st.integers(-(2**63), 2**63 - 1))
    if isinstance(t, dict):
        if "name" in t:
            named[t["name"]] = named[f"{t.get('namespace', 'zhucan.v1')}.{t['name']}"] = t
        if t["type"] == "enum":
            return st.one_of(st.sampled_from(t["symbols"]), st.just(Sym.A))
        if t.get("logicalType") == "date":
            return st.one_of(st.dates(), st.dates().map(dt.date.isoformat), st.integers(-50_000, 50_000))
        if t.get("logicalType") == "timestamp-millis":
            return st.one_of(st.integers(0, 2**41), st.datetimes(timezones=st.just(dt.UTC)))
        return _values(t["type"], named)
    raise AssertionError(t)


def _record(name: str) -> st.SearchStrategy[dict[str, Any]]:
    named: dict[str, Any] = {}
    return st.fixed_dictionaries({f["name"]: _values(f["type"], named) for f in CODEC.schemas[name].raw["fields"]})


@pytest.mark.parametrize("name", FAST)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_fast_writer_writes_fastavros_bytes(name, data):
    value = data.draw(_record(name))
    try:
        expected = _fastavro(name, value)
    except (ValueError, TypeError, KeyError, AttributeError):
        with pytest.raises(SchemaError):  # refused as before
            CODEC.encode(name, value)
        return
    assert CODEC.encode(name, value) == b"\xc3\x01" + CODEC.schemas[name].fingerprint + expected
    write = compile_writer(CODEC.schemas[name].raw)
    assert write is not None
    try:
        assert write(value) == expected  # what it writes by itself, too
    except Slow:
        pass


def person_stage_line() -> dict[str, Any]:
    """A ledger line as the person stage builds it, with enum members and an ISO date."""
    from streams.domain.enums import Category, FundingSource, PaymentMode

    return {"id_number": "410102199001011234", "name": "张三", "region_code": "410102", "insurance_year": 2025,
            "category": Category.MINIMUM_LIVING, "funding_source": FundingSource.MEDICAL_ASSISTANCE_FUND,
            "contribution_level": 1, "live_version": 2, "paid_version": None, "state": "NO_ANSWER",
            "premium_fen": 40000, "subsidy_fen": 28000, "payable_fen": 12000, "on_the_spot": False,
            "due": "2025-12-31", "suspected_since": None, "policy_id": "410000-2025@abc", "basis": "民政 低保",
            "updated_at": 1_764_000_000_000, "instructed_fen": 0, "payment_mode": PaymentMode.DIFFERENCE}


def test_the_person_stages_records_are_written_by_the_fast_writer_itself():
    """Not handed to fastavro (which would make the fast writer a detour)."""
    line = person_stage_line()
    write = compile_writer(CODEC.schemas["LedgerEntry"].raw)
    assert write is not None and write(line) == _fastavro("LedgerEntry", line)


@pytest.mark.parametrize("name", FAST)
def test_a_record_the_fast_writer_is_not_sure_of_goes_to_fastavro(name):
    fields = CODEC.schemas[name].raw["fields"]
    write = compile_writer(CODEC.schemas[name].raw)
    assert write is not None
    with pytest.raises(Slow):  # a field missing: fastavro decides (a default, or its error)
        write({f["name"]: None for f in fields[1:]})
    with pytest.raises(Slow):
        write({f["name"]: object() for f in fields})
