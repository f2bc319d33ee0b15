"""A remembered newcomer written from its command's bytes (``streams/runtime/remembered.py``,
issue #25 part 2): the person stage sends and keeps exactly what it does without it, byte for
byte, whatever the commands: people of a few shapes, second records of the same people, and
commands the bytes' way must leave to the rules (identifiers of another JSON type, times out of
range, the form before the 2026-12 additions, unknown departments, JSON that is not a command)."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.dev.hotpath import Event, Record
from schemas.codec import Codec
from schemas.fast_writer import avro_long, avro_string
from streams.app import create_app
from streams.domain.ids import person_key
from streams.domain.messages import FeeStandardIssued
from streams.domain.state_codec import (
    encode_plain,
    fill_plain,
    fill_second,
    plain_parts,
    second_parts,
    split_plain,
)
from streams.domain.timeline import Fact
from streams.runtime import wire
from streams.settings import Settings
from tests.fixtures import needs_c
from tests.unit.streams.domain.test_newcomers import OPENED, newcomers, years_book

SECRET = "remembered-test-secret"
_offsets = itertools.count()


class _Stage:
    """A person stage with the memo on, its records kept; ``remembered`` off: the decoded way only."""

    def __init__(self, tmp: Path, remembered: bool) -> None:
        settings = Settings(kafka_bootstrap_servers="localhost:1", key_secret=SECRET, data_dir=tmp,
                            app_id="remembered-test", store="memory://")
        self.app = app = create_app(settings, years_book())
        app.faust.finalize()
        self.sent: list[tuple[Any, ...]] = []

        async def send(outs: list[Any], wait: bool = False) -> None:
            for o in outs:  # a dead letter's time is the wall clock's: its header left out
                headers = [h for h in o.headers or [] if h[0] != "zhucan.failed.at"]
                self.sent.append((o.topic, o.key, o.value, o.partition, o.home, headers))

        app.ctx.send = send
        app.ctx.commands.committed = AsyncMock(return_value=None)
        app.ctx.commands.log_start = AsyncMock(return_value=0)
        ticks = itertools.count(1_750_000_000_000, 7)  # another time at each call: both ways must call alike
        app.ctx.clock = app.ctx.ledger.clock = lambda: next(ticks)
        if not remembered:
            app.ctx.remembered = None
        self.opened: dict[str, int] = {}
        app.ctx.opened.of = lambda partition: self.opened  # type: ignore[method-assign]

    async def take(self, commands: list[tuple[bytes, bytes]], offset: int, opened: dict[str, int]) -> None:
        self.opened = opened
        value = wire.pack(commands)
        topic = self.app.ctx.topics.person_commands
        record = Record(topic, 0, offset, b"~batch~0", value, timestamp=1_700_000_000_000)  # (a latency observed)
        await self.app.person.take([Event(record, b"~batch~0", value)])  # type: ignore[list-item]

    def kept(self) -> tuple[Any, ...]:
        ctx = self.app.ctx
        return (self.sent, dict(ctx.store.table.data), dict(ctx.metrics.values), sum(ctx.metrics.latency_counts),
                (ctx.newcomers.hits, ctx.newcomers.misses, ctx.newcomers.second_hits, ctx.newcomers.second_misses))


def _packed(ident: Any) -> bytes:
    return wire.pack_identity(ident)


def _spoiled(value: bytes, how: str) -> bytes:
    """A packed command with one thing the bytes' way must not take (the rules decide, or dead-letter it)."""
    f = orjson.loads(value[len(wire.IDENTITY):])
    if how == "legacy":  # ten fields, before the 2026-12 additions
        return wire.IDENTITY + orjson.dumps(f[:10])
    if how == "not a list":
        return wire.IDENTITY + orjson.dumps({"id": f[0]})
    if how == "broken":
        return value[:-2]
    changed = {"event id a number": (0, 12345), "ID number a number": (3, 110101), "name null": (4, None),
               "time true": (8, True), "time a float": (8, f[8] + 0.5), "time past the year 9999": (8, 10 ** 15),
               "time before the year 1": (8, -10 ** 15), "the last millisecond": (8, 253_402_300_799_999),
               "the millisecond after it": (8, 253_402_300_800_000), "the first millisecond": (8, -62_135_596_800_000),
               "the millisecond before it": (8, -62_135_596_800_001), "student 1": (9, 1), "unknown department": (1, "NOPE"),
               "person number a list": (11, [1])}[how]
    f[changed[0]] = changed[1]
    return wire.IDENTITY + orjson.dumps(f)


SPOILED = ["legacy", "not a list", "broken", "event id a number", "ID number a number", "name null", "time true",
           "time a float", "time past the year 9999", "time before the year 1", "the last millisecond",
           "the millisecond after it", "the first millisecond", "the millisecond before it", "student 1", "unknown department",
           "person number a list"]


@settings(max_examples=60, deadline=None)
@given(newcomers(), st.lists(st.sampled_from(SPOILED), max_size=4), st.lists(st.integers(0, 29), max_size=5),
       st.sampled_from(OPENED), st.sampled_from(OPENED))
def test_a_remembered_newcomer_from_bytes_is_what_the_decoded_way_gives(tmp_path_factory, people, spoiled, again,
                                                                          opened, opened_later):
    """People of a few shapes (many share a key, each their own ID number, name, event id and
    time), some of them twice (a second record: a state to apply it to), and spoiled commands
    among them, then the same commands for other people, the same years opened or others: every
    record sent, every state and total kept, every counter and latency observed, the same."""
    tmp = tmp_path_factory.mktemp("remembered")
    commands = [(person_key(ident.id_number, SECRET.encode()).encode(), _packed(ident)) for ident, *_ in people]
    for i, how in enumerate(spoiled):
        key, value = commands[i % len(people)]
        commands.append((key + b"-spoiled", _spoiled(value, how)))
    commands += [commands[i % len(people)] for i in again]  # the same person again (redelivered: skipped)
    for i in again:
        ident = people[i % len(people)][0]
        commands.append((commands[i % len(people)][0], _packed(ident._replace(event_id=ident.event_id + "-b",
                                                                              category="EXTREME_POVERTY"))))
    kept = []
    for remembered in (True, False):
        stage = _Stage(tmp / str(remembered), remembered)
        import asyncio
        loop = asyncio.new_event_loop()
        try:  # two takes: the first teaches the memo, the second is remembered (with other years opened, or not)
            loop.run_until_complete(stage.take(commands, 0, opened))
            loop.run_until_complete(stage.take([(k + b"-2", v) for k, v in commands], 1, opened_later))
        finally:
            loop.close()
        kept.append(stage.kept())
    assert kept[0] == kept[1]


SECONDS = [  # a second department's record of a person held as a newcomer: another source, category, change
    {"source": "DISABILITY", "category": "SEVERE_DISABILITY"},
    {"source": "RURAL_REVITALIZATION", "category": "MONITORED_RELAPSE_RISK"},
    {"category": "EXTREME_POVERTY"},
    {"change": "REVOKED"},
]


@settings(max_examples=60, deadline=None)
@given(newcomers(), st.lists(st.tuples(st.integers(0, 29), st.sampled_from(range(len(SECONDS))),
                                       st.sampled_from(["a", "z~"]), st.integers(-3 * 86_400_000, 3 * 86_400_000)),
                             min_size=1, max_size=30),
       st.lists(st.sampled_from(["name", "ID number", "spoiled", "two facts"]), max_size=3),
       st.sampled_from(OPENED), st.sampled_from(OPENED))
def test_a_remembered_second_identity_from_bytes_is_what_the_decoded_way_gives(tmp_path_factory, people, seconds,
                                                                                 odd, opened, opened_later):
    """People of a few shapes, then a second record for many of them (of a few shapes too: other
    departments, categories and changes, event ids before or after the first's, recorded earlier
    or later), in two takes of other people each: the first teaches the memo its keys and pairs,
    the second is remembered. Among them: a second record with another name or ID number
    spelling, a spoiled one, a person with two facts already. Every record sent, state and total
    kept, counter and latency observed, the same with the bytes' way and without it."""
    import asyncio

    from streams.domain.ids import normalize_id

    tmp = tmp_path_factory.mktemp("seconds")
    firsts = [(person_key(ident.id_number, SECRET.encode()).encode(), _packed(ident)) for ident, *_ in people]
    later = []
    for i, which, prefix, shift in seconds:
        ident = people[i % len(people)][0]
        changed = ident._replace(event_id=prefix + ident.event_id, occurred_at=ident.occurred_at + dt.timedelta(
            milliseconds=shift), **SECONDS[which])
        later.append((firsts[i % len(people)][0], _packed(changed)))
    base = list(later)
    for j, how in enumerate(odd):
        key, value = base[j % len(base)]
        ident = wire.unpack_identity(value, years_book().departments)
        if how == "name":
            later.append((key, _packed(ident._replace(name=ident.name + "二", event_id=ident.event_id + "-n"))))
        elif how == "ID number":  # (the rules keep the first spelling: the same person key)
            assert normalize_id(ident.id_number)[0] == ident.id_number
            later.append((key, _packed(ident._replace(id_number=ident.id_number.lower(), event_id=ident.event_id + "-i"))))
        elif how == "spoiled":
            later.append((key, _spoiled(value, "time a float")))
        else:  # a third record: a state of two facts
            later.append((key, _packed(ident._replace(event_id=ident.event_id + "-3", category="ORPHAN"))))
    kept = []
    for remembered in (True, False):
        stage = _Stage(tmp / str(remembered), remembered)
        loop = asyncio.new_event_loop()
        try:
            for take, (suffix, years) in enumerate(((b"", opened), (b"-2", opened_later))):
                loop.run_until_complete(stage.take([(k + suffix, v) for k, v in firsts], 2 * take, years))
                loop.run_until_complete(stage.take([(k + suffix, v) for k, v in later], 2 * take + 1, years))
        finally:
            loop.close()
        kept.append(stage.kept())
    assert kept[0] == kept[1]


PAIRS = {  # two pairs of (first, second) that differ in one part of the pair's key
    # the second recorded after the first or before it (a revocation stands, or comes to nothing)
    "recorded times": ({}, {"change": "REVOKED", "shift": 60_000}, {}, {"change": "REVOKED", "shift": -60_000}),
    # recorded at the same time: the event ids order them (the rules found deciding these alike)
    "event ids": ({}, {"change": "REVOKED", "prefix": "z~"}, {}, {"change": "REVOKED", "prefix": "a"}),
    # another first fact (another class), the same second (the first class revoked)
    "first fact": ({}, {"change": "REVOKED", "category": "MINIMUM_LIVING", "shift": 60_000},
                   {"category": "EXTREME_POVERTY"}, {"change": "REVOKED", "category": "MINIMUM_LIVING", "shift": 60_000}),
}
DECIDED_ALIKE = {"event ids"}


@pytest.mark.parametrize("part", sorted(PAIRS))
def test_a_pair_is_told_apart_by_each_part_of_its_key(tmp_path, part):
    """Each part of a remembered pair's key (how the facts' recorded times and event ids compare,
    the first fact): two people whose pairs differ only in it are never given one another's
    records. The first take teaches the memo both pairs; in the second, other people of the same
    pairs are written from bytes, and the records are the decoded way's."""
    import asyncio

    from tests.unit.streams.domain.test_newcomers import _fact

    first_a, second_a, first_b, second_b = PAIRS[part]

    def people(take: int) -> list[tuple[bytes, bytes]]:
        out = []
        for n, (first, second) in enumerate(((first_a, second_a), (first_b, second_b))):
            held = _fact(**first, born=dt.date(1960 + n, 3, 4 + take))
            change = {k: v for k, v in second.items() if k not in ("shift", "prefix")}
            other = held._replace(event_id=second.get("prefix", "") + held.event_id + "-b", occurred_at=held.occurred_at +
                                  dt.timedelta(milliseconds=second.get("shift", 0)), **change)
            key = person_key(held.id_number, SECRET.encode()).encode()
            out += [(key, _packed(held)), (key, _packed(other))]
        return out

    takes = [people(0), people(1)]
    kept, fees = [], []
    for remembered in (True, False):
        stage = _Stage(tmp_path / str(remembered), remembered)
        for offset, commands in enumerate(takes):
            asyncio.run(stage.take(commands, offset, {}))
        kept.append(stage.kept())
        fees.append([v for t, _, v, *_ in stage.sent if t.endswith("fee-standard.v1")])
    nc_hits = kept[0][4][2]
    assert nc_hits == 2  # both second identities of the second take remembered (and written from bytes)
    assert kept[0] == kept[1]
    codec = Codec()
    issued = [codec.decode(v)[1] for v in fees[1]]
    by_person: dict[str, list[tuple[int, int, int]]] = {}
    for f in issued:
        by_person.setdefault(f["id_number"], []).append((f["insurance_year"], f["version"], f["subsidy_fen"]))
    outcomes = {tuple(v) for v in by_person.values()}
    assert (len(outcomes) > 1) == (part not in DECIDED_ALIKE)  # the rules decide the two pairs apart


def test_the_bytes_way_writes_remembered_second_identities(tmp_path):
    """The differential test above would pass with the bytes' way never taken: here a second
    identity of a remembered pair is, with its own identifiers, and its state is the rules'."""
    import asyncio

    from streams.domain.person import PersonState
    from tests.unit.streams.domain.test_newcomers import _fact

    people = [_fact(name=n, born=dt.date(1960 + i, 1, 2)) for i, n in enumerate(("张三", "李四", "王五"))]
    stage = _Stage(tmp_path, remembered=True)
    keys = [person_key(p.id_number, SECRET.encode()).encode() for p in people]
    asyncio.run(stage.take([(k, _packed(p)) for k, p in zip(keys, people, strict=True)], 0, {}))
    seconds = [p._replace(event_id=p.event_id + "-b", category="EXTREME_POVERTY") for p in people]
    asyncio.run(stage.take([(k, _packed(p)) for k, p in zip(keys, seconds, strict=True)], 1, {}))
    nc = stage.app.ctx.newcomers
    assert (nc.second_misses, nc.second_hits) == (1, 2)
    shapes = stage.app.ctx.remembered
    assert shapes is not None
    # the first second identity went the rules' way (its pair not known yet: the shape asked, and
    # marked with what the memo had learnt then); the memo learnt the pair from it, so the next
    # two were asked again, and written from bytes
    from streams.runtime.remembered import SecondShape

    assert [type(s) for s in shapes._seconds.values()] == [SecondShape]
    for k, first, second in zip(keys, people, seconds, strict=True):
        state = PersonState.loads(stage.app.ctx.store.get(0, k) or b"")
        assert [f.event_id for f in state.facts] == [first.event_id, second.event_id]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12), st.text(max_size=12), st.text(max_size=12), st.text(max_size=12),
       st.integers(-10 ** 13, 10 ** 13), st.integers(-10 ** 13, 10 ** 13), st.sampled_from(["CIVIL_AFFAIRS", "a\"b\\c"]),
       st.booleans(), st.sampled_from([b"{}", b'{"2026":{"v":1,"o":{"1":2}}}']))
def test_a_state_of_two_facts_from_its_parts_and_one_read_back(id_number, name, first_id, second_id, first_ms,
                                                               second_ms, source, student, years):
    """``fill_second`` of ``second_parts`` is ``encode_plain`` of the two facts, and ``split_plain``
    reads ``plain_parts`` back from a state of one fact, whatever the strings (quotes,
    backslashes, ``,"o":`` itself) and times."""
    first = Fact(first_id, source, "MINIMUM_LIVING", "CERTIFIED", ',"o":0', dt.date(2026, 1, 1), first_ms, student,
                 None, None)
    second = Fact(second_id, "VETERANS", "ORPHAN", "UPDATED", None, dt.date(2027, 2, 3), second_ms, False,
                  "MINIMUM_LIVING", "ALIVE")
    parts = second_parts(first._replace(event_id="x", recorded_ms=5), second._replace(event_id="y", recorded_ms=6),
                         years)
    assert fill_second(parts, id_number, name, first_id, first_ms, second_id, second_ms) == \
        encode_plain(id_number, name, (first, second), years)
    one = encode_plain(id_number, name, (first,), years)
    assert split_plain(one, id_number, name, first_id, first_ms) == plain_parts(first, years)
    assert split_plain(one, id_number + "x", name, first_id, first_ms) is None


def test_a_shape_of_command_is_remembered_only_after_the_rules_decided_its_key(tmp_path):
    """The first person of a key goes the rules' way; from the second on, the bytes' way, with
    their own ID number, name, event id, message id and times."""
    import asyncio

    from streams.domain.identity import Identity
    from tests.unit.streams.domain.test_newcomers import _fact

    people: list[Identity] = [_fact(name=n) for n in ("张三", "李四", "王五")]
    stage = _Stage(tmp_path, remembered=True)
    taken = []
    shapes = stage.app.ctx.remembered
    assert shapes is not None
    learn = shapes._learn

    def counted(*args: Any) -> Any:
        taken.append(args[0])
        return learn(*args)

    shapes._learn = counted  # type: ignore[method-assign]
    other = _fact(category="EXTREME_POVERTY")  # another key first: the memo holds the book from then on
    asyncio.run(stage.take([(person_key(other.id_number, SECRET.encode()).encode(), _packed(other))], 0, {}))
    stage.sent.clear()
    commands = [(person_key(p.id_number, SECRET.encode()).encode(), _packed(p)) for p in people]
    asyncio.run(stage.take(commands, 1, {}))
    nc = stage.app.ctx.newcomers
    assert (nc.misses, nc.hits) == (2, 2)
    # tried at the first (the memo did not know its key: not kept, the rules decided), learned at
    # the second, known at the third
    assert len(taken) == 2 and taken[0] == taken[1]
    codec = Codec()
    fees = [codec.decode(v)[1] for t, _, v, *_ in stage.sent if t.endswith("fee-standard.v1")]
    assert [(f["id_number"], f["name"]) for f in fees] == [(p.id_number, p.name) for p in people]
    assert [f["message_id"][:32] for f in fees] == [k[:32].decode() for k, _ in commands]
    assert len({f["issued_at"] for f in fees}) == 3


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12), st.text(max_size=12), st.text(max_size=12), st.integers(-10 ** 13, 10 ** 13),
       st.sampled_from(["CIVIL_AFFAIRS", "a\"b\\c"]), st.booleans(), st.sampled_from([None, "ALIVE"]),
       st.sampled_from([b"{}", b'{"2026":{"v":1}}']))
def test_a_plain_state_from_its_parts_is_encode_plain(id_number, name, event_id, recorded, source, student, living,
                                                       years):
    """``fill_plain`` of ``plain_parts`` is ``encode_plain``, whatever the strings (quotes,
    backslashes, ``,"o":0`` itself) and times."""
    fact = Fact(event_id, source, "MINIMUM_LIVING", "CERTIFIED", ',"o":0', dt.date(2026, 1, 1), recorded, student,
                None, living)
    other = fact._replace(event_id="x", recorded_ms=5)
    assert fill_plain(plain_parts(other, years), id_number, name, event_id, recorded) == \
        encode_plain(id_number, name, (fact,), years)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40), st.text(max_size=20), st.text(max_size=20), st.integers(0, 2 ** 62))
def test_a_fee_standard_from_its_template_is_the_codecs_record(message_id, id_number, name, issued_at):
    """``Codec.template`` of the FeeStandard: any message id, ID number, name and issue time."""
    codec = Codec()
    s = FeeStandardIssued("m", "i", "n", "410102", 2026, 1, 1, 38000, 38000, 0, "DIFFERENCE", False, "MINIMUM_LIVING",
                          "MEDICAL_ASSISTANCE_FUND", "410000-2026", "FULL", 1)
    split = codec.template("FeeStandard", s.to_record(), ("message_id", "id_number", "name"), "issued_at")
    assert split is not None
    header, middle, tail = split
    record = {**s.to_record(), "message_id": message_id, "id_number": id_number, "name": name, "issued_at": issued_at}
    assert b"".join((header, avro_string(message_id), avro_string(id_number), avro_string(name), middle,
                     avro_long(issued_at), tail)) == codec.encode("FeeStandard", record)


def test_a_record_whose_person_fields_are_not_first_gets_no_template():
    """The schema's order decides: fields named as the person's that are not its first strings,
    or a stamp that is not a long, give None (each record is then encoded whole)."""
    codec = Codec()
    s = FeeStandardIssued("m", "i", "n", "410102", 2026, 1, 1, 38000, 38000, 0, "DIFFERENCE", False, "MINIMUM_LIVING",
                          "MEDICAL_ASSISTANCE_FUND", "410000-2026", "FULL", 1)
    assert codec.template("FeeStandard", s.to_record(), ("id_number", "message_id", "name"), "issued_at") is None
    assert codec.template("FeeStandard", s.to_record(), ("message_id", "id_number", "name"), "on_the_spot") is None


def test_a_new_policy_book_forgets_every_shape(tmp_path):
    """A shape holds the memo's decisions under one book: when the workers take another (a
    revision), the people of that shape are decided again, as without it."""
    import asyncio

    from tests.fixtures import shipped_book
    from tests.unit.streams.domain.test_newcomers import _fact, decided

    days = next(d for d in range(0, 900, 30)  # a fact the two books decide differently
                if decided(_fact(days=d), years_book(), "a" * 64, 1, {})[2] !=
                decided(_fact(days=d), shipped_book(), "a" * 64, 1, {})[2])
    takes = [[_fact(days=days, name=n) for n in ("张三", "李四", "王五")] for _ in range(2)]
    kept = []
    for remembered in (True, False):
        stage = _Stage(tmp_path / str(remembered), remembered)
        for take, (book, people) in enumerate(zip((years_book(), shipped_book()), takes, strict=True)):
            stage.app.ctx.book = book
            asyncio.run(stage.take([(person_key(p.id_number, SECRET.encode()).encode(), _packed(p)) for p in people],
                                   take, {}))
        kept.append(stage.kept())
    assert kept[0] == kept[1]


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.integers(-62_135_596_800_000, 253_402_300_799_999),
                 st.sampled_from([-62_135_596_800_000, 253_402_300_799_999, 0, -1, 1, 1_700_000_000_001])))
def test_the_recorded_time_from_milliseconds_is_the_datetimes(ms):
    """``recorded_of_ms`` is ``recorded_ms(occurred_at(ms))`` (the float's product, a millisecond
    below for some times) over the datetime's whole range."""
    from streams.domain.person import recorded_ms, recorded_of_ms

    assert recorded_of_ms(ms) == recorded_ms(wire.occurred_at(ms))


def test_the_range_of_milliseconds_is_the_datetimes():
    import pytest

    from streams.domain.person import MAX_MS, MIN_MS

    wire.occurred_at(MIN_MS), wire.occurred_at(MAX_MS)
    for outside in (MIN_MS - 1, MAX_MS + 1):
        with pytest.raises(OverflowError):
            wire.occurred_at(outside)


def test_a_fee_standard_whose_log_line_or_counter_reads_the_person_is_not_written_from_bytes(tmp_path):
    """A fee standard published with a log line (``describe()`` names the person) or counted by a
    person's field cannot be copied from another person's: such a shape is never kept, and every
    person of it goes the decoded way."""
    import asyncio
    import dataclasses

    from streams.kafka.topics import Counted
    from tests.unit.streams.domain.test_newcomers import _fact

    for change in ({"logged": True}, {"counted": Counted("zhucan_fee_standards_out_total", "per person",
                                                          ("id_number",))}):
        stage = _Stage(tmp_path / str(sorted(change)), remembered=True)
        routes = stage.app.ctx.publisher.routes
        topic, spec, labels = routes[FeeStandardIssued]
        spec = dataclasses.replace(spec, **change)
        routes[FeeStandardIssued] = (topic, spec, (lambda s: (s.id_number,)) if "counted" in change else labels)
        people = [_fact(name=n) for n in ("张三", "李四", "王五", "赵六")]
        asyncio.run(stage.take([(person_key(p.id_number, SECRET.encode()).encode(), _packed(p)) for p in people], 0,
                               {}))
        shapes = stage.app.ctx.remembered
        assert shapes is not None and list(shapes._shapes.values()) == [None]  # learned as "the decoded way"
        nc = stage.app.ctx.newcomers
        assert (nc.misses, nc.hits) == (1, 3)  # the memo still remembers them, the decoded way


_LEARNED: dict[str, Any] = {}


def _learned() -> tuple[_Stage, list[Any]]:
    """A stage whose memo learned a few shapes (fee standards, ledger lines, totals' changes), and
    those shapes: built once for the tests below."""
    if not _LEARNED:
        import asyncio
        import tempfile

        from tests.unit.streams.domain.test_newcomers import _fact

        tmp = Path(tempfile.mkdtemp(prefix="zhucan-learned-"))
        stage = _Stage(tmp, remembered=True)
        people = [_fact(name=n, category=c, student=s) for n in ("张三", "李四", "王五")
                  for c, s in (("MINIMUM_LIVING", False), ("EXTREME_POVERTY", True), ("MONITORED_RELAPSE_RISK", False))]
        asyncio.run(stage.take([(person_key(p.id_number, SECRET.encode()).encode(), _packed(p)) for p in people], 0, {}))
        remembered = stage.app.ctx.remembered
        assert remembered is not None
        _LEARNED["stage"] = stage
        _LEARNED["shapes"] = [s for s in remembered._shapes.values() if s is not None]
    return _LEARNED["stage"], _LEARNED["shapes"]


_ESCAPED = st.text(st.sampled_from(['"', "\\", "\n", "\x00", "\x1f", "\x7f", "\u2028", "é", "测", "😀", "a", "1"]),
                   max_size=6)


@needs_c
@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=20), _ESCAPED), st.one_of(st.text(max_size=12), _ESCAPED),
       st.one_of(st.text(max_size=16), _ESCAPED), st.integers(-62_135_596_800_000, 253_402_300_799_999),
       st.integers(0, 2 ** 62), st.integers(0, 2 ** 62), st.data())
def test_a_newcomers_records_in_c_are_the_pythons(id_number, name, event_id, recorded, now, line_now, data):
    """``Remembered.records`` (``newcomer_records`` in C) gives each learned shape's fee
    standards, ledger lines and state exactly as ``standards``, ``remembered_lines`` and
    ``fill_plain`` put them together, for any ID number, name and event id; it declines (None)
    only where JSON escapes one of them (the Python then writes it)."""
    stage, shapes = _learned()
    assert shapes and all(s.plan is not None for s in shapes)
    assert any(s.plan.lines for s in shapes) and any(s.plan.fees for s in shapes)
    shape = data.draw(st.sampled_from(shapes))
    remembered, ledger = stage.app.ctx.remembered, stage.app.ctx.ledger
    key = person_key("110101199001011234", SECRET.encode()).encode()
    made = remembered.records(shape, key, id_number, name, event_id, recorded, now, line_now, 3)
    plain = all(orjson.dumps(s) == b'"' + s.encode() + b'"' for s in (id_number, name, event_id))
    if made is None:
        assert not plain
        return
    person = avro_string(id_number) + avro_string(name)
    fees = remembered.standards(shape, key, key.decode(), person, now, 3)
    lines = ledger.remembered_lines(3, key, id_number, name, person, shape.known.lines, shape.known.totals, line_now)
    assert made == (fees, lines, fill_plain(shape.state, id_number, name, event_id, recorded))
    assert [key + k for k in shape.plan.line_keys] == list(made[1])


@needs_c
def test_a_newcomers_records_in_c_decline_what_python_cannot_encode():
    """A lone surrogate (no UTF-8), a time beyond 64 bits, a template of another type: declined."""
    stage, shapes = _learned()
    remembered = stage.app.ctx.remembered
    key = b"0" * 64
    assert remembered.records(shapes[0], key, "11010", "\ud800", "e", 1, 2, 3, 0) is None
    assert remembered.records(shapes[0], key, "11010", "n", "e", 2 ** 64, 2, 3, 0) is None
    assert remembered.records(shapes[0], key, "11010", "n", "e", True, 2, 3, 0) is None
    plan = shapes[0].plan
    spoiled = shapes[0]._replace(plan=plan._replace(state=(plan.state[0], "text", plan.state[2])))
    assert remembered.records(spoiled, key, "11010", "n", "e", 1, 2, 3, 0) is None
