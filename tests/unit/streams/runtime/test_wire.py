"""The intake's internal form of a validated identity (``streams.runtime.wire.pack_identity``)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.ops.dlq import DeadLetter, describe
from schemas.exceptions import DecodeError
from streams.domain.departments import SHIPPED
from streams.domain.enums import Category, Change
from streams.domain.identity import Identity, validate_identity
from streams.runtime import wire as batch
from streams.runtime.speedups import C
from tests.fixtures import event, needs_c, new_id

CST = dt.timezone(dt.timedelta(hours=8))


@given(
    category=st.sampled_from(list(Category)), change=st.sampled_from(list(Change)),
    name=st.text(min_size=1, max_size=20), event_id=st.text(min_size=1, max_size=40),
    effective=st.dates(dt.date(1950, 1, 1), dt.date(2100, 12, 31)),
    occurred=st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1), timezones=st.sampled_from([dt.UTC, CST])),
    student=st.booleans(),
)
def test_an_identity_comes_back_as_it_went(category, change, name, event_id, effective, occurred, student):
    occurred = occurred.replace(microsecond=occurred.microsecond // 1000 * 1000)  # Avro carries milliseconds
    ident = Identity(event_id=event_id, source=SHIPPED.reporters[category][0], change=change, id_number=new_id(),
                     name=name, category=category, region_code="410102", effective_date=effective,
                     occurred_at=occurred, is_student=student)
    back = batch.unpack_identity(batch.pack_identity(ident))
    assert back == ident  # the same instant (aware datetimes compare as instants)
    assert back.occurred_at.tzinfo is dt.UTC


def test_what_the_intake_validated_is_what_the_person_stage_gets():
    raw = event(new_id(), "MINIMUM_LIVING")
    ident = validate_identity(raw)
    assert isinstance(ident, Identity)
    data = batch.pack_identity(ident)
    assert data.startswith(batch.IDENTITY) and len(data) < 200
    assert batch.unpack_identity(data) == ident


@pytest.mark.parametrize("data", [
    batch.IDENTITY, batch.IDENTITY + b"[1,2", batch.IDENTITY + b'{"a":1}', batch.IDENTITY + b"[1,2,3]",
    batch.IDENTITY + b'["e","NOT_A_SOURCE","CERTIFIED","x","n","MINIMUM_LIVING","410102",738000,0,false]',
    batch.IDENTITY + b'["e","CIVIL_AFFAIRS","CERTIFIED","x","n","MINIMUM_LIVING","410102",-5,0,false]',
])
def test_a_corrupt_internal_command_is_a_typed_decode_error(data):
    with pytest.raises(DecodeError) as err:
        batch.unpack_identity(data)
    assert err.value.reason == "COMMAND_FORMAT"


def test_a_dead_lettered_internal_command_reads_with_its_id_masked():
    idn = new_id()
    ident = validate_identity(event(idn, "MINIMUM_LIVING"))
    assert isinstance(ident, Identity)
    letter = DeadLetter(0, 7, 0, b"pk", batch.pack_identity(ident), {"zhucan.origin.topic": "zhucan.person-commands"})
    shown = describe(letter)
    assert "decodes now as IdentityEvent (internal form)" in shown
    assert idn not in shown and f"{idn[:6]}" in shown and idn[-4:] in shown


_ITEMS = st.lists(st.tuples(st.binary(max_size=70), st.binary(max_size=300)), max_size=40)


@needs_c
@settings(max_examples=500, deadline=None)
@given(_ITEMS, st.integers(0, 3000))
def test_batch_records_packed_in_c_are_the_pythons(items, max_bytes):
    """``pack_chunks`` (C) gives ``py_pack_chunks``'s records, however the items fall into them."""
    assert batch.pack_chunks(items, max_bytes) == batch.py_pack_chunks(items, max_bytes)
    assert C.pack_chunks(items, max_bytes) is not None


@needs_c
def test_pack_chunks_in_c_leaves_what_it_cannot_pack_to_the_python():
    assert C.pack_chunks([(b"k" * 65536, b"v")], 100) is None  # a key the 2-byte length cannot say
    assert C.pack_chunks([(b"k", "v")], 100) is None
    assert C.pack_chunks(((b"k", b"v"),), 100) is None  # (not a list)
    with pytest.raises(Exception):  # noqa: B017 - the Python's own error (struct.error)
        batch.pack_chunks([(b"k" * 65536, b"v")], 100)


@needs_c
@settings(max_examples=500, deadline=None)
@given(_ITEMS, st.integers(0, 3000), st.data())
def test_a_batch_record_unpacked_in_c_is_the_pythons_or_its_error(items, max_bytes, data):
    """``commands_of`` (C) gives ``list(unpack(...))``'s pairs, and for a cut, grown or changed
    record the same pairs or the Python's ``BatchFormatError``."""
    for record in batch.py_pack_chunks(items, max_bytes) or [batch.MAGIC]:
        assert C.unpack(record) == list(batch.unpack(b"k", record))
        how = data.draw(st.sampled_from(["cut", "grown", "changed", "single"]))
        if how == "cut":
            record = record[:data.draw(st.integers(0, len(record)))]
        elif how == "grown":
            record += data.draw(st.binary(min_size=1, max_size=8))
        elif how == "changed" and len(record) > 3:
            at = data.draw(st.integers(3, len(record) - 1))
            record = record[:at] + bytes([data.draw(st.integers(0, 255))]) + record[at + 1:]
        elif how == "single":
            record = record[3:]
        try:
            expected: object = list(batch.unpack(b"k", record))
        except batch.BatchFormatError as exc:
            expected = exc
        got = C.unpack(record)
        if isinstance(expected, Exception):
            assert got is None
            with pytest.raises(batch.BatchFormatError, match=str(expected)):
                batch.commands_of(b"k", record)
        else:
            assert got is None or got == expected
            assert batch.commands_of(b"k", record) == expected
