"""The decisions of people seen for the first time, remembered by what decides them.

A person's decisions are pure functions of their dated facts, the policy book and the years
opened (``person.py``). Most commands of a province's batch are a person's first: one identity,
no state. Two such people whose facts differ only in who they are get the same decisions:

- what identifies them is the fact's ``event_id`` and ``recorded_ms`` (when the department
  recorded it), the ID number, the name, the person key and the time of the decision. The
  rules read none of these to decide a person of one fact: a fact's ``recorded_ms`` orders
  facts and breaks ties between several; the ID number names the person in the fee standard
  and in review cases;
- except one thing the rules read from the ID number: the birth date, for whether the person
  is a child under a policy's age (``is_child``). It is part of the key unless the person was
  past every child age of the book on 1 January of its first year (then no year can count
  them as a child: most people).

So the key is every other field of the fact (``Fact`` holds every field the rules read), the
birth date where it can matter, and the years opened; the book is the one the memo was filled
with (another book empties it). The first person of a key is decided by ``PersonState``
itself; what it gave is remembered only when it is the years and fee standards alone (no
review case, whose text names the person, nor a year waiting for a policy, which raises one),
and the next people of that key get the same years, and the same fee standards with their own ID number, name, message id and
time. A remembered person's state is not built: its bytes are written from the key's years,
already encoded, and the person's own fact, ID number and name (``state_codec.encode_plain``).
``tests/unit/streams/domain/test_newcomers.py`` holds the two to the same bytes on random
people, many of them sharing a key.

A second department's record for a person held so (``apply_second``: a state of one fact and
its key's years, nothing else, byte for byte as the rules leave such a newcomer: about one
person in seven of a province's batch) is remembered the same way. The rules read the two
facts' identifiers only to order them against each other (recorded time, then event id: the
same department's record again is a redelivery), so the key is the first fact's key, the
second fact's fields but its identifiers, and how the two facts' recorded times and event ids
compare; what is remembered is the two-fact state's years, the fee standards (a new version),
the ledger lines that changed and the totals' change. ``tests/unit/streams/domain/test_newcomers.py``
holds it to the rules the same way, and tells apart neighbours in each part of the key.

The next people of a remembered key are, on the person stage, most often written from their
command's bytes (``streams/runtime/remembered.py``, through ``remembered``): no ``Identity``,
``Fact`` or fee standard is built for them.

Measured in docs/performance.md (issue #25, part 2); ``PERSON_MEMO_ENTRIES=0`` turns it off
(both; each kind keeps at most that many keys).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, NamedTuple

from streams.domain.identity import Identity
from streams.domain.ids import birth_date
from streams.domain.ledger import LedgerLine, Totals, contributions, line_changes, lines_of
from streams.domain.messages import Effect, FeeStandardIssued
from streams.domain.person import PersonState, fact_of
from streams.domain.policy.spec import PolicyBook
from streams.domain.state_codec import encode_plain, plain_newcomer, years_json
from streams.domain.timeline import Fact
from streams.domain.year import message_id

Key = tuple[Any, ...]
_RECORDED = Fact._fields.index("recorded_ms")  # (event_id is the first field)


class Newcomer(NamedTuple):
    """A person's state and effects after a command the memo took, and where its key is
    remembered, the ledger lines it changed and the totals' change (``line_changes``: the same
    for every person of a key, as the lines name no one). A remembered person (the second of a
    key on, newcomer or second identity) has no state object: ``stored`` is its state's bytes
    (what ``state.dumps()`` gives)."""

    state: PersonState | None
    effects: list[Effect]
    lines: dict[int, LedgerLine] | None = None
    totals: Totals | None = None
    stored: bytes | None = None


class _Pair(NamedTuple):
    years_json: bytes
    standards: list[FeeStandardIssued]
    lines: dict[int, LedgerLine]  # the lines the second fact changed (``line_changes``)
    change: Totals  # and what it changed the totals by


class Known(NamedTuple):
    """What is remembered of a newcomer's key (its first person's, decided by the rules)."""

    years_json: bytes  # the years' part of the state's bytes (``state_codec.years_json``)
    standards: list[FeeStandardIssued]
    lines: dict[int, LedgerLine]
    totals: Totals


def adult_since(book: PolicyBook) -> dt.date:
    """Born on or before this day: past every child age of ``book`` on 1 January of its first
    year, so a child in no year the book can decide."""
    years = [p.year for p in book]
    limits = [p.spec.child_age_below.value for p in book if p.spec.child_age_below is not None]
    if not years:
        return dt.date.max
    return dt.date(min(years) - max(limits, default=0), 1, 1)


class Newcomers:
    """The decisions of people with no state, by key (at most ``entries``; 0: none kept)."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self.book: PolicyBook | None = None
        self._adult = dt.date.max
        self._known: dict[Key, Known] = {}
        self.generation = 0  # one more each time what is remembered is forgotten (a cache of it checks)
        self._pairs: dict[Key, _Pair] = {}
        self.hits = 0
        self.misses = 0
        self.second_hits = 0
        self.second_misses = 0

    def _key(self, fact: Fact, id_number: str, opened: Mapping[str, int] | None) -> Key:
        return (fact[1:_RECORDED], fact[_RECORDED + 1:],  # every field but event_id and recorded_ms
                self.born_part(id_number), tuple(sorted(opened.items())) if opened else ())

    def born_part(self, id_number: str) -> dt.date | None:
        """The key's part read from the ID number: the birth date where a year could count the
        person as a child, else None (a function of ``id_number[6:14]`` alone)."""
        born = birth_date(id_number)
        return born if born is not None and born > self._adult else None

    def remembered(self, ev: Identity, book: PolicyBook, opened: Mapping[str, int] | None = None) \
            -> tuple[Fact, Known] | None:
        """``ev``'s fact and what is remembered of its key, which ``apply_identity`` would give a
        newcomer of ``ev`` now (``streams/runtime/remembered.py`` writes it from bytes); None when
        nothing is, or for another book. It counts nothing."""
        if self.entries <= 0 or book is not self.book:
            return None
        fact = fact_of(ev)
        known = self._known.get(self._key(fact, ev.id_number, opened))
        return None if known is None else (fact, known)

    def apply_identity(self, ev: Identity, book: PolicyBook, person_key: str, now_ms: int,
                       opened: Mapping[str, int] | None = None) -> Newcomer:
        """A new person's state after ``ev`` and its effects: what
        ``PersonState(id_number=ev.id_number).apply_identity(ev, ...)`` gives."""
        if self.entries <= 0:
            state = PersonState(id_number=ev.id_number)
            return Newcomer(state, state.apply_identity(ev, book, person_key, now_ms, opened))
        if book is not self.book:
            self.book, self._adult = book, adult_since(book)
            self._known.clear()
            self._pairs.clear()
            self.generation += 1
        fact = fact_of(ev)
        key = self._key(fact, ev.id_number, opened)
        known = self._known.get(key)
        if known is None:
            self.misses += 1
            state = PersonState(id_number=ev.id_number)
            effects = state.apply_identity(ev, book, person_key, now_ms, opened)
            if not _plain(state, effects, [fact]):
                return Newcomer(state, effects)
            if len(self._known) >= self.entries:
                self._known.clear()  # bounded: a batch's keys fill it again
                self.generation += 1
            lines = lines_of(state.years)
            known = self._known[key] = Known(
                years_json(state.years), [_standard_copy(e) for e in effects],  # type: ignore[arg-type]
                lines, contributions(lines))
            return Newcomer(state, effects, lines, _totals_copy(known.totals))
        self.hits += 1
        return Newcomer(None, _issued(known.standards, ev.id_number, ev.name, person_key, now_ms), known.lines,
                        _totals_copy(known.totals),
                        encode_plain(ev.id_number, ev.name, (fact,), known.years_json))

    def apply_second(self, ev: Identity, stored: bytes, book: PolicyBook, person_key: str, now_ms: int,
                     opened: Mapping[str, int] | None = None) -> Newcomer | None:
        """A second identity of a person held as a newcomer of a remembered key is left by the rules
        (``stored``, their state's bytes: one fact and that key's years, nothing else): what
        ``PersonState.loads(stored).apply_identity(ev, ...)`` gives, with the lines it changed and
        the totals' change (``line_changes``). None for any other state, or another name or ID
        number spelling (the rules decide then, by the caller).

        Its key is the first fact's key, the second fact's fields but its identifiers, and how the
        two facts' identifiers compare (the rules read recorded times and event ids only to order
        facts against each other): the first person of a key is decided by the rules, and what
        they give is remembered only when it is the years and fee standards alone, as for
        newcomers."""
        if self.entries <= 0 or book is not self.book:
            return None
        held = plain_newcomer(stored)
        if held is None:
            return None
        id_number, name, first = held
        if ev.name != name or ev.id_number != id_number:
            return None
        first_key = self._key(first, id_number, opened)
        known = self._known.get(first_key)
        if known is None or stored != encode_plain(id_number, name, (first,), known.years_json):
            return None  # not the state the rules give a newcomer of that key now
        fact = fact_of(ev)
        key = (first_key, fact[1:_RECORDED], fact[_RECORDED + 1:], _order(fact.recorded_ms, first.recorded_ms),
               _order(fact.event_id, first.event_id))
        pair = self._pairs.get(key)
        if pair is None:
            self.second_misses += 1
            state = PersonState.loads(stored)
            effects = state.apply_identity(ev, book, person_key, now_ms, opened)
            lines, change = line_changes(known.lines, (), lines_of(state.years, state.paid_out), state.paid_out,
                                         False) or ({}, {})
            if _plain(state, effects, [first, fact]) and state.name == name:
                if len(self._pairs) >= self.entries:
                    self._pairs.clear()
                self._pairs[key] = _Pair(years_json(state.years), [_standard_copy(e) for e in effects],  # type: ignore[arg-type]
                                         lines, change)
            return Newcomer(state, effects, lines, _totals_copy(change))
        self.second_hits += 1
        return Newcomer(None, _issued(pair.standards, id_number, name, person_key, now_ms), pair.lines,
                        _totals_copy(pair.change),
                        encode_plain(id_number, name, (first, fact), pair.years_json))


def _plain(state: PersonState, effects: list[Effect], facts: list[Fact]) -> bool:
    """Whether the rules gave the years and fee standards alone (what is remembered): no case,
    no year waiting, ``facts`` and nothing else held."""
    return all(type(e) is FeeStandardIssued for e in effects) and state.facts == facts and not (
        state.waiting or state.raised or state.seen or state.claims or state.paid_out or state.others)


def _order(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def _issued(standards: list[FeeStandardIssued], id_number: str, name: str, person_key: str,
            now_ms: int) -> list[Effect]:
    """A key's remembered fee standards, as the rules issue them to this person now."""
    issued: list[Effect] = []
    for s in standards:
        e = _standard_copy(s)
        e.message_id = message_id(person_key, s.insurance_year, s.version)
        e.id_number, e.name, e.issued_at = id_number, name, now_ms
        issued.append(e)
    return issued


def _totals_copy(totals: Totals) -> Totals:
    return {k: list(v) for k, v in totals.items()}


def _standard_copy(e: FeeStandardIssued) -> FeeStandardIssued:
    new = object.__new__(FeeStandardIssued)
    new.__dict__.update(e.__dict__)
    return new


__all__ = ["Known", "Newcomer", "Newcomers", "adult_since"]
