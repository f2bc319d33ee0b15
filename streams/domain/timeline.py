"""A person's timeline: the dated identity facts the departments sent, and what held when.

Bitemporal: each fact keeps the day it takes effect (``effective``, valid time) apart from
when the department recorded it (``recorded_ms``, transaction time). Facts are never
dropped or overwritten (an identical restatement is not stored twice, ``person.py``); the
spells (who held which identity over which days) are a fold of all the facts, so whatever
order they arrived in, or tied in, the same facts give the same spells.

Rules of the fold (issues #11 and #19, CONTRACT "Additions, 2026-12" and rules 11-12):
- Facts are folded by effective date, then recorded order (a batch file's rows are recorded
  in row order, ``connectors/importer.py``), then CERTIFIED, UPDATED, REVOKED, DECEASED, then
  event id: a tie never depends on a content hash.
- CERTIFIED opens a spell of (source, category) from its effective date; a CERTIFIED of an
  identity already open and recorded after the one that opened it restates its start (a
  correction, keeping the county moves dated after it); one recorded before it adds nothing.
- UPDATED changes only the identity it names: its county or student flag from the effective
  date (the spell keeps its start, so a county move is not a new certification). With
  ``previous_category`` it ends that identity on the effective date and starts the named one
  (a change of class). A REVOKED of one class and a CERTIFIED of another by the same
  department on the same day is the same change of class (CONTRACT allows both forms).
- REVOKED ends the named identity's open spell on the effective date. An exit that finds no
  open spell (it sorted before the identity it ends) is kept: when that identity opens, an
  exit recorded after the fact that opened it ends it there (it never held), rule 11.
- Deaths have an owner (rule 12): DECEASED, or ``living_status`` DECEASED, from a department
  stands until that department, in a later record, sends an UPDATED of its identity with
  ``living_status`` ALIVE. Another department's ALIVE recorded after it restores nothing and
  is listed in ``conflicts`` (a LIVING_STATUS_CONFLICT case). How a death counts per year is
  ``alive_for``.

Pure: the standard library and the domain's enums.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from streams.domain.enums import Change, LivingStatus

# A fact's change and living status are kept as their values (they compare equal to the members).
CERTIFIED, UPDATED, REVOKED, DECEASED = Change.CERTIFIED, Change.UPDATED, Change.REVOKED, Change.DECEASED
ALIVE = LivingStatus.ALIVE
ENDED_BY_REVOCATION, ENDED_BY_CHANGE = Change.REVOKED, Change.UPDATED


class Fact(NamedTuple):
    """One identity event as the timeline keeps it (every field the rules read). A NamedTuple:
    built for every event on the hot path, where a frozen dataclass's __init__ costs ~4x more."""

    event_id: str
    source: str
    category: str
    change: str
    region_code: str
    effective: dt.date
    recorded_ms: int
    is_student: bool = False
    previous_category: str | None = None
    living_status: str | None = None

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.event_id, "s": self.source, "c": self.category, "x": self.change,
                               "r": self.region_code, "e": self.effective.toordinal(), "o": self.recorded_ms}
        if self.is_student:
            doc["t"] = True
        if self.previous_category:
            doc["p"] = self.previous_category
        if self.living_status:
            doc["l"] = self.living_status
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Fact:
        return cls(event_id=doc["id"], source=doc["s"], category=doc["c"], change=doc["x"], region_code=doc["r"],
                   effective=dt.date.fromordinal(doc["e"]), recorded_ms=doc["o"], is_student=doc.get("t", False),
                   previous_category=doc.get("p"), living_status=doc.get("l"))


@dataclass(slots=True)
class Spell:
    """One identity held from ``since`` until ``end`` (exclusive; None: still held)."""

    source: str
    category: str
    since: dt.date
    recorded_ms: int
    end: dt.date | None = None
    ended_by: str = ""  # REVOKED, or UPDATED for a change of category
    # (from day, county, student flag), ascending: what an UPDATED changed, and from when
    changes: list[tuple[dt.date, str, bool]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.source}/{self.category}"

    @property
    def is_open(self) -> bool:
        return self.end is None

    def _as_of(self, day: dt.date) -> tuple[dt.date, str, bool]:
        if len(self.changes) == 1:  # most identities were never UPDATED
            return self.changes[0]
        current = self.changes[0]
        for change in self.changes:
            if change[0] <= day:
                current = change
        return current

    def region_on(self, day: dt.date) -> str:
        return self._as_of(day)[1]

    def student_on(self, day: dt.date) -> bool:
        return self._as_of(day)[2]

    def held_on(self, day: dt.date) -> bool:
        return self.since <= day and (self.end is None or self.end > day)


@dataclass(slots=True)
class Timeline:
    spells: list[Spell]
    death: dt.date | None
    # the departments whose report of the death stands (rule 12)
    death_by: tuple[str, ...] = ()
    # ALIVE statements recorded after another department's death report: (event id, its
    # department, the departments whose death reports stand), each a LIVING_STATUS_CONFLICT
    conflicts: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def student_on(self, day: dt.date) -> bool:
        """A student on ``day`` by any identity held then (the flag is the person's, whichever
        department states it: a department that does not know leaves it false)."""
        return any(s.held_on(day) and s.student_on(day) for s in self.spells)


def _open_spell(spells: dict[str, list[Spell]], key: str) -> Spell | None:
    held = spells.get(key)
    return held[-1] if held and held[-1].is_open else None


_RANK: dict[str, int] = {CERTIFIED: 0, UPDATED: 1, REVOKED: 2, DECEASED: 3}


def _content(fact: Fact) -> tuple[str, str, str, bool, str, str]:
    """What two facts of one day and one recorded instant are told apart by before their ids: a
    tie is never broken by an event id (a department's, or a content hash), so renamed ids decide
    the same (CONTRACT rule 11). Two statements of one identity at one instant that disagree (two
    counties, say) are taken in this fixed order; only facts equal in content fall to the id."""
    return (fact.region_code, fact.category, fact.source, fact.is_student, fact.previous_category or "",
            fact.living_status or "")


def _fold_order(fact: Fact) -> tuple[dt.date, int, int, tuple[str, str, str, bool, str, str], str]:
    return fact.effective, fact.recorded_ms, _RANK.get(fact.change, 4), _content(fact), fact.event_id


def _recorded_order(fact: Fact) -> tuple[int, int, dt.date, tuple[str, str, str, bool, str, str], str]:
    return fact.recorded_ms, _RANK.get(fact.change, 4), fact.effective, _content(fact), fact.event_id


class _Exit(NamedTuple):
    day: dt.date
    recorded_ms: int
    ended_by: str


def _end(spells: dict[str, list[Spell]], pending: dict[str, list[_Exit]], key: str, fact: Fact,
         ended_by: str) -> None:
    spell = _open_spell(spells, key)
    if spell is None:  # it sorted before the identity it ends: kept for when that identity opens
        pending.setdefault(key, []).append(_Exit(fact.effective, fact.recorded_ms, ended_by))
        return
    spell.end, spell.ended_by = max(fact.effective, spell.since), ended_by


def _start(spells: dict[str, list[Spell]], pending: dict[str, list[_Exit]], key: str, fact: Fact) -> None:
    spell = Spell(fact.source, fact.category, fact.effective, fact.recorded_ms,
                  changes=[(fact.effective, fact.region_code, fact.is_student)])
    spells.setdefault(key, []).append(spell)
    exits = pending.get(key)
    if exits:
        # An exit dated before this start but recorded after the fact that opened it names this
        # identity: it never held. One recorded before it ended an earlier spell we never saw.
        later = [e for e in exits if e.recorded_ms > fact.recorded_ms]
        if later:
            spell.end, spell.ended_by = spell.since, later[0].ended_by
        pending[key] = []


def _restate(spell: Spell, fact: Fact) -> None:
    """A CERTIFIED (or an UPDATED dated on the start) of an open identity: the start as now
    recorded, keeping the county moves dated after it."""
    if fact.recorded_ms < spell.recorded_ms:
        return  # an older statement than the one that opened the spell: adds nothing
    spell.since, spell.recorded_ms = fact.effective, fact.recorded_ms
    spell.changes = [(fact.effective, fact.region_code, fact.is_student),
                     *(c for c in spell.changes if c[0] > fact.effective)]


def fold(facts: list[Fact]) -> Timeline:
    """The spells and death day that ``facts`` add up to, whatever order they arrived in."""
    spells: dict[str, list[Spell]] = {}
    pending: dict[str, list[_Exit]] = {}
    for fact in (sorted(facts, key=_fold_order) if len(facts) > 1 else facts):
        change = fact.change
        if change == DECEASED:
            continue  # a death is the person's, not an identity's: see _deaths
        key = f"{fact.source}/{fact.category}"
        if change == REVOKED:
            _end(spells, pending, key, fact, ENDED_BY_REVOCATION)
            continue
        # CERTIFIED or UPDATED
        if change == UPDATED and fact.previous_category:
            _end(spells, pending, f"{fact.source}/{fact.previous_category}", fact, ENDED_BY_CHANGE)
        spell = _open_spell(spells, key)
        if spell is None:
            _start(spells, pending, key, fact)
        elif change == CERTIFIED or fact.effective <= spell.since:
            _restate(spell, fact)
        else:  # UPDATED from a later day: the county or student flag changes from then on
            spell.changes = [c for c in spell.changes if c[0] < fact.effective]
            spell.changes.append((fact.effective, fact.region_code, fact.is_student))
    out = [s for held in spells.values() for s in held if s.end is None or s.end > s.since]
    _changes_of_class(out)
    death, owners, conflicts = _deaths(facts)
    return Timeline(out, death, owners, conflicts)


def _changes_of_class(spells: list[Spell]) -> None:
    """A REVOKED of one class and a CERTIFIED of another by the same department on the same
    day is a change of class, as an UPDATED with ``previous_category`` is."""
    revoked = [s for s in spells if s.ended_by == ENDED_BY_REVOCATION]
    if not revoked:
        return
    starts = {(s.source, s.since, s.category) for s in spells}
    for spell in revoked:
        if any(src == spell.source and day == spell.end and cat != spell.category for src, day, cat in starts):
            spell.ended_by = ENDED_BY_CHANGE


def _deaths(facts: list[Fact]) -> tuple[dt.date | None, tuple[str, ...], tuple[tuple[str, str, tuple[str, ...]], ...]]:
    """Rule 12, in recorded order: each department's death report stands until that department
    corrects it with an UPDATED saying ALIVE; another's ALIVE is a conflict, nothing more."""
    standing: dict[str, dt.date] = {}
    conflicts: list[tuple[str, str, tuple[str, ...]]] = []
    said = [f for f in facts if f.change == DECEASED or f.living_status is not None]
    for fact in sorted(said, key=_recorded_order):
        if fact.change == DECEASED or fact.living_status == LivingStatus.DECEASED:
            standing[fact.source] = fact.effective
        elif fact.living_status == ALIVE and standing:
            if fact.source in standing and fact.change == UPDATED:
                del standing[fact.source]  # the department that reported it corrects it
            else:
                conflicts.append((fact.event_id, fact.source, tuple(sorted(standing))))
    death = min(standing.values()) if standing else None
    return death, tuple(sorted(standing)), tuple(conflicts)


def alive_for(timeline: Timeline, year: int) -> bool:
    """A death before the first day of an insurance year takes the person off that year's list;
    one on or after it leaves that year as it is (攀医保〔2021〕58号 五(一): those who die
    before 31 December of the year before are removed)."""
    return timeline.death is None or timeline.death >= dt.date(year, 1, 1)


def held_through(spell: Spell, year: int, enrolled_on: dt.date) -> bool:
    """Whether an ended identity still counts for ``year``. A revocation dated in the year or
    before it withdraws the year (CONTRACT rule 5, judged by the effective date). A change of
    class keeps the old class for a year it was held at that year's enrolment (``enrolled_on``:
    the window's last day, or the day certified for someone certified later): the class that
    decided the year keeps counting, so a change dated 1 January is no exit."""
    if spell.end is None or spell.end > dt.date(year, 12, 31):
        return True
    return spell.ended_by == ENDED_BY_CHANGE and spell.end > max(enrolled_on, spell.since)


def recorded_key(fact: Fact) -> tuple[int, str]:
    return fact.recorded_ms, fact.event_id


def record_fact(facts: list[Fact], fact: Fact) -> bool:
    """Keep ``fact`` in ``facts`` (in place); False when it adds nothing. Of the facts with the
    same content (all but the event id and the recorded time) the first and the last recorded
    are kept: all the fold reads of them (a restatement between the two changes no spell and no
    death), so monthly restatements do not grow a state, whatever order they arrive in."""
    content = fact[1:6] + fact[7:]
    twins = [f for f in facts if f[1:6] + f[7:] == content]
    if not twins:
        facts.append(fact)
        return True
    group = [*twins, fact]
    keep = (min(group, key=recorded_key), max(group, key=recorded_key))
    if fact not in keep:
        return False
    facts[:] = [f for f in facts if f not in twins or f in keep]
    facts.append(fact)
    return True
