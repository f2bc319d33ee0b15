"""A person's timeline: the dated identity facts the departments sent, and what held when.

Bitemporal: each fact keeps the day it takes effect (``effective``, valid time) apart from
when the department recorded it (``recorded_ms``, transaction time). Facts are never
dropped or overwritten; the spells (who held which identity over which days) are a fold of
all the facts in recorded order, so an event that arrives late but was recorded early
changes nothing that was recorded after it, and a replay folds to the same spells.

Rules of the fold (issue #11, CONTRACT "Additions, 2026-12"):
- CERTIFIED opens a spell of (source, category) from its effective date; a CERTIFIED of an
  identity already open restates its start (a correction).
- UPDATED changes only the identity it names: its county or student flag from the effective
  date (the spell keeps its start, so a county move is not a new certification), or, dated on
  or before the start, its start too. With ``previous_category`` it ends that identity on the
  effective date and starts the named one (a change of category).
- REVOKED ends the named identity's open spell on the effective date.
- DECEASED records the death day (the identities end with the person; how a death counts
  per year is ``alive_for``). Only a CERTIFIED or UPDATED recorded after it with
  ``living_status`` ALIVE withdraws it (a correction): a department that has not heard of
  the death and certifies again must not bring money back to a dead person.

Pure: standard library only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, NamedTuple

CERTIFIED, UPDATED, REVOKED, DECEASED = "CERTIFIED", "UPDATED", "REVOKED", "DECEASED"
ENDED_BY_REVOCATION, ENDED_BY_CHANGE = "REVOKED", "UPDATED"


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



def _open_spell(spells: dict[str, list[Spell]], key: str) -> Spell | None:
    held = spells.get(key)
    return held[-1] if held and held[-1].is_open else None


def _start(spells: dict[str, list[Spell]], fact: Fact) -> None:
    spell = Spell(fact.source, fact.category, fact.effective, fact.recorded_ms,
                  changes=[(fact.effective, fact.region_code, fact.is_student)])
    spells.setdefault(f"{fact.source}/{fact.category}", []).append(spell)


_recorded_order = attrgetter("recorded_ms", "event_id")


def fold(facts: list[Fact]) -> Timeline:
    """The spells and death day that ``facts`` add up to (in recorded order, whatever the arrival order)."""
    spells: dict[str, list[Spell]] = {}
    death: dt.date | None = None
    for fact in (sorted(facts, key=_recorded_order) if len(facts) > 1 else facts):
        key = f"{fact.source}/{fact.category}"
        if fact.change == DECEASED:
            death = fact.effective
            continue
        if fact.change == REVOKED:
            spell = _open_spell(spells, key)
            if spell is not None:
                spell.end, spell.ended_by = max(fact.effective, spell.since), ENDED_BY_REVOCATION
            continue
        # CERTIFIED or UPDATED
        if fact.living_status == DECEASED:
            death = death or fact.effective
        elif fact.living_status == "ALIVE" and death is not None:
            death = None  # recorded after the death, saying the person is alive: a correction
        if fact.change == UPDATED and fact.previous_category:
            previous = _open_spell(spells, f"{fact.source}/{fact.previous_category}")
            if previous is not None:
                previous.end, previous.ended_by = max(fact.effective, previous.since), ENDED_BY_CHANGE
        spell = _open_spell(spells, key)
        if spell is None:
            _start(spells, fact)
        elif fact.change == CERTIFIED or fact.effective <= spell.since:
            # a restatement or a correction of the start: the identity as now recorded
            spell.since, spell.recorded_ms = fact.effective, fact.recorded_ms
            spell.changes = [(fact.effective, fact.region_code, fact.is_student)]
        else:  # UPDATED from a later day: the county or student flag changes from then on
            spell.changes = [c for c in spell.changes if c[0] < fact.effective]
            spell.changes.append((fact.effective, fact.region_code, fact.is_student))
            spell.recorded_ms = fact.recorded_ms
    out = [s for held in spells.values() for s in held if s.end is None or s.end > s.since]
    return Timeline(out, death)


def alive_for(timeline: Timeline, year: int) -> bool:
    """A death before the first day of an insurance year takes the person off that year's list;
    one on or after it leaves that year as it is (攀医保〔2021〕58号 五(一): those who die
    before 31 December of the year before are removed)."""
    return timeline.death is None or timeline.death >= dt.date(year, 1, 1)


def held_through(spell: Spell, year: int) -> bool:
    """Whether an ended identity still counts for ``year``: a revocation dated in the year or
    before it withdraws the year (CONTRACT rule 5, judged by the effective date); a change of
    category counts the old class for a year it was held on the year's first day."""
    if spell.end is None or spell.end > dt.date(year, 12, 31):
        return True
    return spell.ended_by == ENDED_BY_CHANGE and spell.end > dt.date(year, 1, 1)
