"""streams/_speedups.c against the Python it shadows: murmur2 gives py_murmur2's hash for any
key, id18 gives normalize_id's number or declines (None), and identity_command gives the
intake's (ID number, command) of a department's record or declines, so that every rejection's
reason and text still come from the Python (streams/runtime/speedups.py puts it in front); and
identity_fields reads a packed identity command as remembered.identity_fields does, or declines
(newcomer_records: tests/unit/streams/runtime/test_remembered.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.dev.sample import seed_regions
from schemas.codec import Codec
from schemas.exceptions import DecodeError
from schemas.fast_writer import flat_fields
from streams.domain.departments import SHIPPED
from streams.domain.enums import Category
from streams.domain.identity import InvalidIdentity, check_identity
from streams.domain.ids import PROVINCES, check_char, normalize_id
from streams.runtime import speedups as fast
from streams.runtime import wire
from streams.runtime.partitioning import py_murmur2
from streams.runtime.remembered import identity_fields
from streams.runtime.speedups import IdentityCommands
from tests.fixtures import needs_c

speedups = fast.C


@needs_c
@settings(max_examples=500)
@given(key=st.binary(max_size=200))
def test_murmur2_is_the_pythons(key):
    assert speedups.murmur2(key) == py_murmur2(key)


def _valid_ids() -> st.SearchStrategy[str]:
    """Numbers that pass every check (some with a lower-case x)."""
    def build(province: str, county: int, born: dt.date, seq: int, lower: bool) -> str:
        first17 = f"{province}{county:04d}{born:%Y%m%d}{seq:03d}"
        check = check_char(first17)
        return first17 + (check.lower() if lower else check)
    return st.builds(build, st.sampled_from(sorted(PROVINCES)), st.integers(0, 9999),
                     st.dates(dt.date(1880, 1, 1), dt.date(2030, 12, 31)), st.integers(0, 999), st.booleans())


def _near_misses() -> st.SearchStrategy[str]:
    """A valid number with one character changed, cut, grown, blank around, or full-width."""
    def spoil(valid: str, how: str, at: int, ch: str) -> str:
        at %= len(valid)
        if how == "change":
            return valid[:at] + ch + valid[at + 1:]
        if how == "cut":
            return valid[:at]
        if how == "grow":
            return valid[:at] + ch + valid[at:]
        if how == "blank":
            return f" {valid}" if at % 2 else f"{valid}\t"
        return valid.translate({ord(c): ord(c) - ord("0") + 0xFF10 for c in "0123456789"})  # full-width digits
    chars = st.sampled_from(list("0123456789Xx \u0661\uff11-")) | st.characters()
    return st.builds(spoil, _valid_ids(), st.sampled_from(["change", "cut", "grow", "blank", "wide"]),
                     st.integers(0, 40), chars)


@needs_c
@settings(max_examples=500, deadline=None)
@given(raw=_valid_ids() | _near_misses() | st.text(max_size=20) | st.from_regex(r"\d{15}", fullmatch=True))
def test_id18_is_normalize_ids_number_or_declines(raw):
    got = speedups.id18(raw)
    expected = normalize_id(raw)
    if got is not None:
        assert (got, None) == expected
    assert fast.normalize_id(raw) == expected  # with the C in front, the same answer and the same problem


@needs_c
@settings(max_examples=200, deadline=None)
@given(raw=_valid_ids())
def test_id18_takes_every_valid_eighteen_character_number_itself(raw):
    assert speedups.id18(raw) == raw.upper()


@needs_c
def test_id18_declines_what_is_not_a_string():
    assert speedups.id18(None) is None
    assert speedups.id18(b"11010519491231002X") is None


# -- the intake's common record: identity_command against decode, check_identity and pack_identity --

_CODEC = Codec()


_ENUMS = {name: list(detail) for name, kind, _, detail in flat_fields(_CODEC.schemas["IdentityEvent"].raw) or []
          if kind == "enum"}
_COMMANDS = IdentityCommands.of(_CODEC, SHIPPED) if fast.C is not None else None
_SOURCES, _CATEGORIES, _CHANGES = _ENUMS["source"], _ENUMS["category"], _ENUMS["change"]
_BLANKS = [" ", "\t", "\u3000", "\u00a0", "\u2028", "\x1c", "\u0085"]
_AWKWARD = st.sampled_from(['"', "\\", "\n", "\x00", "\x7f", "\u2028", "/", "é", "\U0001f600", *_BLANKS])


def _python_path(data: bytes, source: str) -> tuple[str, bytes] | None:
    """What the intake's Python makes of the record: (ID number, command), or None when it
    rejects or dead-letters it (or it is UPDATED's with a previous category, which the C leaves)."""
    try:
        _, raw = _CODEC.decode(data, expect="IdentityEvent")
    except DecodeError:
        return None
    if raw["source"] != source:
        return None
    try:
        ident = check_identity(raw, SHIPPED, normalize_id)
    except (InvalidIdentity, ValueError, OverflowError):
        return None
    if ident.previous_category is not None:
        return None
    return ident.id_number, wire.pack_identity(ident)


def _common() -> st.SearchStrategy[dict[str, object]]:
    """Records the intake takes as they are: the case the C must not decline."""
    def build(source: str, category: str, change: str, id_number: str, name: str, county: int, born_after: int,
              ahead: int, occurred: dt.datetime, student: bool, person_number: str | None,
              living: str | None) -> dict[str, object]:
        born = normalize_id(id_number)[0]
        assert born is not None
        birth = dt.date(int(born[6:10]), int(born[10:12]), int(born[12:14]))
        effective = max(birth, dt.date(1950, 1, 1)) + dt.timedelta(days=born_after)
        occurred = max(occurred, dt.datetime.combine(effective - dt.timedelta(days=ahead), dt.time(), dt.UTC))
        return {"event_id": f"e-{county}-{born_after}", "source": source, "change": change, "id_number": id_number,
                "name": name, "category": category, "region_code": f"{born[:2]}{county:04d}",
                "effective_date": effective, "occurred_at": occurred, "is_student": student,
                "previous_category": None, "person_number": person_number, "living_status": living}
    pairs = [(s, c) for c in _CATEGORIES for s in _SOURCES if SHIPPED.reports(s, Category(c))]
    return st.sampled_from(pairs).flatmap(lambda pair: st.builds(
        build, st.just(pair[0]), st.just(pair[1]), st.sampled_from(_CHANGES), _valid_ids(),
        st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF) | st.sampled_from("ab·"), min_size=1, max_size=8),
        st.integers(1, 9999), st.integers(0, 30000), st.integers(0, 366),
        st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2035, 1, 1)).map(
            lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=dt.UTC)),
        st.booleans(), st.none() | st.just("") | st.from_regex(r"[0-9A-Z]{1,12}", fullmatch=True),
        st.none() | st.sampled_from(["ALIVE", "DECEASED"])))


def _spoiled() -> st.SearchStrategy[dict[str, object]]:
    """A common record with one field made awkward: blanks, quotes, control characters, another
    class or department, a bad ID number, a county that is none, dates out of bounds, a previous category."""
    def spoil(record: dict[str, object], field: str, how: int, text: str, day: dt.date) -> dict[str, object]:
        """``how`` chooses among the ways of spoiling ``field``."""
        r = dict(record)
        if field in ("event_id", "name", "person_number"):
            base = str(r[field] or "")
            r[field] = [text + base, base + text, base[:1] + text + base[1:], "", text][how % 5]
        elif field == "id_number":
            r[field] = [str(r[field])[:15], str(r[field]).lower(), f" {r[field]}", str(r[field])[:17] + "0"][how % 4]
        elif field == "region_code":
            r[field] = [str(r[field])[:2] + "0000", "990101", str(r[field])[:5], str(r[field]) + "1", "41０101"][how % 5]
        elif field == "category":
            r[field] = _CATEGORIES[how % len(_CATEGORIES)]
        elif field == "source":
            r[field] = _SOURCES[how % len(_SOURCES)]
        elif field == "previous_category":
            r[field] = _CATEGORIES[how % len(_CATEGORIES)]
        elif field == "effective_date":  # anywhere, the day before birth, the last day allowed ahead, the next
            born = str(r["id_number"])
            birth = dt.date(int(born[6:10]), int(born[10:12]), int(born[12:14]))
            ahead = r["occurred_at"].date() + dt.timedelta(days=366)  # type: ignore[attr-defined]
            r[field] = [day, birth - dt.timedelta(days=1), ahead, ahead + dt.timedelta(days=1)][how % 4]
        else:  # occurred_at: anywhere, the last millisecond of 1999, the first of 2000
            r[field] = [dt.datetime.combine(day, dt.time(23, 59, 59, 999000), dt.UTC),
                        dt.datetime(1999, 12, 31, 23, 59, 59, 999000, dt.UTC), dt.datetime(2000, 1, 1, tzinfo=dt.UTC)][how % 3]
        return r
    return st.builds(spoil, _common(), st.sampled_from(["event_id", "name", "person_number", "id_number", "region_code",
                                                         "category", "source", "previous_category", "effective_date",
                                                         "occurred_at"]),
                     st.sampled_from(range(60)), st.text(_AWKWARD, min_size=1, max_size=3),
                     st.dates(dt.date(1900, 1, 1), dt.date(2040, 12, 31)))


@needs_c
@settings(max_examples=400, deadline=None)
@given(record=_common())
def test_identity_command_takes_the_common_record_as_the_python_packs_it(record):
    data = _CODEC.encode("IdentityEvent", record)
    expected = _python_path(data, str(record["source"]))
    assert expected is not None, "the strategy built a record the intake rejects"
    assert _COMMANDS.command(data, str(record["source"])) == expected


@needs_c
@settings(max_examples=1500, deadline=None)
@given(record=_spoiled())
def test_identity_command_is_the_pythons_command_or_declines(record):
    """Spoiled fields (blanks, quotes, control characters, classes and departments, ID numbers,
    counties, dates at their bounds): whatever the C takes is exactly what the Python makes of
    it; what the Python rejects, the C declines."""
    data = _CODEC.encode("IdentityEvent", record)
    got = _COMMANDS.command(data, str(record["source"]))
    if got is not None:
        assert got == _python_path(data, str(record["source"]))


@needs_c
@settings(max_examples=500, deadline=None)
@given(record=_common() | _spoiled(), topic_source=st.sampled_from(_SOURCES),
       cut=st.tuples(st.sampled_from(["cut", "grow", "change"]), st.integers(0, 200), st.integers(0, 255)))
def test_identity_command_on_cut_grown_and_changed_bodies_is_the_pythons_or_declines(record, topic_source, cut):
    data = _CODEC.encode("IdentityEvent", record)
    how, at, byte = cut
    at = 10 + at % (len(data) - 10)  # the header stays: past it is what the C reads
    data = {"cut": data[:at], "grow": data[:at] + bytes([byte]) + data[at:],
            "change": data[:at] + bytes([byte]) + data[at + 1:]}[how]
    got = _COMMANDS.command(data, topic_source)
    if got is not None:
        assert got == _python_path(data, topic_source)


@needs_c
def test_identity_command_at_the_bounds_of_the_dates():
    """The day before birth, the last day ahead of occurred_at and the next, the last
    millisecond of 1999 and the first of 2000: each taken or declined as the Python decides."""
    id_number = "410102199005060121"
    base = {"event_id": "e-1", "source": "CIVIL_AFFAIRS", "change": "CERTIFIED", "id_number": id_number,
            "name": "张三", "category": "MINIMUM_LIVING", "region_code": "410102",
            "effective_date": dt.date(2024, 1, 1), "occurred_at": dt.datetime(2024, 1, 2, tzinfo=dt.UTC)}
    cases = [({"effective_date": dt.date(1990, 5, 5)}, False), ({"effective_date": dt.date(1990, 5, 6)}, True),
             ({"effective_date": dt.date(2025, 1, 2)}, True), ({"effective_date": dt.date(2025, 1, 3)}, False),
             ({"occurred_at": dt.datetime(1999, 12, 31, 23, 59, 59, 999000, dt.UTC),
               "effective_date": dt.date(1999, 1, 1)}, False),
             ({"occurred_at": dt.datetime(2000, 1, 1, tzinfo=dt.UTC), "effective_date": dt.date(1999, 1, 1)}, True)]
    for change, taken in cases:
        data = _CODEC.encode("IdentityEvent", {**base, **change})
        expected = _python_path(data, "CIVIL_AFFAIRS")
        assert (expected is not None) is taken, change
        assert _COMMANDS.command(data, "CIVIL_AFFAIRS") == expected, change


@needs_c
def test_identity_command_declines_other_framings_and_departments():
    record = {"event_id": "e-1", "source": "CIVIL_AFFAIRS", "change": "CERTIFIED", "id_number": "11010519491231002X",
              "name": "张三", "category": "MINIMUM_LIVING", "region_code": "110105",
              "effective_date": dt.date(2024, 1, 1), "occurred_at": dt.datetime(2024, 1, 2, tzinfo=dt.UTC)}
    data = _CODEC.encode("IdentityEvent", record)
    assert _COMMANDS.command(data, "CIVIL_AFFAIRS") == _python_path(data, "CIVIL_AFFAIRS")
    assert _COMMANDS.command(data, "VETERANS") is None  # another department's topic
    assert _COMMANDS.command(data, "NO_SUCH_DEPARTMENT") is None
    assert _COMMANDS.command(b"\x00\x00\x00\x00\x01" + data[10:], "CIVIL_AFFAIRS") is None  # Confluent framing
    assert _COMMANDS.command(data[:10], "CIVIL_AFFAIRS") is None
    assert _COMMANDS.command(None, "CIVIL_AFFAIRS") is None  # a tombstone
    assert _COMMANDS.command(data + b"\x00", "CIVIL_AFFAIRS") is None  # a byte left over


@needs_c
@pytest.mark.parametrize("name", [b"\xf8abc", b"\xffabc", b"\xc0\xaf\xc0\xaf", b"\xed\xa0\x80a",  # not UTF-8
                                  b"\xf4\x90\x80\x80", b"\xe4\xb8a\x80", b"a\xe4\xb8\xad",  # (the last is)
                                  b"\xe3\x80\x80a", b"a\xc2\xa0\x20"[:4], b"\xe2\x80\xa8a"])  # blanks of strip
def test_identity_command_on_names_of_four_bytes_is_the_pythons_or_declines(name):
    """A name's bytes as they come: not UTF-8 (the Python rejects it), blanks the Python strips
    (the C leaves those to it), or a plain name (the C takes it as the Python does)."""
    record = {"event_id": "e-1", "source": "CIVIL_AFFAIRS", "change": "CERTIFIED", "id_number": "11010519491231002X",
              "name": "abcd", "category": "MINIMUM_LIVING", "region_code": "110105",
              "effective_date": dt.date(2024, 1, 1), "occurred_at": dt.datetime(2024, 1, 2, tzinfo=dt.UTC)}
    data = _CODEC.encode("IdentityEvent", record).replace(b"abcd", name)
    got = _COMMANDS.command(data, "CIVIL_AFFAIRS")
    if got is not None:
        assert got == _python_path(data, "CIVIL_AFFAIRS")
    assert (got is not None) is (name == b"a\xe4\xb8\xad")


def test_identity_commands_leave_a_schema_of_another_layout_to_the_python(monkeypatch):
    codec = Codec()
    schema = codec.schemas["IdentityEvent"]
    fields = [*schema.raw["fields"], {"name": "added", "type": ["null", "string"], "default": None}]
    monkeypatch.setitem(codec.schemas, "IdentityEvent", dataclasses.replace(schema, raw={**schema.raw, "fields": fields}))
    assert IdentityCommands.of(codec, SHIPPED) is None


@needs_c
def test_identity_command_on_the_sample_records_takes_what_the_python_takes():
    """The seed regions' sample (valid records, and the bad ones the docs show rejected): a check
    added to validate_identity with a bad sample record that breaks it fails here until the C
    declines that record too."""
    sample = seed_regions("speedups")
    records = [*sample.events, *sample.bad_events]
    taken = 0
    for record in records:
        data = _CODEC.encode("IdentityEvent", record)
        got = _COMMANDS.command(data, str(record["source"]))
        if got is not None:
            taken += 1
            assert got == _python_path(data, str(record["source"])), record["event_id"]
    assert taken >= len(sample.events) // 2  # the common case is the C's (most of the valid sample)
    for source, data in sample.garbage:
        assert _COMMANDS.command(data, source) is None


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8) | st.sampled_from(["CIVIL_AFFAIRS", "11010519491231002X", "张三", "a\"b", "\\", "-0"]),
    lambda inner: st.lists(inner, max_size=2), max_leaves=3)


_PLAIN_TEXT = st.text(st.characters(blacklist_characters='"\\', blacklist_categories=("Cc", "Cs")), max_size=8)
_SIMPLE = st.none() | st.booleans() | st.integers(-(10 ** 18) + 1, 10 ** 18 - 1) | _PLAIN_TEXT


def _identity_command(fields: list[Any]) -> bytes:
    return wire.IDENTITY + orjson.dumps(fields)


@st.composite
def _commands(draw: Any) -> bytes:
    """Packed identity commands as orjson writes them: half of them of the types the Python reads
    (identifiers strings, the time an integer near the datetime's bounds), the others of any
    JSON types and lengths; and their bytes changed: cut, blanks, escapes, other numbers' forms."""
    if draw(st.booleans()):
        fields = [draw(_SIMPLE) for _ in range(13)]
        fields[8] = draw(st.integers(-62_135_596_800_001, 253_402_300_800_000) | st.sampled_from(
            [-62_135_596_800_001, -62_135_596_800_000, 253_402_300_799_999, 253_402_300_800_000, 0]))
        for i in (0, 3, 4):
            fields[i] = draw(_PLAIN_TEXT | st.text(max_size=8))
    else:
        fields = [draw(st.text(max_size=6) | _JSON_VALUES) for _ in range(draw(st.sampled_from([13, 13, 10, 14])))]
    data = _identity_command(fields)
    how = draw(st.sampled_from(["as is"] * 9 + ["cut", "blank", "escape", "zeros", "exponent", "minus zero", "tail",
                                                "long number", "time true", "time a float"]))
    if how == "cut":
        data = data[:draw(st.integers(0, len(data)))]
    elif how == "blank":
        at = draw(st.integers(3, len(data)))
        data = data[:at] + b" " + data[at:]
    elif how == "escape":
        data = data.replace(b"a", b"\\u0061", 1)
    elif how == "zeros":
        data = data.replace(b",1", b",01", 1)
    elif how == "exponent":
        data = data.replace(b"0,", b"0e0,", 1)
    elif how == "minus zero":
        data = data.replace(b",0,", b",-0,", 1)
    elif how in ("time true", "time a float") and len(fields) == 13:
        fields[8] = True if how == "time true" else 1.5
        data = _identity_command(fields)
    elif how == "long number":
        data = data.replace(b",", b"," + draw(st.sampled_from([b"1234567890123456789", b"-999999999999999999",
                                                                b"99999999999999999999"])) + b",", 1)
    elif how == "tail":
        data += draw(st.sampled_from([b" ", b"\n", b",", b"]"]))
    return data


@needs_c
@settings(max_examples=2000, deadline=None)
@given(data=_commands())
def test_identity_fields_is_the_pythons_or_declines(data):
    """``identity_fields`` in C gives what ``remembered.identity_fields`` gives, or declines."""
    got = speedups.identity_fields(data)
    if got is not None:
        assert got == identity_fields(data)


@needs_c
def test_identity_fields_takes_every_command_the_intake_packs():
    """The seed regions' valid sample, packed by the Python and by the intake's C: every command
    read in C (not one left to the Python), and the same as the Python reads it."""
    sample = seed_regions("speedups")
    taken = 0
    for record in sample.events:
        data = _CODEC.encode("IdentityEvent", record)
        ident = check_identity(_CODEC.decode(data, expect="IdentityEvent")[1], SHIPPED, normalize_id)
        commands = [wire.pack_identity(ident), *(c[1] for c in [_COMMANDS.command(data, str(record["source"]))] if c)]
        for command in commands:
            assert speedups.identity_fields(command) == identity_fields(command) is not None
            taken += 1
    assert taken > len(sample.events)
