"""A person's state across departments and years, and how facts change it.

The state keeps the facts (the person's timeline, see ``timeline.py``), the versions issued
per insurance year (``year.py``) and what payments froze. Every decision is a pure function of
the timeline, the region-year's policy and the payment facts: ``apply_identity``,
``apply_payment``, ``open_year`` and ``check_coverage`` record a fact and return the effects
(fee standards to publish, review cases, suspected un-enrolled people). Idempotence lives here:
a seen event or ack id yields nothing; a standard is re-issued only as a new version when the
figures, class, level or mode changed; a frozen year (PAID, ZERO_DECLARED, ALREADY_PAID) never
changes. Its bytes are ``state_codec.py``'s; tax's acknowledgements are applied by
``person_acks.py`` and money to people (claims, other channels, what is owed) by
``person_money.py``, which the methods of the same names call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Self

from streams.domain import person_acks, person_money, state_codec
from streams.domain.enums import InstructionKind, ReviewKind
from streams.domain.identity import Identity
from streams.domain.ids import mask_id, scrub
from streams.domain.messages import Claim, Effect, OtherChannel, PaymentAck, case_id
from streams.domain.money import top_up
from streams.domain.person_record import PersonRecord
from streams.domain.policy.spec import PolicyBook
from streams.domain.regions import contains
from streams.domain.timeline import Fact, Timeline, fold, record_fact
from streams.domain.year import YearRecord, decide_year, issue, revision_of_paid, suspected
from streams.domain.years import Counts, YearView, lies_in, target_years, view_year


def recorded_ms(value: dt.datetime) -> int:
    """A fact's recorded time from the identity's occurrence (the float's product: a millisecond
    below the exact one for some times, as facts have always held it)."""
    return int(value.timestamp() * 1000)


# The occurrence times (epoch ms) a datetime can hold: from 0001-01-01 to 9999-12-31 23:59:59.999, UTC.
MIN_MS, MAX_MS = -62_135_596_800_000, 253_402_300_799_999


def recorded_of_ms(ms: int) -> int:
    """``recorded_ms`` of the occurrence ``ms`` epoch milliseconds (``MIN_MS <= ms <= MAX_MS``),
    without building the datetime: an aware datetime's ``timestamp()`` is its microseconds since
    the epoch divided by 10**6, correctly rounded, which is the float ``ms / 1000`` (the same
    quotient; held by a property test over the whole range)."""
    return int(ms / 1000 * 1000)


def fact_of(ev: Identity) -> Fact:
    """The fact an identity event records (its ``event_id`` and ``occurred_at`` as the fact's
    identifiers; the enum members are str, stored as they are)."""
    return Fact(ev.event_id, ev.source, ev.category, ev.change, ev.region_code, ev.effective_date,
                recorded_ms(ev.occurred_at), ev.is_student, ev.previous_category, ev.living_status)


class PersonState(PersonRecord):
    """What is kept of a person (``PersonRecord``) and the decisions its facts lead to."""

    @classmethod
    def loads(cls, data: bytes) -> Self:
        return cls(**state_codec.decode(data))

    def decide(self, year: int, timeline: Timeline, book: PolicyBook, person_key: str,
               now_ms: int, counts: Counts | None = None) -> list[Effect]:
        """Decide ``year`` from the timeline and issue a version when the decision changed (never for a frozen year)."""
        rec = self.years.get(year) or YearRecord()
        if rec.frozen:
            return []  # paid: later changes count for the next year only
        view = view_year(timeline, year, book, self.id_number, counts)
        effects: list[Effect] = []
        waiting = bool(view.waiting) and view.policy is None
        if waiting and year not in self.waiting:
            self.waiting.append(year)
            effects.append(self.review(
                f"{person_key}|wait", ReviewKind.OTHER, year, "WAITING_FOR_POLICY",
                f"an identity of id {mask_id(self.id_number)} counts for {year}, but region "
                f"{view.waiting} has no policy for {year} yet: decided when that year's policy "
                f"is loaded and the year is opened (zhucan control open-year)", now_ms))
        if waiting and rec.version == 0:
            return effects
        # A standard issued before, when no identity with a policy counts any more, is withdrawn
        # below like any other (the year stays waiting for the other region's policy): what the
        # year gives depends on the timeline, never on whether the waiting identity arrived first.
        if view.conflict and view.policy is not None:
            regions = ",".join(sorted((view.policy.region_code, *view.conflict)))
            if self.once(f"REGION_CONFLICT|{year}|{regions}"):  # by region: an edited gloss raises nothing
                effects.append(self.review(
                    f"{person_key}|conflict|{regions}", ReviewKind.OTHER, year, "REGION_CONFLICT",
                    f"id {mask_id(self.id_number)} holds identities certified in several pooling regions for {year} "
                    f"({regions}): {view.chosen_by}, {view.policy.region_code} decides", now_ms))
        for category in view.not_covered:
            if self.once(f"CATEGORY_NOT_COVERED|{year}|{category}"):
                pid = view.policy.policy_id if view.policy else ""
                effects.append(self.review(
                    f"{person_key}|uncovered|{category}", ReviewKind.OTHER, year, "CATEGORY_NOT_COVERED",
                    f"id {mask_id(self.id_number)} holds {category}, which policy {pid} does not list for {year}: "
                    f"no subsidy from it", now_ms))
        decision, on_the_spot, due = decide_year(self.id_number, view, timeline, book.departments)
        others = [o for o in self.others if o.year == year]
        if decision is not None and others and view.policy is not None:
            decision = top_up(decision, others, view.policy)
        rec.held = sorted({s.category for s, _, _ in view.counted}) if decision is not None else []
        issued = issue(rec, year, decision, view, on_the_spot, (self.id_number, self.name), person_key, now_ms,
                       timeline, book)
        if due is not None:  # the day payment is due follows the timeline, a new version or not
            rec.due = due.isoformat()
        if rec.version:
            self.years[year] = rec
            if year in self.waiting and not waiting:
                self.waiting.remove(year)
        if issued is not None:
            effects.append(issued)
        return effects + person_money.double_subsidy(self, year, person_key, now_ms)

    # -- facts ---------------------------------------------------------------
    def _record(self, fact: Fact) -> bool:
        """Keep ``fact`` (``timeline.record_fact``: identical restatements are kept once)."""
        return record_fact(self.facts, fact)

    def apply_identity(self, ev: Identity, book: PolicyBook, person_key: str, now_ms: int,
                       opened: Mapping[str, int] | None = None) -> list[Effect]:
        event_id, source = ev.event_id, ev.source
        if any(f.event_id == event_id and f.source == source for f in self.facts) or event_id in self.seen:
            # a redelivery: the same department's event id again (the facts hold the ids; ``seen``
            # those of a v1 state, and acks). Another department's record with a colliding id is
            # its own fact (issue #20: one department cannot cancel another's record).
            return []
        effects: list[Effect] = []
        if self.name and ev.name != self.name:
            effects.append(self.review(
                ev.event_id, ReviewKind.NAME_CONFLICT, None, "",
                f"id {mask_id(self.id_number)}: name from {ev.source} differs from the name on record; "
                f"the latest name is used until a person resolves it", now_ms))
        self.name = ev.name
        # The enum members are str (StrEnum): stored as they are, written by orjson as their values.
        self._record(fact_of(ev))
        timeline = fold(self.facts)
        if not book.years(ev.region_code) and self.once(f"NO_POLICY|{ev.region_code}"):
            effects.append(self.review(ev.event_id, ReviewKind.OTHER, None, "NO_POLICY",
                                        f"NO_POLICY: no policy for region {ev.region_code}, any year; "
                                        f"{ev.category} from {ev.source} is kept and waits", now_ms))
        for conflict_id, source, owners in timeline.conflicts:
            if self.once(f"LIVING_STATUS_CONFLICT|{conflict_id}"):
                effects.append(self.review(
                    conflict_id, ReviewKind.OTHER, None, "LIVING_STATUS_CONFLICT",
                    f"id {mask_id(self.id_number)}: {source} says ALIVE (event {scrub(conflict_id)}) after "
                    f"{', '.join(owners)} reported the death ({timeline.death}); the death stands until "
                    f"{', '.join(owners)} corrects it (an UPDATED with living_status ALIVE)", now_ms))
        years, counts = target_years(timeline, book, opened or {})
        targets = {y for y, r in self.years.items() if not r.frozen} | years
        for year in sorted(targets):
            effects += self.decide(year, timeline, book, person_key, now_ms, counts)
        return effects

    def open_year(self, year: int, region: str, book: PolicyBook, person_key: str, now_ms: int,
                  command_id: str, opened: Mapping[str, int] | None = None) -> list[Effect]:
        """OPEN_YEAR ``year`` for ``region``: the years its people's identities count for, up to
        ``year``, decided as if the events had come after it (``opened``: the years opened
        before, per region; this one is added). A year that does not change sends nothing. A
        person with no identity ever held in ``region`` is not its people: a revised file of
        their own region waits for a REDECIDE there (rule 14), never another region's order."""
        if not self.facts:
            return []
        timeline = fold(self.facts)
        if not any(contains(region, county) for spell in timeline.spells for _, county, _ in spell.changes):
            return []
        now_open = dict(opened or {})
        now_open[region] = max(year, now_open.get(region, year))
        years, counts = target_years(timeline, book, now_open)
        # every year up to the one opened that an identity now counts for, decided or not: one the
        # person has for another identity may now count this region's too
        targets = {y for y in years if y <= year}
        effects: list[Effect] = []
        for y in sorted(targets):
            effects += self.decide(y, timeline, book, person_key, now_ms, counts)
        return effects

    def redecide(self, year: int, region: str, book: PolicyBook, person_key: str, now_ms: int,
                 opened: Mapping[str, int] | None = None) -> list[Effect]:
        """REDECIDE ``year`` for a person whose year lies in ``region`` (CONTRACT rule 14), with
        ``book`` (the workers' current policies): an unfrozen year gets a new version only when
        its figures change; a frozen year keeps what was paid, and where the revision raises the
        subsidy a POLICY_REVISION case carries the difference (once per year and policy)."""
        if not self.facts:
            return []
        timeline = fold(self.facts)
        years, counts = target_years(timeline, book, opened or {})
        rec = self.years.get(year)
        if year not in years and rec is None:
            return []
        view = view_year(timeline, year, book, self.id_number, counts)
        if not lies_in(region, view, rec.region_code if rec is not None else ""):
            return []
        if rec is None or not rec.frozen:
            return self.decide(year, timeline, book, person_key, now_ms, counts)
        return self._revision_of_paid(year, rec, view, timeline, book, person_key, now_ms)

    def _revision_of_paid(self, year: int, rec: YearRecord, view: YearView, timeline: Timeline, book: PolicyBook,
                          person_key: str, now_ms: int) -> list[Effect]:
        found = revision_of_paid(rec, view, timeline, book, self.id_number)
        if found is None or not self.once(f"POLICY_REVISION|{year}|{found.policy_id}"):
            return []
        trigger = f"{person_key}|revision|{found.policy_id}"
        effects: list[Effect] = [self.review(trigger, ReviewKind.OTHER, year, "POLICY_REVISION",
                                              f"id {mask_id(self.id_number)} {year}: {found.detail}", now_ms,
                                              found.difference)]
        if found.owed:
            rec.owed_fen, rec.owed_kind = rec.owed_fen + found.difference, "POLICY_REVISION"
            paid = rec.frozen_figures() or rec.figures()
            effects += person_money.owe(self, InstructionKind.POST_HOC_SUBSIDY, case_id(trigger, ReviewKind.OTHER, year), year,
                                 paid, found.difference, view.policy, found.detail, person_key, now_ms)
        return effects

    # -- money to people and tax's acknowledgements: their own modules ------
    def apply_claim(self, claim: Claim, book: PolicyBook, now_ms: int,
                    opened: Mapping[str, int] | None = None) -> list[Effect]:
        """A SubsidyClaim, decided once (``person_money.apply_claim``, rules 7-9)."""
        return person_money.apply_claim(self, claim, book, now_ms, opened)

    def apply_other_channel(self, sub: OtherChannel, book: PolicyBook, person_key: str, now_ms: int,
                            opened: Mapping[str, int] | None = None) -> list[Effect]:
        """Another channel's subsidy of a person-year (rule 10): recorded once per record id; a
        DOUBLE_SUBSIDY case where a standard or an instruction subsidises the same premium; under
        the region's top-up rule an unfrozen year's standard is re-decided to cover only the rest."""
        if not person_money.record_other_channel(self, sub):
            return []
        year = sub.insurance_year
        if year in self.years and not self.years[year].frozen:
            timeline = fold(self.facts)
            return self.decide(year, timeline, book, person_key, now_ms, target_years(timeline, book, opened or {})[1])
        return person_money.double_subsidy(self, year, person_key, now_ms)

    def apply_payment(self, ack: PaymentAck, book: PolicyBook, now_ms: int, person_key: str = "") -> list[Effect]:
        """A tax acknowledgement (``person_acks.apply_payment``)."""
        return person_acks.apply_payment(self, ack, book, now_ms, person_key)

    def check_coverage(self, year: int, region: str, as_of: dt.date, grace_days: int) -> list[Effect]:
        """CHECK_COVERAGE: suspected un-enrolled when a live standard has no payment after its due date + grace
        (the year keeps the day it was first found, for the ledger)."""
        rec = self.years.get(year)
        if rec is None or not contains(region, rec.region_code):
            return []
        found = suspected(rec, year, as_of, grace_days, lambda: fold(self.facts).death, (self.id_number, self.name))
        if found is None:
            return []
        rec.suspected = rec.suspected or found.since.isoformat()  # the ledger's suspected_since, the first finding's
        return [found]


__all__ = ["PersonState", "YearRecord"]
