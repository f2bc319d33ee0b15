"""Which identities count for which insurance year, under which region's policy.

Pure functions of a person's timeline (``timeline.py``) and the policy book, read by the
person state (``person.py``) for every year it decides:
- ``enrolment_county``: the county that decides a year for an identity, the one held at that
  year's enrolment (CONTRACT additions 2026-12-05);
- ``view_year``: the identities that count for a year, the deciding region's policy, and what
  a person must look at (several pooling regions, a category the policy does not list, a
  region with no policy yet);
- ``first_year``, ``opened_years``, ``waiting_year``: from which year an identity counts and up
  to which (CONTRACT rule 13: up to the last year opened in its region).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import NamedTuple

from streams.domain.departments import Departments
from streams.domain.exceptions import NoPolicy
from streams.domain.identity import CATEGORIES
from streams.domain.policy.decide import Held, cite, decide, enrolment_day, is_child, qualify
from streams.domain.policy.spec import Policy, PolicyBook
from streams.domain.regions import contains
from streams.domain.timeline import Spell, Timeline, alive_for


class YearView(NamedTuple):
    """What the timeline gives for one insurance year under the policies."""

    year: int
    policy: Policy | None  # the deciding region's policy (None: no identity counts)
    counted: tuple[tuple[Spell, str, str], ...]  # (identity, IN_TIME or ON_THE_SPOT, its county at enrolment)
    waiting: str = ""  # a region whose identities would count but has no policy for the year
    conflict: tuple[str, ...] = ()  # the other pooling regions whose identities count too
    not_covered: tuple[str, ...] = ()  # counted categories the policy lists no rule for
    chosen_by: str = ""  # with a conflict: how the deciding region was chosen (its policy's rule)


def lookup(book: PolicyBook, county: str, year: int) -> Policy | None:
    try:
        return book.lookup(county, year)
    except NoPolicy:
        return None


def enrolment_county(spell: Spell, year: int, book: PolicyBook) -> tuple[str, Policy | None]:
    """The county that decides ``year`` for ``spell`` and its policy (CONTRACT additions
    2026-12-05): the one held at that year's enrolment, on the window's last day, or on the
    day certified for someone certified later. A move after that counts from the next year."""
    if len(spell.changes) == 1:  # most identities never moved: one county
        county = spell.changes[0][1]
        return county, lookup(book, county, year)
    county = spell.region_on(max(dt.date(year - 1, 12, 31), spell.since))  # before any window is known
    policy = lookup(book, county, year)
    for _ in range(2):  # the window of the county found; a second look if that window moves it
        if policy is None:
            break
        held = spell.region_on(enrolment_day(spell, policy))
        if held == county:
            break
        county, policy = held, lookup(book, held, year)
    return county, policy


def held_for(id_number: str, timeline: Timeline, year: int, policy: Policy,
          counted: tuple[tuple[Spell, str, str], ...]) -> frozenset[Held]:
    """The identities as the decision reads them: the student flag is the person's (any
    identity held says so), or a child by the policy's age."""
    student = is_child(id_number, year, policy) or timeline.student_on(dt.date(year, 12, 31))
    return frozenset(Held(CATEGORIES[s.category], student) for s, _, _ in counted)


Counts = Callable[[Spell, int], bool]  # whether an identity counts for a year (CONTRACT rule 13)


def view_year(timeline: Timeline, year: int, book: PolicyBook, id_number: str = "",
              counts: Counts | None = None) -> YearView:
    """Which identities count for ``year``, under which region's policy.

    The certifying county held at the year's enrolment decides the policy (CONTRACT: region_code
    is the 困难身份认定地). Identities certified in different pooling regions (different
    policies) are a REGION_CONFLICT: the region is chosen by the ``several_regions`` rule of the
    policies (the notices are silent; the shipped example: the higher subsidy, 就高不就低), and a
    person must look."""
    if not alive_for(timeline, year):
        return YearView(year, None, ())
    by_policy: dict[str, list[tuple[Spell, str, str]]] = {}
    policies: dict[str, Policy] = {}
    waiting = ""
    last_day = dt.date(year, 12, 31)
    for spell in timeline.spells:
        county, policy = enrolment_county(spell, year, book)
        if policy is None:  # (whether or not its region opened the year: a person must know it waits)
            if spell.held_on(last_day):
                waiting = waiting or county
            continue
        if counts is not None and not counts(spell, year):
            continue
        how = qualify(spell, year, policy)
        if how is not None:
            by_policy.setdefault(policy.policy_id, []).append((spell, how, county))
            policies[policy.policy_id] = policy
    if not by_policy:
        return YearView(year, None, (), waiting)
    chosen_by = ""
    if len(by_policy) == 1:  # most people: one pooling region
        (chosen,) = by_policy
    else:
        chosen, chosen_by = _choose_region(by_policy, policies, timeline, year, id_number, book.departments)
    policy = policies[chosen]
    counted = tuple(by_policy[chosen])
    subsidised = policy.spec.subsidies
    not_covered = tuple(sorted({s.category for s, _, _ in counted if CATEGORIES[s.category] not in subsidised}))
    others = tuple(sorted(policies[p].region_code for p in by_policy if p != chosen))
    return YearView(year, policy, counted, "", others, not_covered, chosen_by)


def _choose_region(by_policy: dict[str, list[tuple[Spell, str, str]]], policies: dict[str, Policy],
                   timeline: Timeline, year: int, id_number: str, departments: Departments) -> tuple[str, str]:
    """The pooling region that decides a year whose identities count in several: the rule of
    the latest certification's policy says how (``several_regions``); the latest certification
    breaks a tie."""
    def latest(pid: str) -> tuple[dt.date, int, str]:
        return max((s.since, s.recorded_ms) for s, _, _ in by_policy[pid]) + (pid,)

    newest = max(by_policy, key=latest)
    rule = policies[newest].spec.several_regions
    example = " [示例值]" if rule.example else ""
    if rule.value == "latest_certification":
        return newest, f"多地认定, 按最近认定地{example} ({cite(rule.reference)})"

    def subsidy(pid: str) -> int:
        decision = decide(held_for(id_number, timeline, year, policies[pid], tuple(by_policy[pid])), policies[pid],
                          departments)
        return decision.subsidy_fen if decision is not None else -1

    best = max(by_policy, key=lambda pid: (subsidy(pid), latest(pid)))
    return best, f"多地认定, 就高不就低{example} ({cite(rule.reference)})"


def first_year(spell: Spell, book: PolicyBook) -> int | None:
    """The first year with a policy that ``spell`` counts for, each year judged by the county
    held at that year's enrolment, as ``view_year`` judges it."""
    if len(spell.changes) == 1:  # most identities never moved: one county, its years already sorted
        years: list[int] = book.years(spell.changes[0][1])
    else:
        years = sorted({y for _, county, _ in spell.changes for y in book.years(county)})
    for year in years:
        _, policy = enrolment_county(spell, year, book)
        if policy is not None and qualify(spell, year, policy):
            return year
    return None


def shifted(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def waiting_year(spell: Spell, last: Policy, after: int) -> int:
    """The first year an identity that counts for no loaded year would count for, judged by the
    region's last policy (``last``) with its dates moved to that year: the identity's own first
    year, not merely the year after the last one loaded."""
    first = max(after, spell.since.year - 1)
    for year in range(first, max(first, spell.since.year) + 2):
        if spell.since <= shifted(last.in_time_until, year - last.year):
            return year  # in time for that year's window
        if year == spell.since.year and last.spec.outside_window.value == "on_the_spot":
            return year  # certified in the year, enrolled on the spot
    return max(first, spell.since.year + 1)


def opened_years(spell: Spell, first: int, book: PolicyBook, opened: Mapping[str, int]) -> set[int]:
    """The years after ``first`` up to the last opened in the region ``spell`` is held in at
    each year's enrolment (CONTRACT rule 13)."""
    counties = {county for _, county, _ in spell.changes}
    last = max((year for region, year in opened.items() if any(contains(region, c) for c in counties)),
               default=first)
    out = set()
    for year in range(first + 1, last + 1):
        county, _ = enrolment_county(spell, year, book)
        if any(y >= year and contains(region, county) for region, y in opened.items()):
            out.add(year)
    return out


def target_years(timeline: Timeline, book: PolicyBook, opened: Mapping[str, int]) -> tuple[set[int], Counts]:
    """The years the identities count for (CONTRACT rule 13): each from its first, up to the
    last year opened in its region (``opened``: region -> the last year an OPEN_YEAR opened
    there), and a year with no policy yet (after the last one loaded) when it counts for
    none that has one; and which identity counts for which year (for ``view_year``: a year
    the person has for another identity does not bring in one whose region never opened it)."""
    out: set[int] = set()
    years_of: dict[int, set[int]] = {}
    for spell in timeline.spells:
        first = first_year(spell, book)
        if first is not None:
            mine = {first, *opened_years(spell, first, book, opened)} if opened else {first}
            years_of[id(spell)] = mine
            out |= mine
            continue
        years = book.years(spell.changes[-1][1])  # the county it is held in now
        if not years:
            continue  # a region with no policy at all: NO_POLICY, raised once per region
        after = max(years) + 1
        if spell.end is None and alive_for(timeline, after):
            out.add(waiting_year(spell, book.lookup(spell.changes[-1][1], max(years)), after))

    def counts(spell: Spell, year: int) -> bool:
        mine = years_of.get(id(spell))
        return mine is None or year in mine  # (no year with a policy: it only waits)

    return out, counts


def lies_in(region: str, view: YearView, decided_county: str = "") -> bool:
    """Whether a person-year belongs to ``region`` (a county, city or province): the county it
    was decided in, or one an identity counting for it is held in."""
    counties = {county for _, _, county in view.counted} | {decided_county}
    return any(contains(region, county) for county in counties if county)
