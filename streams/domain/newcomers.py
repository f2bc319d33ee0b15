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
itself; what it gave is remembered when it is the years, fee standards and review cases
alone, and the next people of that key get the same years, and the same fee standards with
their own ID number, name, message id and time.

A review case is remembered (since 2026-12-07: in a province's batch, one newcomer in twenty
holds a category its region's policy does not list for the year, a CATEGORY_NOT_COVERED case
each) only where it names the person by what the memo puts in again: its case id is the hash
of a trigger the person key starts (or the person's own event id), and its text names them by
their masked ID number at most, never by their ID number, birth date, name, event id or person
key; what the state keeps (the cases' codes, the years waiting for a policy) names no one.
``_learnt`` checks that on the key's first person, and keeps the key only if the effects it
would raise for that person again are the rules' own.

A remembered person's state is not built: its bytes are written from the key's years, already
encoded, and the person's own fact, ID number and name (``state_codec.encode_plain``).
``tests/unit/streams/domain/test_newcomers.py`` holds the two to the same bytes on random
people, many of them sharing a key.

A second department's record for a person held so (``apply_second``: a state of one fact and
its key's years, nothing else, byte for byte as the rules leave such a newcomer: about one
person in seven of a province's batch) is remembered the same way. The rules read the two
facts' identifiers only to order them against each other (recorded time, then event id: the
same department's record again is a redelivery), so the key is the first fact's key, the
second fact's fields but its identifiers, and how the two facts' recorded times and event ids
compare; what is remembered is the two-fact state's years, the fee standards (a new version)
and the review cases (as a newcomer's are, since 2026-12-07), the ledger lines that changed and
the totals' change. A redelivered record (the same department's event id again) changes
nothing, as the rules' first check finds. ``tests/unit/streams/domain/test_newcomers.py``
holds it to the rules the same way, and tells apart neighbours in each part of the key.

The next people of a remembered key are, on the person stage, most often written from their
command's bytes (``streams/runtime/remembered.py``, through ``remembered``): no ``Identity``,
``Fact`` or fee standard is built for them.

Measured in docs/performance.md (issue #25, part 2); ``PERSON_MEMO_ENTRIES=0`` turns it off
(both; each kind keeps at most that many keys).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from streams.domain.enums import ReviewKind
from streams.domain.identity import Identity
from streams.domain.ids import birth_date, mask_id
from streams.domain.ledger import LedgerLine, Totals, contributions, line_changes, lines_of
from streams.domain.messages import Effect, FeeStandardIssued, ReviewRaised, case_id
from streams.domain.person import PersonState, fact_of
from streams.domain.policy.spec import PolicyBook
from streams.domain.state_codec import PLAIN_END, encode_plain, plain_newcomer, years_json
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


class Pair(NamedTuple):
    years_json: bytes
    effects: list[FeeStandardIssued | Review]  # in the rules' order
    lines: dict[int, LedgerLine]  # the lines the second fact changed (``line_changes``)
    change: Totals  # and what it changed the totals by
    tail: bytes = PLAIN_END  # the two-fact state's bytes after its years (``Known.tail``)


class Review(NamedTuple):
    """A review case a key's first person raised, as the rules raise it for another person of the
    key: its trigger is the person key and ``suffix`` (or, ``by_event``, the person's own event
    id), its detail ``detail`` around the person's masked ID number (a tuple of the text before
    and after it) or, where it does not name them, the text itself."""

    by_event: bool
    suffix: str
    kind: str
    insurance_year: int | None
    code: str
    amount_fen: int | None
    detail: tuple[str, str] | str


class Known(NamedTuple):
    """What is remembered of a newcomer's key (its first person's, decided by the rules)."""

    years_json: bytes  # the years' part of the state's bytes (``state_codec.years_json``)
    effects: list[FeeStandardIssued | Review]  # in the rules' order
    lines: dict[int, LedgerLine]
    totals: Totals
    # the state's bytes after its years: ``PLAIN_END`` (nothing else held), or the years waiting
    # for a policy and the cases raised (``"w"``, ``"k"``), which name no one
    tail: bytes = PLAIN_END


class _Noting(PersonState):
    """``PersonState`` that notes the trigger of each review case it raises (``PersonRecord.review``:
    a case id is a hash of it), so that the memo can raise it for the next people of the key."""

    triggers: dict[int, str]

    def review(self, trigger: str, kind: ReviewKind, year: int | None, code: str, detail: str, now_ms: int,
               amount_fen: int | None = None) -> ReviewRaised:
        raised = super().review(trigger, kind, year, code, detail, now_ms, amount_fen)
        self.triggers[id(raised)] = trigger
        return raised


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
        self.learnt = 0  # one more each time a key or a pair is remembered (a cache of what it lacked checks)
        self._pairs: dict[Key, Pair] = {}
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
            state = _Noting(id_number=ev.id_number)
            state.triggers = {}
            effects = state.apply_identity(ev, book, person_key, now_ms, opened)
            learnt = _learnt(state, effects, [fact], ev, person_key, now_ms)
            if learnt is None:
                return Newcomer(state, effects)
            if len(self._known) >= self.entries:
                self._known.clear()  # bounded: a batch's keys fill it again
                self.generation += 1
            lines = lines_of(state.years)
            known = self._known[key] = Known(years_json(state.years), learnt[0], lines, contributions(lines), learnt[1])
            self.learnt += 1
            return Newcomer(state, effects, lines, _totals_copy(known.totals))
        self.hits += 1
        return Newcomer(None, _issued(known.effects, ev.id_number, ev.name, person_key, now_ms, ev.event_id),
                        known.lines, _totals_copy(known.totals),
                        encode_plain(ev.id_number, ev.name, (fact,), known.years_json, known.tail))

    def _second_key(self, ev: Identity, stored: bytes, book: PolicyBook, opened: Mapping[str, int] | None) \
            -> tuple[str, str, Fact, Fact, Known, Key] | None:
        """``apply_second``'s reading of a held newcomer's state and a second identity: (ID number,
        name, first fact, second fact, the first's key's entry, the pair's key), or None for the
        rules' way."""
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
        if known is None or stored != encode_plain(id_number, name, (first,), known.years_json, known.tail):
            return None  # not the state the rules give a newcomer of that key now
        fact = fact_of(ev)
        key = (first_key, fact[1:_RECORDED], fact[_RECORDED + 1:], _order(fact.recorded_ms, first.recorded_ms),
               _order(fact.event_id, first.event_id))
        return id_number, name, first, fact, known, key

    def remembered_second(self, ev: Identity, stored: bytes, book: PolicyBook,
                          opened: Mapping[str, int] | None = None) -> tuple[Fact, Fact, Pair] | None:
        """The two facts of a second identity ``ev`` of the held newcomer ``stored``, and what is
        remembered of their pair, which ``apply_second`` would give now
        (``streams/runtime/remembered.py`` writes it from bytes); None when nothing is. It counts
        nothing."""
        found = self._second_key(ev, stored, book, opened)
        if found is None:
            return None
        pair = self._pairs.get(found[5])
        return None if pair is None else (found[2], found[3], pair)

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
        found = self._second_key(ev, stored, book, opened)
        if found is None:
            return None
        id_number, name, first, fact, known, key = found
        if fact.event_id == first.event_id and fact.source == first.source:
            # the same department's record again: the rules' first check finds it redelivered and
            # change nothing (``PersonState.apply_identity``); neither remembered nor counted
            return Newcomer(None, [], {}, {}, stored)
        pair = self._pairs.get(key)
        if pair is None:
            self.second_misses += 1
            state = _Noting.loads(stored)
            state.triggers = {}
            effects = state.apply_identity(ev, book, person_key, now_ms, opened)
            lines, change = line_changes(known.lines, (), lines_of(state.years, state.paid_out), state.paid_out,
                                         False) or ({}, {})
            learnt = _learnt(state, effects, [first, fact], ev, person_key, now_ms) if state.name == name else None
            if learnt is not None:
                if len(self._pairs) >= self.entries:
                    self._pairs.clear()
                    self.generation += 1  # (``remembered.py`` keeps pairs too)
                self._pairs[key] = Pair(years_json(state.years), learnt[0], lines, change, learnt[1])
                self.learnt += 1
            return Newcomer(state, effects, lines, _totals_copy(change))
        self.second_hits += 1
        return Newcomer(None, _issued(pair.effects, id_number, name, person_key, now_ms, ev.event_id), pair.lines,
                        _totals_copy(pair.change),
                        encode_plain(id_number, name, (first, fact), pair.years_json, pair.tail))


def _learnt(state: _Noting, effects: list[Effect], facts: list[Fact], ev: Identity, person_key: str,
            now_ms: int) -> tuple[list[FeeStandardIssued | Review], bytes] | None:
    """What the next people of a newcomer's key (or of a second identity's pair) get, from the
    rules' decision for its first (``state``, ``effects``, after ``ev``): the effects as the memo
    raises them and the state's bytes after its years; None where the decision is not all the
    key's.

    The rules gave the years, fee standards and review cases alone, and held ``facts`` and
    nothing else but the years waiting for a policy and the cases raised, which name no one.
    Each case was raised by ``PersonRecord.review`` with a trigger the person key starts (or
    the person's own event id), and its text names the person by their masked ID number at
    most: not by their ID number, birth date, name, event id or person key. Then the memo
    raises the first person's own effects again, and keeps them only if they are the rules'."""
    if state.facts != facts or state.seen or state.claims or state.paid_out or state.others:
        return None
    who = [w for w in (ev.id_number, ev.id_number[6:14], ev.name, person_key, *(f.event_id for f in facts)) if w]
    if any(w in r for r in state.raised for w in who):
        return None
    masked = mask_id(ev.id_number)
    kept: list[FeeStandardIssued | Review] = []
    for e in effects:
        if type(e) is FeeStandardIssued:
            kept.append(e)
            continue
        if type(e) is not ReviewRaised:
            return None
        review: ReviewRaised = e
        trigger = state.triggers.get(id(review))
        if trigger is None or any(w in review.detail for w in who) or review.detail.count(masked) > 1:
            return None
        if trigger == ev.event_id:
            by_event, suffix = True, ""
        elif trigger.startswith(person_key):
            by_event, suffix = False, trigger[len(person_key):]
        else:
            return None
        before, named, after = review.detail.partition(masked)
        kept.append(Review(by_event, suffix, review.kind, review.insurance_year, review.code, review.amount_fen,
                           (before, after) if named else review.detail))
    doc = state.dumps()
    head = encode_plain(ev.id_number, ev.name, facts, years_json(state.years), b"")
    if not doc.startswith(head):
        return None
    raised = _issued(kept, ev.id_number, ev.name, person_key, now_ms, ev.event_id)
    if [(type(e), e.__dict__) for e in raised] != [(type(e), e.__dict__) for e in effects]:
        return None  # not raised again as the rules raised it: the rules decide every person of it
    return kept, doc[len(head):]


def _order(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def _issued(remembered: Sequence[FeeStandardIssued | Review], id_number: str, name: str, person_key: str,
            now_ms: int, event_id: str = "") -> list[Effect]:
    """A key's remembered effects, as the rules issue them to this person now (``event_id``: the
    fact's, for a case it triggers)."""
    issued: list[Effect] = []
    for s in remembered:
        if isinstance(s, Review):
            detail = s.detail if isinstance(s.detail, str) else mask_id(id_number).join(s.detail)
            year = s.insurance_year
            issued.append(ReviewRaised(case_id=case_id(event_id if s.by_event else person_key + s.suffix, ReviewKind(s.kind), year),
                                       kind=s.kind, id_number=id_number, insurance_year=year, detail=detail,
                                       raised_at=now_ms, code=s.code, amount_fen=s.amount_fen))
            continue
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


__all__ = ["Known", "Newcomer", "Newcomers", "Pair", "Review", "adult_since"]
