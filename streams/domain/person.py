"""A person's state across departments and years, and how facts change it.

The state keeps the facts (the person's timeline, see ``timeline.py``), the versions issued
per insurance year (``year.py``) and what payments froze. Every decision is a pure function of
the timeline, the region-year's policy and the payment facts: ``apply_identity``,
``apply_payment``, ``open_year`` and ``check_coverage`` record a fact and return the effects
(fee standards to publish, review cases, suspected un-enrolled people). Idempotence lives here:
a seen event or ack id yields nothing; a standard is re-issued only as a new version when the
figures, class, level or mode changed; a frozen year (PAID, ZERO_DECLARED, ALREADY_PAID) never
changes. Its bytes are ``state_codec.py``'s.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from streams.domain import state_codec
from streams.domain.enums import (
    FREEZING_STATES,
    InstructionKind,
    PaymentMode,
    PaymentState,
    ReviewKind,
)
from streams.domain.exceptions import NoPolicy
from streams.domain.identity import Identity
from streams.domain.ids import mask_id, scrub
from streams.domain.messages import (
    Claim,
    Effect,
    OtherChannel,
    PaymentAck,
    ReviewRaised,
    case_id,
    unknown_payment,
)
from streams.domain.money import (
    OtherSubsidy,
    PaidOut,
    decide_claim,
    owed_instruction,
    paid_out_of,
    subsidised_by,
    top_up,
)
from streams.domain.payments import OWED_CODES, Figures, in_paid_in_full_group, settle
from streams.domain.policy.decide import yuan
from streams.domain.policy.spec import Policy, PolicyBook
from streams.domain.regions import contains
from streams.domain.timeline import Fact, Spell, Timeline, fold, record_fact
from streams.domain.year import YearRecord, decide_year, issue, revision_of_paid, suspected
from streams.domain.years import Counts, YearView, lies_in, target_years, view_year

SEEN_LIMIT = 256  # ack ids (and a v1 state's event ids) remembered per person for redelivery
# What money a payment's finding leaves owed is paid as (where the region names a channel).
OWED_AS = {"POST_HOC_SUBSIDY": InstructionKind.POST_HOC_SUBSIDY, "TAX_REFUND": InstructionKind.LATE_DATA_REFUND,
           "OWED_TO_PERSON": InstructionKind.LATE_DATA_REFUND}


def _ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


@dataclass
class PersonState:
    id_number: str
    name: str = ""
    facts: list[Fact] = field(default_factory=list)
    years: dict[int, YearRecord] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)  # years an identity counts for that have no policy yet
    raised: list[str] = field(default_factory=list)  # review cases raised once per person-year (code|year|what)
    claims: dict[str, list[object]] = field(default_factory=dict)  # claim id -> [kind, year, outcome] (rule 7)
    paid_out: list[PaidOut] = field(default_factory=list)  # instructions issued: each cause once
    others: list[OtherSubsidy] = field(default_factory=list)  # other channels' subsidies (rule 10)

    def dumps(self) -> bytes:
        return state_codec.encode(self)

    @classmethod
    def loads(cls, data: bytes) -> PersonState:
        return cls(**state_codec.decode(data))

    @property
    def identities(self) -> dict[str, Spell]:
        """The identities held now (open spells), by source/category."""
        return {s.key: s for s in fold(self.facts).spells if s.is_open}

    # -- helpers -------------------------------------------------------------
    def _remember(self, fact_id: str) -> bool:
        """Record ``fact_id``; False when it was seen before (a redelivery)."""
        if fact_id in self.seen:
            return False
        self.seen.append(fact_id)
        if len(self.seen) > SEEN_LIMIT:
            del self.seen[: len(self.seen) - SEEN_LIMIT]
        return True

    def _once(self, what: str) -> bool:
        """True the first time ``what`` (a case about a person-year) is raised."""
        if what in self.raised:
            return False
        self.raised.append(what)
        return True

    def _review(self, trigger: str, kind: ReviewKind, year: int | None, code: str, detail: str, now_ms: int,
                amount_fen: int | None = None) -> ReviewRaised:
        return ReviewRaised(case_id=case_id(trigger, kind, year), kind=kind.value, id_number=self.id_number,
                            insurance_year=year, detail=detail, raised_at=now_ms, code=code, amount_fen=amount_fen)

    def _redecide(self, year: int, timeline: Timeline, book: PolicyBook, person_key: str,
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
            effects.append(self._review(
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
            if self._once(f"REGION_CONFLICT|{year}|{regions}"):  # by region: an edited gloss raises nothing
                effects.append(self._review(
                    f"{person_key}|conflict|{regions}", ReviewKind.OTHER, year, "REGION_CONFLICT",
                    f"id {mask_id(self.id_number)} holds identities certified in several pooling regions for {year} "
                    f"({regions}): {view.chosen_by}, {view.policy.region_code} decides", now_ms))
        for category in view.not_covered:
            if self._once(f"CATEGORY_NOT_COVERED|{year}|{category}"):
                pid = view.policy.policy_id if view.policy else ""
                effects.append(self._review(
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
        return effects + self._double_subsidy(year, person_key, now_ms)

    def _double_subsidy(self, year: int, person_key: str, now_ms: int) -> list[Effect]:
        """One DOUBLE_SUBSIDY case per other channel's record of ``year`` while a standard (live
        or paid) or an instruction subsidises the same premium too (CONTRACT rule 10)."""
        if not self.others:  # the hot path: nobody else subsidises this person
            return []
        rec = self.years.get(year)
        ours = subsidised_by(year, rec, self.paid_out, [])
        if not ours and rec is not None and not rec.frozen and rec.mode != PaymentMode.WITHDRAWN and rec.subsidy_fen > 0:
            ours = [f"缴费标准 v{rec.version} 资助 {yuan(rec.subsidy_fen)}"]
        out: list[Effect] = []
        for other in (o for o in self.others if o.year == year and ours):
            if self._once(f"DOUBLE_SUBSIDY|{year}|{other.record_id}"):
                rule = _money_rule(rec)
                out.append(self._review(
                    f"{person_key}|double|{other.record_id}", ReviewKind.DOUBLE_SUBSIDY, year, "DOUBLE_SUBSIDY",
                    f"id {mask_id(self.id_number)} {year}: {other.funder} ({other.record_id}) subsidises "
                    f"{yuan(other.amount_fen)} of the same premium as {'; '.join(ours)}{rule}", now_ms,
                    other.amount_fen))
        return out

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
            effects.append(self._review(
                ev.event_id, ReviewKind.NAME_CONFLICT, None, "",
                f"id {mask_id(self.id_number)}: name from {ev.source} differs from the name on record; "
                f"the latest name is used until a person resolves it", now_ms))
        self.name = ev.name
        # The enum members are str (StrEnum): stored as they are, written by orjson as their values.
        self._record(Fact(ev.event_id, ev.source, ev.category, ev.change, ev.region_code, ev.effective_date,
                          _ms(ev.occurred_at), ev.is_student, ev.previous_category, ev.living_status))
        timeline = fold(self.facts)
        if not book.years(ev.region_code) and self._once(f"NO_POLICY|{ev.region_code}"):
            effects.append(self._review(ev.event_id, ReviewKind.OTHER, None, "NO_POLICY",
                                        f"NO_POLICY: no policy for region {ev.region_code}, any year; "
                                        f"{ev.category} from {ev.source} is kept and waits", now_ms))
        for conflict_id, source, owners in timeline.conflicts:
            if self._once(f"LIVING_STATUS_CONFLICT|{conflict_id}"):
                effects.append(self._review(
                    conflict_id, ReviewKind.OTHER, None, "LIVING_STATUS_CONFLICT",
                    f"id {mask_id(self.id_number)}: {source} says ALIVE (event {scrub(conflict_id)}) after "
                    f"{', '.join(owners)} reported the death ({timeline.death}); the death stands until "
                    f"{', '.join(owners)} corrects it (an UPDATED with living_status ALIVE)", now_ms))
        years, counts = target_years(timeline, book, opened or {})
        targets = {y for y, r in self.years.items() if not r.frozen} | years
        for year in sorted(targets):
            effects += self._redecide(year, timeline, book, person_key, now_ms, counts)
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
            effects += self._redecide(y, timeline, book, person_key, now_ms, counts)
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
            return self._redecide(year, timeline, book, person_key, now_ms, counts)
        return self._revision_of_paid(year, rec, view, timeline, book, person_key, now_ms)

    def _revision_of_paid(self, year: int, rec: YearRecord, view: YearView, timeline: Timeline, book: PolicyBook,
                          person_key: str, now_ms: int) -> list[Effect]:
        found = revision_of_paid(rec, view, timeline, book, self.id_number)
        if found is None or not self._once(f"POLICY_REVISION|{year}|{found.policy_id}"):
            return []
        trigger = f"{person_key}|revision|{found.policy_id}"
        effects: list[Effect] = [self._review(trigger, ReviewKind.OTHER, year, "POLICY_REVISION",
                                              f"id {mask_id(self.id_number)} {year}: {found.detail}", now_ms,
                                              found.difference)]
        if found.owed:
            rec.owed_fen, rec.owed_kind = rec.owed_fen + found.difference, "POLICY_REVISION"
            paid = rec.frozen_figures() or rec.figures()
            effects += self._owe(InstructionKind.POST_HOC_SUBSIDY, case_id(trigger, ReviewKind.OTHER, year), year,
                                 paid, found.difference, view.policy, found.detail, person_key, now_ms)
        return effects

    def apply_claim(self, claim: Claim, book: PolicyBook, now_ms: int,
                    opened: Mapping[str, int] | None = None) -> list[Effect]:
        """A SubsidyClaim, decided once (rule 7: the same claim id again gives nothing); an
        approved one gives its instruction (``money.decide_claim``, rules 8-9)."""
        if claim.claim_id in self.claims:
            return []
        self.name = self.name or claim.name
        year = claim.insurance_year
        decided, instruction = decide_claim(claim, fold(self.facts), self.years.get(year), self.claims,
                                            self.paid_out, self.others, book, opened or {}, now_ms)
        self.claims[claim.claim_id] = [claim.kind.value, year, decided.outcome.value]
        if instruction is None:
            return [decided]
        self.paid_out.append(paid_out_of(instruction, year, claim.claim_id))
        return [decided, instruction]

    def apply_other_channel(self, sub: OtherChannel, book: PolicyBook, person_key: str, now_ms: int,
                            opened: Mapping[str, int] | None = None) -> list[Effect]:
        """Another channel's subsidy of a person-year (rule 10): recorded once per record id; a
        DOUBLE_SUBSIDY case where a standard or an instruction subsidises the same premium; under
        the region's top-up rule an unfrozen year's standard is re-decided to cover only the rest."""
        if any(o.record_id == sub.record_id for o in self.others):
            return []
        year = sub.insurance_year
        self.others.append(OtherSubsidy(sub.record_id, sub.funder, year, sub.amount_fen))
        if year in self.years and not self.years[year].frozen:
            timeline = fold(self.facts)
            return self._redecide(year, timeline, book, person_key, now_ms, target_years(timeline, book, opened or {})[1])
        return self._double_subsidy(year, person_key, now_ms)

    def _owe(self, kind: InstructionKind, cause_id: str, year: int, fig: Figures, amount: int, policy: Policy | None,
             why: str, person_key: str, now_ms: int) -> list[Effect]:
        """Money a payment or a revision left owed to the person, as an instruction where the
        region names its channel, unless another instruction or channel already subsidised the
        year (then a DOUBLE_SUBSIDY case says so instead)."""
        if policy is None or any(p.cause_id == cause_id for p in self.paid_out):
            return []
        if subsidised_by(year, None, self.paid_out, self.others):
            return self._double_subsidy(year, person_key, now_ms)
        found = owed_instruction(kind, cause_id, fig, amount, policy, (self.id_number, self.name), why, now_ms)
        if found is None:
            return []
        self.paid_out.append(paid_out_of(found, year, cause_id))
        return [found]

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

    def apply_payment(self, ack: PaymentAck, book: PolicyBook, now_ms: int, person_key: str = "") -> list[Effect]:
        """Apply a tax acknowledgement (``person_key``: the cases' trigger, as elsewhere)."""
        person_key = person_key or self.id_number
        ack_id, year, status, version, amount = ack.ack_id, ack.insurance_year, ack.status, ack.fee_version, ack.amount_fen
        level = ack.contribution_level
        digest = hashlib.sha256(f"{year}|{version}|{status}|{amount}|{level}".encode()).hexdigest()[:8]
        earlier = next((s for s in self.seen if s.startswith(f"ack:{ack_id}:")), None)
        if earlier is not None:
            if earlier.endswith(":" + digest):
                return []  # a redelivery
            return [self._review(ack_id + digest, ReviewKind.OTHER, year, "DUPLICATE_ACK_ID",
                                 f"ack id {ack_id} was used before with different content ({status}, v{version}, "
                                 f"{yuan(amount)}); ignored", now_ms)]
        self._remember(f"ack:{ack_id}:{digest}")
        rec = self.years.get(year)
        if rec is None:
            return [unknown_payment(ack, now_ms, f"no fee standard was issued for id {mask_id(self.id_number)} year {year}")]
        effects: list[Effect] = []

        def review(kind: ReviewKind, detail: str, code: str = "", amount_fen: int | None = None) -> None:
            effects.append(self._review(ack_id, kind, year, code, f"ack {ack_id} ({status}): {detail}", now_ms,
                                        amount_fen))

        acted_on = rec.figures_of(version)
        if version != rec.version:
            review(ReviewKind.PAYMENT_MISMATCH,
                   f"acts on version {version} while version {rec.version} is current"
                   + (f"; the year freezes at version {version}, its class and subsidy" if acted_on
                      and status in FREEZING_STATES and not rec.frozen else ""),
                   "SUPERSEDED_VERSION")
        if status is PaymentState.PAID and rec.frozen and amount > 0 and rec.paid_fen - rec.refunded_fen > 0:
            # 人费对应 (豫医保办〔2024〕65号 五): one person-year is paid once
            review(ReviewKind.PAYMENT_MISMATCH,
                   f"a second payment of {yuan(amount)} for {year}, already {rec.payment} with {yuan(rec.paid_fen)} "
                   f"(version v{rec.paid_version}): the person-year is paid once; the money is to be returned",
                   "DUPLICATE_PAYMENT", amount)
        rec.last_ack = status.value
        if status is PaymentState.REFUNDED:
            rec.refunded_fen += amount
        if status in FREEZING_STATES and not rec.frozen and acted_on is not None:
            policy = _policy_of(book, acted_on, year)
            in_group = in_paid_in_full_group(fold(self.facts), acted_on, policy)
            settled, findings = settle(acted_on, status, amount, level, policy, in_group)
            rec.payment = status.value
            rec.paid_version = version
            rec.paid_fen = amount
            rec.paid = settled.to_doc()
            for finding in findings:
                review(finding.kind, finding.detail, finding.code, finding.amount_fen)
                if finding.code in OWED_CODES and finding.amount_fen:
                    rec.owed_fen, rec.owed_kind = finding.amount_fen, finding.code
                    effects += self._owe(OWED_AS[finding.code], ack_id, year, acted_on, finding.amount_fen, policy,
                                         f"ack {ack_id}: {finding.detail}", person_key, now_ms)
            effects += self._double_subsidy(year, person_key, now_ms)
        return effects


def _money_rule(rec: YearRecord | None) -> str:
    return "" if rec is None or not rec.policy_id else f" (policy {rec.policy_id}: other_channel)"


def _policy_of(book: PolicyBook, fig: Figures, year: int) -> Policy | None:
    if not fig.region_code:
        return None
    try:
        return book.lookup(fig.region_code, year)
    except NoPolicy:
        return None


__all__ = ["PersonState", "YearRecord"]
