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
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.dev.hotpath import Event, Record
from schemas.codec import Codec
from schemas.fast_writer import avro_long, avro_string
from streams.app import create_app
from streams.domain.ids import person_key
from streams.domain.messages import FeeStandardIssued
from streams.domain.state_codec import encode_plain, fill_plain, plain_parts
from streams.domain.timeline import Fact
from streams.runtime import wire
from streams.settings import Settings
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
