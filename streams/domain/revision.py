"""What a policy revision would do to one person-year, without doing it (the preview of
``zhucan policy diff`` and ``zhucan budget --what-if``).

It runs the REDECIDE itself (``PersonState.redecide``) on a copy of the stored state, with the
candidate book, and compares the year as it counts now with the year as it would count: the
paid version's figures once frozen, else the live version's; a withdrawn year counts for
nothing. The state is never written: the same engine, nothing changed."""

from __future__ import annotations

from typing import NamedTuple

from streams.domain.ids import mask_id
from streams.domain.ledger import line_of
from streams.domain.messages import FeeStandardIssued, ReviewRaised
from streams.domain.person import PersonState
from streams.domain.policy.spec import PolicyBook
from streams.domain.regions import contains
from streams.domain.year import YearRecord


class Budgeted(NamedTuple):
    """What a person-year counts for in the budget: its class, funding source and subsidy."""

    category: str
    funding_source: str
    subsidy_fen: int


class YearChange(NamedTuple):
    year: int
    county: str
    old: Budgeted | None  # as it counts now (None: no live standard)
    new: Budgeted | None  # as it would count after a REDECIDE with the candidate book
    frozen: bool
    new_version: bool  # a REDECIDE would send tax a new version
    raised_fen: int  # a frozen year: the POLICY_REVISION difference the revision raises


def budgeted(rec: YearRecord | None) -> Budgeted | None:
    """The year as the budget counts it: its ledger line's (``ledger.line_of``: the paid figures
    once frozen, else the live ones), unless those are a withdrawal; the live budget sums the
    same lines (``streams/domain/reports.py``), so a what-if with the live policies equals it."""
    if rec is None or not rec.version:
        return None
    line = line_of(rec)
    return Budgeted(line.category, line.funding_source, line.subsidy_fen) if line.budgeted else None


def preview_year(stored: bytes, year: int, region: str, book: PolicyBook, person_key: str, now_ms: int,
                 opened: dict[str, int] | None = None) -> YearChange | None:
    """The person-year of ``stored`` (a state's bytes) in ``region`` under ``book``; None when the
    person has no year there, before or after."""
    before, after = PersonState.loads(stored), PersonState.loads(stored)
    effects = after.redecide(year, region, book, person_key, now_ms, opened)
    rec_before, rec_after = before.years.get(year), after.years.get(year)
    rec = rec_after or rec_before
    if rec is None or not contains(region, rec.region_code):
        return None
    old, new = budgeted(rec_before), budgeted(rec_after)
    if old is None and new is None:
        return None
    raised = sum(e.amount_fen or 0 for e in effects if isinstance(e, ReviewRaised) and e.code == "POLICY_REVISION")
    return YearChange(year, rec.region_code, old, new, rec.frozen,
                      any(isinstance(e, FeeStandardIssued) for e in effects), raised)


class PreviewTotals:
    """A partition's preview summed: per class, the person-years that change and their money;
    the frozen years whose difference would be raised; the budget (per class and funding source:
    persons and subsidy) before and after."""

    def __init__(self) -> None:
        self.scanned = 0
        self.changed = 0
        self.by_class: dict[str, list[int]] = {}  # category -> [person-years changed, old fen, new fen]
        self.raised: dict[str, list[int]] = {}  # category -> [frozen person-years, difference fen]
        self.budget_old: dict[tuple[str, str], list[int]] = {}  # (category, funding) -> [persons, fen]
        self.budget_new: dict[tuple[str, str], list[int]] = {}

    def add(self, change: YearChange) -> None:
        for budgeted_as, budget in ((change.old, self.budget_old), (change.new, self.budget_new)):
            if budgeted_as is not None:
                row = budget.setdefault((budgeted_as.category, budgeted_as.funding_source), [0, 0])
                row[0] += 1
                row[1] += budgeted_as.subsidy_fen
        if change.old != change.new:
            self.changed += 1
            category = (change.new or change.old or Budgeted("", "", 0)).category
            row = self.by_class.setdefault(category, [0, 0, 0])
            row[0] += 1
            row[1] += change.old.subsidy_fen if change.old else 0
            row[2] += change.new.subsidy_fen if change.new else 0
        if change.raised_fen:
            category = (change.old or change.new or Budgeted("", "", 0)).category
            row = self.raised.setdefault(category, [0, 0])
            row[0] += 1
            row[1] += change.raised_fen

    def doc(self) -> dict[str, object]:
        return {"scanned": self.scanned, "changed": self.changed,
                "by_class": [[c, *v] for c, v in sorted(self.by_class.items())],
                "raised": [[c, *v] for c, v in sorted(self.raised.items())],
                "budget_old": [[c, f, *v] for (c, f), v in sorted(self.budget_old.items())],
                "budget_new": [[c, f, *v] for (c, f), v in sorted(self.budget_new.items())]}


def person_row(id_number: str, change: YearChange) -> list[object]:
    """One person's preview line: masked ID, year, county, class and subsidy before and after,
    whether frozen, the difference a frozen year would raise."""
    old, new = change.old, change.new
    return [mask_id(id_number), change.year, change.county, old.category if old else None,
            old.subsidy_fen if old else None, new.category if new else None, new.subsidy_fen if new else None,
            change.frozen, change.raised_fen]
