"""A remembered newcomer, from its command's bytes to its records' bytes (issue #25, part 2).

``streams/domain/newcomers.py`` decides a person's first identity once per key of the same
facts; most commands of a province's batch are the next people of a key. For each of them the
person stage still built the ``Identity`` from the command, its ``Fact`` and the key, a copy of
each fee standard with a dict and an Avro encode, and the state's bytes from the fact's
document. Here those records are put together from bytes kept per *shape* of command: the
packed command (``wire.pack_identity``'s JSON array) less what identifies the person (event
id, ID number, name, person number, occurrence time), with the key's birth-date part and the
years opened. A command of a known shape builds no Identity, Fact or fee standard.

A shape is learned from the rules' way, never guessed: its first command is decoded as before
(``unpack_identity``) and looked up in the memo (``Newcomers.remembered``); only a shape whose
key the memo knows is kept, holding the memo's entry and:

- each fee standard's record as a template (``Publisher.template``, by ``Codec.template``): the person's message id, ID
  number and name, the key's constant fields, the issue time; and the counters it adds to;
- the state's bytes as a template (``state_codec.plain_parts``): the person's ID number, name,
  event id and recorded time around the key's fact and years;
- the ledger lines and totals (``LedgerKeeper.remembered_lines`` and ``add_remembered``: the
  lines from their templates, the totals' change counted and added once per unit).

A second identity of a person held as such a newcomer (``Newcomers.apply_second``: about one
person in seven of a province's batch) is taken the same way (``second``) when the memo
remembers its pair: its *shape* is the held state's bytes less the person's identifiers
(``state_codec.read_plain``: the first fact and the key's years), the command's, the birth-date
part, the years opened and how the two facts' recorded times and event ids compare (the pair's
key); it holds the pair's entry, its fee standards' templates and the two-fact state's
(``state_codec.second_parts``). The state is read with one JSON parse and checked to be a
newcomer's as the memo leaves one (one fact and its years, nothing else, the command's ID number
and name); anything else goes the rules' way.

The fact's recorded time comes from the command's milliseconds without a datetime
(``person.recorded_of_ms``: the same float the datetime's ``timestamp()`` gives).

Where ``streams/_speedups.c`` is built, a newcomer's command is read (``identity_fields``) and
its records put together (``newcomer_records``, from the shape's ``Plan``: the same templates as
bytes) in C, each held to the Python here byte for byte (tests/unit/streams/test_speedups.py,
test_remembered.py); a string JSON would escape, and any command the C is not sure of, goes the
Python's way.

It is a cache of the memo, not a second source: it is emptied whenever the memo forgets
(``Newcomers.generation``), and whatever it is not sure of goes the rules' way (``None``): a
command of another form, an identifier of another JSON type (``true`` is not 1 here: the shape
is the fields' JSON), a time the datetime cannot hold, a fee standard whose counter or log
reads the person, a key whose first person's rules raised a review case or held a year
waiting (``Known.tail``), a person whose state is not a remembered newcomer's. ``tests/unit/streams/runtime/test_remembered.py`` holds it to the rules' way,
byte for byte.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from schemas.exceptions import DecodeError
from schemas.fast_writer import avro_string, avro_time
from streams.domain.departments import Departments
from streams.domain.messages import FeeStandardIssued
from streams.domain.newcomers import Known, Newcomers, Pair
from streams.domain.person import MAX_MS, MIN_MS, recorded_of_ms
from streams.domain.policy.spec import PolicyBook
from streams.domain.state_codec import (
    PLAIN_END,
    PLAIN_START,
    encode_plain,
    fill_second,
    plain_parts,
    read_plain,
    second_parts,
)
from streams.runtime import wire
from streams.runtime.emit import Out
from streams.runtime.ledger import LedgerKeeper
from streams.runtime.publish import Publisher, Template
from streams.runtime.speedups import C

_PERSON = ("message_id", "id_number", "name")  # a fee standard's fields that name the person, in the schema's order
_STAMP = "issued_at"
_BORN = slice(6, 14)  # what the key's birth-date part reads of an ID number
_UNSEEN: Any = object()  # a cache's "not there" (None is a value there)


def identity_fields(value: bytes) -> tuple[bytes, str, str, str, int] | None:
    """A packed identity command's fields but the person's identifiers (their JSON: ``true`` and 1
    differ), its event id, ID number, name and occurrence's epoch milliseconds; None where it is
    not a command of 13 fields with string identifiers and a time the datetime holds (the rules'
    way then decodes it). ``streams/_speedups.c``'s ``identity_fields`` is the same in C."""
    try:
        f = orjson.loads(memoryview(value)[len(wire.IDENTITY):])
    except orjson.JSONDecodeError:
        return None
    if type(f) is not list or len(f) != 13:
        return None
    event_id, id_number, name, occurred_ms = f[0], f[3], f[4], f[8]
    if type(event_id) is not str or type(id_number) is not str or type(name) is not str \
            or type(occurred_ms) is not int:
        return None
    if not MIN_MS <= occurred_ms <= MAX_MS:  # a time the datetime cannot hold: dead-lettered the rules' way
        return None
    return orjson.dumps((f[1], f[2], f[5], f[6], f[7], f[9], f[10], f[12])), event_id, id_number, name, occurred_ms


class _Standard(NamedTuple):
    """A remembered fee standard: its record's template, and its message id after the person
    key's first 32 characters (``year.message_id``)."""

    template: Template
    suffix: str


class Plan(NamedTuple):
    """A shape's records as ``streams/_speedups.c``'s ``newcomer_records`` puts them together: the
    same templates as ``Remembered.standards``, ``LedgerKeeper.remembered_lines`` and
    ``fill_plain`` use, as bytes (held to them byte for byte by test_remembered.py)."""

    fees: tuple[tuple[bytes, bytes, bytes, bytes], ...]  # per fee standard: header, message id suffix, middle, tail
    lines: tuple[tuple[bytes, bytes, bytes], ...]  # per ledger line: header, middle, tail
    state: tuple[bytes, bytes, bytes]  # the state's start, then ``plain_parts``
    line_keys: tuple[bytes, ...]  # each line's record key after the person key
    line_clock: bool  # whether the ledger reads its clock for this person (as ``remembered_lines``)


class Shape(NamedTuple):
    """What a known shape of command gives every person of it."""

    known: Known  # the memo's entry (its ledger lines, totals and years)
    state: tuple[bytes, bytes]  # ``plain_parts`` of the shape's fact and the key's years
    standards: tuple[_Standard, ...]
    plan: Plan | None = None  # the same in C (None: not built, or a line the ledger encodes whole)


class SecondShape(NamedTuple):
    """What a known pair of a held newcomer's state and a second identity's command gives every
    person of it (``Newcomers.apply_second``'s pair)."""

    pair: Pair  # the memo's entry (its ledger lines, totals' change and years)
    state: tuple[bytes, bytes, bytes, bytes]  # ``second_parts`` of the two facts and the pair's years
    standards: tuple[_Standard, ...]


class Remembered:
    """Shapes of command whose newcomers the memo remembers (at most ``newcomers.entries``)."""

    def __init__(self, newcomers: Newcomers, publisher: Publisher, departments: Departments,
                 ledger: LedgerKeeper | None = None) -> None:
        self.newcomers = newcomers
        self.publisher = publisher
        self.departments = departments
        self.ledger = ledger  # its line templates, for a shape's ``Plan``
        self._shapes: dict[tuple[Any, ...], Shape | None] = {}
        # a pair's shape; None: one the decoded way writes; an int: not known to the memo when it
        # had learnt that many keys and pairs (``Newcomers.learnt``), asked again once it has more
        self._seconds: dict[tuple[Any, ...], SecondShape | int | None] = {}
        self._born: dict[str, dt.date | None] = {}
        self._generation = newcomers.generation

    def of(self, value: bytes, book: PolicyBook, opened: Mapping[str, int] | None) \
            -> tuple[Shape, str, str, str, int] | None:
        """The shape of a packed identity command, with its event id, ID number, name and the
        fact's recorded time; None for the rules' way (see the module's docstring)."""
        read = self._read(value, book)
        if read is None:
            return None
        fields, event_id, id_number, name, recorded, born = read
        key = (fields, born, tuple(sorted(opened.items())) if opened else ())
        shape = self._shapes.get(key, _UNSEEN)
        if shape is _UNSEEN:
            shape = self._learn(key, value, book, opened)
        return None if shape is None else (shape, event_id, id_number, name, recorded)

    def second(self, value: bytes, stored: bytes, book: PolicyBook, opened: Mapping[str, int] | None) \
            -> tuple[SecondShape, str, str, str, int, str, int] | None:
        """The shape of a second identity's packed command ``value`` for a person whose state is
        ``stored`` (a newcomer's, as the memo leaves one), with the ID number, name, the first
        fact's event id and recorded time and the second's; None for the rules' way."""
        read = self._read(value, book)
        if read is None:
            return None
        fields, event_id, id_number, name, recorded, born = read
        first = read_plain(stored, id_number, name)  # the held state's first fact's id and time, and its parts
        if first is None:
            return None
        first_id, first_ms, parts = first
        key = (parts, fields, born, tuple(sorted(opened.items())) if opened else (),
               (recorded > first_ms) - (recorded < first_ms), (event_id > first_id) - (event_id < first_id))
        shape = self._seconds.get(key, _UNSEEN)
        if shape is _UNSEEN or type(shape) is int and shape != self.newcomers.learnt:
            shape = self._learn_second(key, value, stored, book, opened)
        if shape is None or type(shape) is int:
            return None
        return shape, id_number, name, first_id, first_ms, event_id, recorded

    def _read(self, value: bytes, book: PolicyBook) -> tuple[bytes, str, str, str, int, dt.date | None] | None:
        """A packed identity command's fields but its identifiers (as JSON: ``true`` and 1
        differ), its event id, ID number, name, recorded time and the key's birth-date part;
        None for the rules' way."""
        nc = self.newcomers
        if nc.entries <= 0 or book is not nc.book:
            return None
        if self._generation != nc.generation:
            self._shapes.clear()
            self._seconds.clear()
            self._born.clear()
            self._generation = nc.generation
        read = C.identity_fields(value) if C is not None else None  # the common command, in C
        if read is None:
            read = identity_fields(value)
            if read is None:
                return None
        fields, event_id, id_number, name, occurred_ms = read
        born_at = id_number[_BORN]
        born = self._born.get(born_at, _UNSEEN)
        if born is _UNSEEN:
            born = self._born[born_at] = nc.born_part(id_number)
        return fields, event_id, id_number, name, recorded_of_ms(occurred_ms), born

    def _learn_second(self, key: tuple[Any, ...], value: bytes, stored: bytes, book: PolicyBook,
                      opened: Mapping[str, int] | None) -> SecondShape | int | None:
        """A pair's shape from its first command, by the rules' decoding and the memo; while the
        memo does not know the pair (the rules decide it, and the memo may learn it then, or
        never: a review case), what it had learnt then, so that the next command of the shape is
        not decoded twice until it has learnt more."""
        try:
            ev = wire.unpack_identity(value, self.departments)
        except DecodeError:
            return None
        found = self.newcomers.remembered_second(ev, stored, book, opened)
        if found is None:  # not known yet: not asked again until the memo has learnt something
            self._keep(self._seconds, key, self.newcomers.learnt)
            return None
        first, fact, pair = found
        standards = self._templates(pair.effects) if pair.tail == PLAIN_END else None
        parts = second_parts(first, fact, pair.years_json)
        if standards is None or fill_second(parts, ev.id_number, ev.name, first.event_id, first.recorded_ms,
                                            fact.event_id, fact.recorded_ms) != \
                encode_plain(ev.id_number, ev.name, (first, fact), pair.years_json):
            shape = None  # (a pair the decoded way writes, whoever it is)
        else:
            shape = SecondShape(pair, parts, standards)
        self._keep(self._seconds, key, shape)
        return shape

    def _learn(self, key: tuple[Any, ...], value: bytes, book: PolicyBook,
               opened: Mapping[str, int] | None) -> Shape | None:
        """A shape from its first command, by the rules' decoding and the memo (not kept when the
        memo does not know its key yet: the rules decide that person, and the memo learns it)."""
        try:
            ev = wire.unpack_identity(value, self.departments)
        except DecodeError:
            return None  # the rules' way dead-letters it
        found = self.newcomers.remembered(ev, book, opened)
        if found is None:
            return None
        fact, known = found
        shape = self._shape(known, fact)
        self._keep(self._shapes, key, shape)
        return shape

    def _keep(self, cache: dict[tuple[Any, ...], Any], key: tuple[Any, ...], value: Any) -> None:
        """Into one of the caches, at most ``newcomers.entries`` (emptied when full, as the memo is)."""
        if len(cache) >= self.newcomers.entries:
            cache.clear()
        cache[key] = value

    def _shape(self, known: Known, fact: Any) -> Shape | None:
        if known.tail != PLAIN_END:  # the state holds more than its fact and years: the decoded way writes it
            return None
        standards = self._templates(known.effects)
        if standards is None:
            return None
        parts = plain_parts(fact, known.years_json)
        return Shape(known, parts, standards, self._plan(standards, known, parts))

    def _plan(self, standards: tuple[_Standard, ...], known: Known, parts: tuple[bytes, bytes]) -> Plan | None:
        """The shape's ``Plan``; None where the C is not built or a line has no template."""
        ledger = self.ledger
        if C is None or ledger is None:
            return None
        lines: list[tuple[bytes, bytes, bytes]] = []
        keys: list[bytes] = []
        clock = ledger.enabled and bool(known.lines or known.totals)  # as ``remembered_lines``
        for year, line in known.lines.items() if clock else ():
            t = ledger.template(year, line)
            if t is None:
                return None
            lines.append((t.header, t.middle, t.tail))
            keys.append(t.suffix)
        fees = tuple((s.template.header, s.suffix.encode(), s.template.middle, s.template.tail) for s in standards)
        return Plan(fees, tuple(lines), (PLAIN_START, *parts), tuple(keys), clock)

    def records(self, shape: Shape, key: bytes, id_number: str, name: str, event_id: str, recorded: int,
                now_ms: int, line_ms: int, home: int) -> tuple[list[Out], dict[bytes, Out], bytes] | None:
        """The shape's fee standards, ledger lines and state for this person, by
        ``newcomer_records`` (the times: the clock's, and the ledger's when ``Plan.line_clock``;
        ``home``: the person's partition); None where the C does not write them (``standards``,
        ``LedgerKeeper.remembered_lines`` and ``fill_plain`` then do, at the same times)."""
        plan = shape.plan
        if plan is None:
            return None
        made = C.newcomer_records(plan.fees, plan.lines, plan.state, key[:32], id_number, name,  # type: ignore[union-attr]
                                  event_id, recorded, now_ms, line_ms)
        if made is None:
            return None
        fees, values, stored = made
        assert self.ledger is not None  # (a plan is built with it)
        return ([Out(s.template.topic, key, v, home=home) for s, v in zip(shape.standards, fees, strict=True)],
                self.ledger.encoded_lines(home, key, plan.line_keys, values), stored)

    def _templates(self, effects: Any) -> tuple[_Standard, ...] | None:
        """The fee standards' templates, or None where an effect is not one the templates write
        (a review case: the decoded way publishes it)."""
        standards = []
        for s in effects:
            template = self.publisher.template(s, _PERSON, _STAMP) if isinstance(s, FeeStandardIssued) else None
            if template is None or not isinstance(s, FeeStandardIssued):
                return None
            standards.append(_Standard(template, f"-{s.insurance_year}-v{s.version}"))
        return tuple(standards)

    def standards(self, shape: Shape | SecondShape, key: bytes, person_key: str, person: bytes, now_ms: int,
                  home: int) -> list[Out]:
        """The fee standards' records for this person (``person``: their ID number and name as
        Avro strings): ``Publisher.publish``'s of the memo's standards issued to them
        (``newcomers._issued``)."""
        stamp, head = avro_time(now_ms), person_key[:32]
        outs = []
        for s in shape.standards:
            t = s.template
            outs.append(Out(t.topic, key, b"".join((t.header, avro_string(head + s.suffix), person, t.middle, stamp,
                                                     t.tail)), home=home))
        return outs


__all__ = ["Plan", "Remembered", "SecondShape", "Shape", "identity_fields"]
