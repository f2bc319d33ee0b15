"""The C reader and writer of the flat records (schemas/_flat.c) against fastavro, on every flat
schema of the contract: whatever the values or the bytes, they give fastavro's bytes and
fastavro's value, or decline (None) and leave the work, and any error, to fastavro."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import native
from schemas.codec import Codec
from schemas.fast_writer import compile_flat
from tests.fixtures import event, needs_c, new_id
from tests.unit.schemas.test_fast_writer import _fastavro, _record, person_stage_line

CODEC = Codec()
FLAT = sorted(name for name, s in CODEC.schemas.items() if compile_flat(s.raw) is not None)



def _event(**given: Any) -> dict[str, Any]:
    """A department's record (tests.fixtures.event) with every field, as decoding returns it."""
    return {**event(new_id(), "MINIMUM_LIVING", **given), "previous_category": None, "person_number": None,
            "living_status": None}


def _flat(name: str) -> Any:
    flat = compile_flat(CODEC.schemas[name].raw)
    assert flat is not None
    return flat


def _body(name: str, value: dict[str, Any]) -> bytes | None:
    """fastavro's body of ``value``, or None where fastavro refuses it."""
    try:
        return _fastavro(name, value)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _read(name: str, body: bytes) -> dict[str, Any] | None:
    """fastavro's value of ``body`` (all of it), or None where it refuses it or leaves bytes over."""
    buf = io.BytesIO(body)
    try:
        value = fastavro.schemaless_reader(buf, CODEC.schemas[name].parsed, None)
    except Exception:
        return None
    return value if buf.tell() == len(body) else None  # type: ignore[return-value]


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Equal, and of the same types (a bool is not an int, a datetime not a date, UTC is UTC)."""
    assert a == b
    assert list(a) == list(b)
    for k in a:
        assert type(a[k]) is type(b[k]), k
        if isinstance(a[k], dt.datetime):
            assert a[k].tzinfo is b[k].tzinfo, k


@needs_c
def test_the_c_fast_paths_are_built():
    """The suite runs where a C compiler is (make install builds them): without them every
    figure of the bench is the Python's. ZHUCAN_NATIVE=0 tests the Python alone."""
    assert native.status() == "C fast paths on", native.status()
    assert {"IdentityEvent", "FeeStandard", "LedgerEntry"} <= set(FLAT)
    assert CODEC._flat["IdentityEvent"] is not None


@needs_c
@pytest.mark.parametrize("name", FLAT)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_c_writer_writes_fastavros_bytes_or_declines(name, data):
    value = data.draw(_record(name))
    written = _flat(name).write(value)
    expected = _body(name, value)
    if expected is None:
        assert written is None  # fastavro refuses it: the C never decides that
        return
    assert written is None or written == expected
    assert CODEC.encode(name, value) == b"\xc3\x01" + CODEC.schemas[name].fingerprint + expected


@needs_c
@pytest.mark.parametrize("name", FLAT)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_c_reader_reads_what_fastavro_reads(name, data):
    body = _body(name, data.draw(_record(name)))
    if body is None:
        return
    got = _flat(name).read(b"\xc3\x01" + CODEC.schemas[name].fingerprint + body, 10)
    assert got is not None  # a record fastavro wrote is one the C reads itself
    expected = _read(name, body)
    assert expected is not None
    _same(got, expected)


@needs_c
@pytest.mark.parametrize("name", FLAT)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_bytes_the_c_reader_is_not_sure_of_go_to_fastavro(name, data):
    """Cut, grown, or with bytes changed: the C reads fastavro's value, or declines; never a
    value where fastavro raises or leaves bytes over."""
    body = bytearray(_body(name, data.draw(_record(name))) or b"")
    how = data.draw(st.sampled_from(["cut", "grow", "change", "random"]))
    if how == "cut" and body:
        body = body[:data.draw(st.integers(0, len(body) - 1))]
    elif how == "grow":
        body += data.draw(st.binary(min_size=1, max_size=4))
    elif how == "change" and body:
        for _ in range(data.draw(st.integers(1, 3))):
            body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    else:
        body = bytearray(data.draw(st.binary(max_size=120)))
    got = _flat(name).read(bytes(body), 0)
    expected = _read(name, bytes(body))
    if got is not None:
        assert expected is not None
        _same(got, expected)


@needs_c
def test_the_codec_decodes_through_the_c_and_refuses_as_before():
    from schemas.exceptions import DecodeError

    record = _event(occurred=dt.datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC))
    data = CODEC.encode("IdentityEvent", record)
    assert CODEC._fast[data[:10]][3].read(data, 10) == record  # the C read it
    assert CODEC.decode(data, expect="IdentityEvent") == ("IdentityEvent", record)
    with pytest.raises(DecodeError, match="1 trailing bytes"):  # fastavro's caller still says what is wrong
        CODEC.decode(data + b"\x00", expect="IdentityEvent")
    with pytest.raises(DecodeError) as refused:
        CODEC.decode(data[:-3], expect="IdentityEvent")
    assert refused.value.reason == "AVRO"


@needs_c
def test_the_person_stages_records_are_written_by_the_c_itself():
    """Not declined (which would make the C a detour)."""
    line = person_stage_line()
    assert _flat("LedgerEntry").write(line) == _fastavro("LedgerEntry", line)


def test_without_the_c_the_codec_runs_the_python(monkeypatch):
    """ZHUCAN_NATIVE=0, or the C not built: no fast path from C, and the same bytes and values."""
    monkeypatch.setattr(native, "ENABLED", False)
    plain = Codec()
    assert all(f is None for f in plain._flat.values())
    assert native.status() == "C fast paths off (ZHUCAN_NATIVE=0)"
    record = {**_event(is_student=True), "person_number": "p-1"}
    data = plain.encode("IdentityEvent", record)
    assert data == CODEC.encode("IdentityEvent", record)
    assert plain.decode(data) == CODEC.decode(data) == ("IdentityEvent", record)
