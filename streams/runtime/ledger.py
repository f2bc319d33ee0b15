"""The live ledger: ``ledger.v1`` lines and each partition's totals, kept by the person stage.

Every command that changes a person sends the person-years whose line changed
(``streams/domain/ledger.py``) to ``ledger.v1`` in the same unit of work as its effects, and
adds what the person's contribution to the totals changed by to the partition's pending totals.
When the unit commits (``fold``, run first), the pending totals are added to the partition's
stored totals, one person-table record per county-year (``~agg~<partition>~<county>~<year>``,
listed in ``~aggix~<partition>``), written with the states, to the changelog first: the totals
are the sum over the partition's people by construction, and a crash redoes both together.

Why here and not in a stage of its own keyed by region-year: under at-least-once, a stage that
adds and subtracts changes it consumes counts a redelivered change twice unless it remembers
every person-year it has seen (a table as large as the ledger). Kept beside the states, the
totals change in the same write as the states they sum.

The totals are published (``publish``, a timer) to ``zhucan.ledger-totals``: one snapshot per
partition, sent to the same partition, so that a reader needs only the last record of each
partition (``connectors/ops/ledger.py``), whatever the number of people. A partition's first
snapshot waits for its build (``BuildLedger``): a person table written before the ledger
existed gets its lines and totals from its states once, at the first start of this version.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import orjson

from schemas.codec import Codec
from schemas.fast_writer import avro_string, avro_time
from streams.domain.ledger import (
    LedgerLine,
    Totals,
    from_rows,
    line_changes,
    lines_of,
    merge,
    rows,
)
from streams.domain.money import PaidOut
from streams.kafka.topics import Topics
from streams.runtime.emit import Out
from streams.runtime.store import PersonStore
from streams.runtime.unit import UnitOfWork

log = logging.getLogger("zhucan.worker")
AGG = "~agg~"
BUILD_COMMAND = "ledger-build-v1"  # the build's command id: done once per partition (its marker)
Before = tuple[dict[int, LedgerLine], tuple[PaidOut, ...]]


TEMPLATES = 4096  # remembered lines' templates kept (a batch's memo keys fill it again)


class _Template(NamedTuple):
    """A remembered line's ``ledger.v1`` record, less the person and the time: the record is
    ``header`` + the ID number + the name + ``middle`` + ``updated_at`` + ``tail`` (the schema's
    field order), its key the person key + ``suffix``."""

    line: LedgerLine  # the line it was made of (held: its id is the template's key)
    year: int
    header: bytes
    middle: bytes
    tail: bytes
    suffix: bytes


def NOTHING() -> None:  # noqa: N802 - the one "no change" of ``note``, compared by identity
    """What ``note`` returns when the person's lines and totals did not change."""


def agg_key(partition: int, county: str, year: int) -> bytes:
    return f"{AGG}{partition}~{county}~{year}".encode()


def index_key(partition: int) -> bytes:
    return f"~aggix~{partition}".encode()


def built_key(partition: int) -> bytes:
    return f"~ledger~{partition}".encode()


def ledger_key(person_key: bytes, year: int) -> bytes:
    """``ledger.v1``'s key: the person key and the year (CONTRACT additions: LedgerEntry)."""
    return person_key + f"|{year}".encode()


class LedgerKeeper:
    def __init__(self, topics: Topics, codec: Codec, store: PersonStore, clock: Callable[[], int],
                 enabled: bool = True) -> None:
        self.topics = topics
        self.codec = codec
        self.store = store
        self.clock = clock
        self.enabled = enabled  # False only to play a worker of the previous version (tests: ZHUCAN_FAULTS no_ledger)
        self.pending: dict[int, Totals] = {}  # partition -> totals changed by the unit in hand
        # partition -> id of a remembered change (a memo's, the same object for every person of its
        # key) -> [it, how many people of the unit in hand it counts]: added to ``pending`` once, times that
        self.repeats: dict[int, dict[int, list[Any]]] = {}
        self.lines: dict[bytes, Out] = {}  # ledger.v1 key -> the line to send with the unit in hand (the last)
        self.marks: set[int] = set()  # partitions whose marker the unit in hand writes (counted from empty)
        self.dirty: set[int] = set()  # partitions whose stored totals changed since their last snapshot
        self.templates: dict[tuple[int, int], _Template | None] = {}  # (id of a remembered line, year) -> its template

    # -- one person -------------------------------------------------------------------------
    @staticmethod
    def before(years: Any, paid_out: list[PaidOut]) -> Before:
        """The person's lines as they stand before a command (for ``note``)."""
        return lines_of(years, paid_out), tuple(paid_out)

    def note(self, partition: int, key: bytes, was: Before | None, state: Any) -> Callable[[], None]:
        """The changed lines of ``state`` (after a command) for ``ledger.v1``, and its totals'
        change, computed (and encoded) now; the returned call adds them to the unit in hand and
        cannot fail: a command that fails before it leaves no trace."""
        if not self.enabled:
            return NOTHING
        old_lines, old_paid = was or ({}, ())
        found = line_changes(old_lines, old_paid, lines_of(state.years, state.paid_out), state.paid_out, was is None)
        if found is None:
            return NOTHING
        return self._noting(partition, key, state.id_number, state.name, *found)

    def note_known(self, partition: int, key: bytes, id_number: str, name: str, lines: dict[int, LedgerLine],
                   change: Totals) -> Callable[[], None]:
        """``note`` where the lines that changed and the totals' change are known already
        (``line_changes``'s; ``streams/domain/newcomers.py`` remembers them by key): a
        newcomer's (every line is new) or a remembered second identity's."""
        if not self.enabled or not (lines or change):
            return NOTHING
        return self._noting(partition, key, id_number, name, lines, change, remembered=True)

    def _noting(self, partition: int, key: bytes, id_number: str, name: str, lines: dict[int, LedgerLine],
                change: Totals, remembered: bool = False) -> Callable[[], None]:
        """The call that adds a person's changed lines (encoded now) and their totals' change to
        the unit in hand. ``remembered`` lines (a memo's, the same objects for every person of
        its key) are written from their templates."""
        now = self.clock()
        if remembered:
            entries = self._from_templates(partition, key, id_number, name, lines, now)
        else:
            entries = {ledger_key(key, year): self.entry(key, year, line, id_number, name, now, partition)
                       for year, line in lines.items()}

        def add() -> None:
            if remembered:
                self.add_remembered(partition, entries, change)
                return
            self.lines.update(entries)
            if change:
                merge(self.pending.setdefault(partition, {}), change)
        return add

    def remembered_lines(self, partition: int, key: bytes, id_number: str, name: str, person: bytes,
                         lines: dict[int, LedgerLine], change: Totals, now_ms: int | None = None) -> dict[bytes, Out]:
        """``note_known``'s records of a memo's lines, encoded now, for a remembered newcomer
        written from bytes (``handlers.remembered_identity``; ``person``: its ID number and
        name as Avro strings); ``add_remembered`` adds them. None of it when the ledger is off,
        nor the clock read when neither line nor totals' change (as ``note_known``); ``now_ms``:
        the clock's time read already for them."""
        if not self.enabled or not (lines or change):
            return {}
        return self._from_templates(partition, key, id_number, name, lines,
                                    self.clock() if now_ms is None else now_ms, person)

    def encoded_lines(self, partition: int, key: bytes, suffixes: tuple[bytes, ...],
                      values: tuple[bytes, ...]) -> dict[bytes, Out]:
        """``_from_templates``'s records of lines whose bytes were put together elsewhere (the C:
        ``Remembered.records``), each keyed by the person key and its template's ``suffix``."""
        topic = self.topics.ledger
        return {key + suffix: Out(topic, key + suffix, value, home=partition)
                for suffix, value in zip(suffixes, values, strict=True)}

    def add_remembered(self, partition: int, entries: dict[bytes, Out], change: Totals) -> None:
        """A memo's lines (encoded) and totals' change (the same object for every person of its
        key: counted, and added once, times its count, when the unit folds) to the unit in hand."""
        if not self.enabled:
            return
        self.lines.update(entries)
        if not change:
            return
        by = self.repeats.setdefault(partition, {})
        held = by.get(id(change))
        if held is None:
            by[id(change)] = [change, 1]  # held: its id stays its own until the unit is folded
        else:
            held[1] += 1

    def entry(self, key: bytes, year: int, line: LedgerLine, id_number: str, name: str, now_ms: int,
              partition: int) -> Out:
        record = {"id_number": id_number, "name": name, "insurance_year": year, "updated_at": now_ms,
                  **line._asdict()}
        topic = self.topics.ledger
        return Out(topic, ledger_key(key, year), self.codec.encode("LedgerEntry", record, topic=topic), home=partition)

    def _from_templates(self, partition: int, key: bytes, id_number: str, name: str, lines: dict[int, LedgerLine],
                        now_ms: int, person: bytes | None = None) -> dict[bytes, Out]:
        """``entry``'s records, each put together from its line's template and the person's own
        fields (held to ``entry`` byte for byte by tests/unit/streams/runtime/test_ledger_template.py;
        ``person``: the ID number and name as Avro strings, when made already)."""
        if person is None:
            person = avro_string(id_number) + avro_string(name)
        stamp = avro_time(now_ms)
        topic = self.topics.ledger
        entries: dict[bytes, Out] = {}
        for year, line in lines.items():
            t = self.template(year, line)
            if t is None:
                entries[ledger_key(key, year)] = self.entry(key, year, line, id_number, name, now_ms, partition)
                continue
            lk = key + t.suffix
            entries[lk] = Out(topic, lk, b"".join((t.header, person, t.middle, stamp, t.tail)), home=partition)
        return entries

    def template(self, year: int, line: LedgerLine) -> _Template | None:
        """The template of ``line`` in ``year``, made at its first use; None where the codec's
        record is not one a template can make (every record is then encoded whole)."""
        held = (id(line), year)
        if held in self.templates:  # a template holds its line, so the id is that line's (a None: encoded whole)
            found = self.templates[held]
            if found is None or found.line is line:
                return found
        if len(self.templates) >= TEMPLATES:
            self.templates.clear()
        made = self.templates[held] = self._template(year, line)
        return made

    def _template(self, year: int, line: LedgerLine) -> _Template | None:
        """The codec's record of the line split around the person's fields (``Codec.template``)."""
        split = self.codec.template("LedgerEntry", {"insurance_year": year, **line._asdict()}, ("id_number", "name"),
                                    "updated_at", topic=self.topics.ledger)
        return None if split is None else _Template(line, year, *split, f"|{year}".encode())

    # -- the partition's totals -------------------------------------------------------------
    def begin(self) -> None:
        """A new batch: nothing of an abandoned unit is carried over."""
        self.pending.clear()
        self.repeats.clear()
        self.lines.clear()
        self.marks.clear()

    def stored(self, unit: UnitOfWork[Any, Any], partition: int, county: str, year: int) -> Totals:
        key = agg_key(partition, county, year)
        found = unit.changes.get((partition, key)) or self.store.get(partition, key)
        return from_rows(orjson.loads(found)) if found else {}

    def index(self, unit: UnitOfWork[Any, Any], partition: int) -> list[str]:
        found = unit.changes.get((partition, index_key(partition))) or self.store.get(partition, index_key(partition))
        return list(orjson.loads(found)) if found else []

    def fold(self, unit: UnitOfWork[Any, Any]) -> None:
        """The lines to send into the unit (a person-year changed twice: its last line), and the
        pending totals into the unit's changes (run at the start of each commit)."""
        lines, self.lines = self.lines, {}
        unit.send(list(lines.values()))
        marks, self.marks = self.marks, set()
        for partition in marks:
            unit.change((partition, built_key(partition)), b"built")
        repeats, self.repeats = self.repeats, {}
        for partition, by in repeats.items():  # the same sum as adding each person's (``merge`` drops the zeros last)
            into = self.pending.setdefault(partition, {})
            for change, n in by.values():
                merge(into, {key: [v * n for v in values] for key, values in change.items()})
        pending, self.pending = self.pending, {}
        for partition, change in pending.items():
            by_place: dict[tuple[str, int], Totals] = {}
            for key, values in change.items():
                by_place.setdefault((key.county, key.year), {})[key] = values
            places = self.index(unit, partition)
            grown = False
            for (county, year), part in by_place.items():
                totals = self.stored(unit, partition, county, year)
                merge(totals, part)
                unit.change((partition, agg_key(partition, county, year)), orjson.dumps(rows(totals)))
                if f"{county}~{year}" not in places:
                    places.append(f"{county}~{year}")
                    grown = True
            if grown:
                unit.change((partition, index_key(partition)), orjson.dumps(sorted(places)))

    def replace(self, unit: UnitOfWork[Any, Any], partition: int, totals: Totals) -> None:
        """The partition's totals as ``totals`` (a build from the states): every county-year, the
        ones no longer held emptied, and the build's marker."""
        self.pending.pop(partition, None)
        self.repeats.pop(partition, None)
        by_place: dict[str, Totals] = {}
        for key, values in totals.items():
            by_place.setdefault(f"{key.county}~{key.year}", {})[key] = values
        for place in self.index(unit, partition):
            by_place.setdefault(place, {})
        for place, part in by_place.items():
            county, year = place.rsplit("~", 1)
            unit.change((partition, agg_key(partition, county, int(year))), orjson.dumps(rows(part)))
        unit.change((partition, index_key(partition)), orjson.dumps(sorted(by_place)))
        unit.change((partition, built_key(partition)), b"built")

    def written(self, partition: int, keys: Iterable[bytes]) -> None:
        """After a partition's states were written: note it when its totals changed."""
        if any(k.startswith(b"~agg") or k.startswith(b"~ledger~") for k in keys):
            self.dirty.add(partition)

    def built(self, partition: int) -> bool:
        """The partition's totals count every person in it: built from its states, or kept from
        the partition's first person on (its marker)."""
        return self.store.get(partition, built_key(partition)) is not None

    def first_unit(self, partition: int, partition_of: Callable[[bytes], int]) -> None:
        """Before a partition's first unit in this process: a partition with no marker and no
        person yet gets its marker with the unit in hand (its totals are counted from the first person
        on); one with people and no marker was written before the ledger, and waits for its
        build (``needs_build``)."""
        if self.enabled and not self.built(partition) and not self.store.has_people(partition, partition_of):
            self.marks.add(partition)  # written with the unit's totals (``fold``)

    def needs_build(self, partition: int, partition_of: Callable[[bytes], int]) -> bool:
        return self.enabled and not self.built(partition) and self.store.has_people(partition, partition_of)

    def snapshot(self, partition: int, next_offset: int | None) -> Out:
        """The partition's totals as stored, to publish on ``zhucan.ledger-totals`` (its own partition)."""
        found = self.store.get(partition, index_key(partition))
        out: list[list[object]] = []
        for place in orjson.loads(found) if found else []:
            county, year = place.rsplit("~", 1)
            stored = self.store.get(partition, agg_key(partition, county, int(year)))
            out += orjson.loads(stored) if stored else []
        doc = {"partition": partition, "built": self.built(partition) or out == [], "at_ms": self.clock(),
               "next_offset": next_offset, "rows": out}
        return Out(self.topics.ledger_totals, str(partition).encode(), json.dumps(doc).encode(), partition=partition)

