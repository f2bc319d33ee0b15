"""A person's state across departments and years, and how facts change it.

The state keeps the facts (the person's timeline, see ``timeline.py``), the versions issued
per insurance year and what payments froze. Every decision is a pure function of the
timeline, the region-year's policy and the payment facts: ``apply_identity``,
``apply_payment`` and ``open_year`` record a fact and return the effects (fee standards to
publish, review cases). Idempotence lives here: a seen event or ack id yields nothing; a
standard is re-issued only as a new version when the figures, class, level or mode changed;
a frozen year (PAID, ZERO_DECLARED, ALREADY_PAID) never changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson  # the state's JSON, written and read once per command: ~5x faster than json

from streams.domain.departments import SHIPPED, Departments
from streams.domain.enums import (
    FREEZING_STATES,
    Category,
    Change,
    PaymentMode,
    PaymentState,
    ReviewKind,
)
from streams.domain.exceptions import NoPolicy
from streams.domain.identity import Identity
from streams.domain.ids import mask_id, scrub
from streams.domain.messages import (
    Effect,
    FeeStandardIssued,
    PaymentAck,
    ReviewRaised,
    SuspectedFound,
)
from streams.domain.payments import OWED_CODES, Figures, in_group_by_figures, settle
from streams.domain.policy.decide import (
    ON_THE_SPOT,
    Decision,
    decide,
    late_until,
    yuan,
)
from streams.domain.policy.spec import Policy, PolicyBook
from streams.domain.regions import contains
from streams.domain.timeline import Fact, Spell, Timeline, alive_for, fold
from streams.domain.years import (
    Counts,
    YearView,
    first_year,
    held_for,
    lookup,
    opened_years,
    view_year,
    waiting_year,
)

SHIPPED_ZH = {d.source: d.zh for d in SHIPPED.by_source.values()}
SEEN_LIMIT = 256  # ack ids (and a v1 state's event ids) remembered per person for redelivery
# The encoding of ``PersonState.dumps``: 1, identities held now, without dates; 2, the timeline,
# with frozen and superseded figures as positional lists; 3, every stored figure by name, the
# county and on-the-spot flag in a year's fingerprint, identical restatements kept once.
STATE_VERSION = 3


@dataclass
class YearRecord:
    """One insurance year of one person: the live version's figures, and what froze it."""

    version: int = 0
    fingerprint: str = ""
    mode: str = ""
    category: str = ""
    funding_source: str = ""
    level: int = 1
    premium_fen: int = 0
    subsidy_fen: int = 0
    payable_fen: int = 0
    region_code: str = ""
    on_the_spot: bool = False
    policy_id: str = ""
    payment: str = ""  # the freezing PaymentState (PAID, ZERO_DECLARED, ALREADY_PAID), set once
    paid_version: int = 0
    paid_fen: int = 0
    paid: dict[str, Any] = field(default_factory=dict)  # Figures.to_doc() of what the year froze at
    last_ack: str = ""  # the latest PaymentState seen (REJECTED and REFUNDED included)
    refunded_fen: int = 0
    due: str = ""  # ISO date after which (plus a grace) no payment makes the person suspected un-enrolled
    older: dict[str, dict[str, Any]] = field(default_factory=dict)  # version -> Figures.to_doc(), superseded ones
    # money the payment left owed to the person: a post-hoc subsidy, a tax refund, or a subsidy
    # not given to someone charged the full premium (OWED_CODES), for the reports
    owed_fen: int = 0
    owed_kind: str = ""
    # the classes the year is decided on now (the ``持有`` of its explanation), kept current even
    # when no new version went to tax because no figure changed (the ledger, issue #24, shows it)
    held: list[str] = field(default_factory=list)

    @property
    def frozen(self) -> bool:
        return self.payment in FREEZING_STATES

    def figures(self) -> Figures:
        return Figures(self.version, self.mode, self.category, self.funding_source, self.level, self.premium_fen,
                       self.subsidy_fen, self.payable_fen, self.on_the_spot, self.policy_id, self.region_code)

    def figures_of(self, version: int) -> Figures | None:
        if version == self.version:
            return self.figures()
        old = self.older.get(str(version))
        return Figures.from_doc(old) if old else None

    def frozen_figures(self) -> Figures | None:
        return Figures.from_doc(self.paid) if self.paid else None


def _case_id(trigger: str, kind: ReviewKind, year: int | None) -> str:
    return hashlib.sha256(f"{trigger}|{kind}|{year}".encode()).hexdigest()[:24]


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

    # -- persistence ---------------------------------------------------------
    def dumps(self) -> bytes:
        doc: dict[str, Any] = {
            "v": STATE_VERSION,
            "i": self.id_number,
            "n": self.name,
            "f": [f.to_doc() for f in self.facts],
            "y": {str(y): {k: v for k, v in r.__dict__.items() if _EMPTY_YEAR_FIELDS[k] != v}
                  for y, r in self.years.items()},
            "s": self.seen,
        }
        if self.waiting:
            doc["w"] = self.waiting
        if self.raised:
            doc["k"] = self.raised
        return orjson.dumps(doc)  # compact UTF-8 JSON

    @classmethod
    def loads(cls, data: bytes) -> PersonState:
        doc = orjson.loads(data)
        version = doc.get("v", 1)
        if version == 1:
            return _from_v1(doc)
        if version == 2:
            return _from_v2(doc)
        return cls(
            id_number=doc["i"], name=doc["n"], facts=[Fact.from_doc(f) for f in doc["f"]],
            years={int(y): YearRecord(**r) for y, r in doc["y"].items()}, seen=doc["s"],
            waiting=doc.get("w", []), raised=doc.get("k", []),
        )

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
        return ReviewRaised(case_id=_case_id(trigger, kind, year), kind=kind.value, id_number=self.id_number,
                            insurance_year=year, detail=detail, raised_at=now_ms, code=code, amount_fen=amount_fen)

    def _decision(self, view: YearView, timeline: Timeline,
                  departments: Departments) -> tuple[Decision | None, bool, dt.date | None]:
        """The year's decision, whether it is on the spot, and the day payment is due."""
        policy = view.policy
        if policy is None:
            return None, False, None
        year = view.year
        decision = decide(held_for(self.id_number, timeline, year, policy, view.counted), policy, departments)
        if decision is None:
            return None, False, None
        deciding = [(s, h) for s, h, _ in view.counted if s.category == decision.category]  # never empty
        # on the spot only when no identity of the deciding class counts in time
        on_the_spot = all(h == ON_THE_SPOT for _, h in deciding)
        spot = [s for s, _ in deciding]
        due = policy.spec.window.end
        if on_the_spot:
            since = max(s.since for s in spot)
            due = max(due, late_until(decision.category, policy) or since)
        return decision, on_the_spot, due

    def _withdrawn_basis(self, timeline: Timeline, year: int, premium: int) -> str:
        """Why a year is withdrawn, from the timeline (never from the event that happened to come last)."""
        if not alive_for(timeline, year):
            by = "/".join(SHIPPED_ZH.get(s, s) for s in timeline.death_by)
            return f"死亡核减 ({timeline.death}, {by}报告); 不再资助"
        ended = [s for s in timeline.spells if s.end is not None and s.end <= dt.date(year, 12, 31)]
        if ended:
            last = max(ended, key=lambda s: (s.end, s.key))
            why = f"{SHIPPED_ZH.get(last.source, last.source)} 撤销 {last.category} ({last.end})"
        else:
            why = "剩余身份不在本地资助范围"
        return f"{why}; 不再资助, 按普通居民缴费 {yuan(premium)}"

    def _issue(self, year: int, rec: YearRecord, decision: Decision | None, view: YearView, on_the_spot: bool,
               person_key: str, now_ms: int, timeline: Timeline, book: PolicyBook) -> FeeStandardIssued | None:
        if decision is None:
            if rec.version == 0 or rec.mode == PaymentMode.WITHDRAWN:
                return None  # nothing was ever issued, or already withdrawn
            # the ordinary resident's premium (level 1) of the year's policy: never the level
            # some earlier version happened to carry
            policy = lookup(book, rec.region_code, year)
            premium = policy.premium(1) if policy is not None else rec.premium_fen
            mode, category, funding, level = PaymentMode.WITHDRAWN, rec.category, rec.funding_source, 1
            subsidy, payable = 0, premium
            policy_id = rec.policy_id
            basis = self._withdrawn_basis(timeline, year, premium)
            fingerprint = "WITHDRAWN"
            region = rec.region_code
            spot = rec.on_the_spot
        else:
            assert view.policy is not None
            mode, category, funding = decision.payment_mode, decision.category, decision.funding_source
            level, premium = decision.contribution_level, decision.premium_fen
            subsidy, payable = decision.subsidy_fen, decision.payable_fen
            policy_id, basis = decision.policy_id, decision.basis
            deciding = [(s, c) for s, _, c in view.counted if s.category == category]
            spell, region = max(deciding, key=lambda sc: (sc[0].since, sc[0].recorded_ms, sc[1]))
            phase = view.policy.phase_on(spell.since)
            if on_the_spot:
                basis += f"; {spell.since} 集中缴费期外新增, 随参随缴"
                if view.policy.spec.on_the_spot_until is not None and view.policy.spec.on_the_spot_until.example:
                    basis += " [示例值]"
            elif phase:
                basis += f"; {phase}"
            if view.conflict:
                basis += f"; {view.chosen_by}: {region}"
            spot = on_the_spot
            # the county and the on-the-spot flag are fields of the standard: a change is a new version
            fingerprint = f"{decision.fingerprint_text}|{region}|{int(on_the_spot)}"
        if fingerprint == rec.fingerprint:
            return None
        if rec.version:
            rec.older[str(rec.version)] = rec.figures().to_doc()
        rec.version += 1
        rec.fingerprint = fingerprint
        rec.mode, rec.category, rec.funding_source, rec.level = mode, category, funding, level
        rec.premium_fen, rec.subsidy_fen, rec.payable_fen = premium, subsidy, payable
        rec.region_code = region or rec.region_code
        rec.policy_id = policy_id
        rec.on_the_spot = spot
        return FeeStandardIssued(
            message_id=f"{person_key[:32]}-{year}-v{rec.version}",
            id_number=self.id_number,
            name=self.name,
            region_code=rec.region_code,
            insurance_year=year,
            version=rec.version,
            contribution_level=rec.level,
            premium_fen=rec.premium_fen,
            subsidy_fen=rec.subsidy_fen,
            payable_fen=rec.payable_fen,
            payment_mode=rec.mode,
            on_the_spot=rec.on_the_spot,
            category=rec.category or Category.MINIMUM_LIVING.value,
            funding_source=rec.funding_source,
            policy_id=policy_id,
            basis=basis,
            issued_at=now_ms,
        )

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
        decision, on_the_spot, due = self._decision(view, timeline, book.departments)
        rec.held = sorted({s.category for s, _, _ in view.counted}) if decision is not None else []
        issued = self._issue(year, rec, decision, view, on_the_spot, person_key, now_ms, timeline, book)
        if issued is not None and due is not None and (not rec.due or issued.payment_mode != PaymentMode.WITHDRAWN):
            rec.due = due.isoformat()
        if rec.version:
            self.years[year] = rec
            if year in self.waiting and not waiting:
                self.waiting.remove(year)
        if issued is not None:
            effects.append(issued)
        return effects

    def _targets(self, timeline: Timeline, book: PolicyBook, opened: Mapping[str, int]) -> tuple[set[int], Counts]:
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

    # -- facts ---------------------------------------------------------------
    def _record(self, fact: Fact) -> bool:
        """Keep ``fact``; False when it adds nothing. Of the facts with the same content (all but
        the event id and the recorded time) the state keeps the first and the last recorded:
        all the fold reads of them (a restatement between the two changes no spell and no
        death), so monthly restatements do not grow the state, whatever order they arrive in."""
        content = fact[1:6] + fact[7:]
        twins = [f for f in self.facts if f[1:6] + f[7:] == content]
        if not twins:
            self.facts.append(fact)
            return True
        group = [*twins, fact]
        keep = (min(group, key=_recorded_key), max(group, key=_recorded_key))
        if fact not in keep:
            return False
        self.facts = [f for f in self.facts if f not in twins or f in keep]
        self.facts.append(fact)
        return True

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
        years, counts = self._targets(timeline, book, opened or {})
        targets = {y for y, r in self.years.items() if not r.frozen} | years
        for year in sorted(targets):
            effects += self._redecide(year, timeline, book, person_key, now_ms, counts)
        return effects

    def open_year(self, year: int, region: str, book: PolicyBook, person_key: str, now_ms: int,
                  command_id: str, opened: Mapping[str, int] | None = None) -> list[Effect]:
        """OPEN_YEAR ``year`` for ``region``: the years its people's identities count for, up to
        ``year``, decided as if the events had come after it (``opened``: the years opened
        before, per region; this one is added). A year that does not change sends nothing."""
        if not self.facts:
            return []
        now_open = dict(opened or {})
        now_open[region] = max(year, now_open.get(region, year))
        timeline = fold(self.facts)
        years, counts = self._targets(timeline, book, now_open)
        # every year up to the one opened that an identity now counts for, decided or not: one the
        # person has for another identity may now count this region's too
        targets = {y for y in years if y <= year}
        effects: list[Effect] = []
        for y in sorted(targets):
            effects += self._redecide(y, timeline, book, person_key, now_ms, counts)
        return effects

    def check_coverage(self, year: int, region: str, as_of: dt.date, grace_days: int) -> list[Effect]:
        """CHECK_COVERAGE: suspected un-enrolled when a live standard has no payment after its due date + grace."""
        rec = self.years.get(year)
        if rec is None or rec.frozen or rec.mode == PaymentMode.WITHDRAWN or not rec.due:
            return []
        if not contains(region, rec.region_code):
            return []
        since = dt.date.fromisoformat(rec.due) + dt.timedelta(days=grace_days + 1)
        if as_of < since:
            return []
        death = fold(self.facts).death
        if death is not None and death <= as_of:
            return []  # a dead person is not chased to enrol
        if rec.last_ack == PaymentState.REJECTED:
            reason = f"税务回执 REJECTED (版本 v{rec.version}), 应缴 {yuan(rec.payable_fen)}"
        else:
            reason = (f"缴费期 {rec.due} 结束 {grace_days} 天后仍无缴费回执 (版本 v{rec.version}, "
                      f"应缴 {yuan(rec.payable_fen)})")
        return [SuspectedFound(id_number=self.id_number, name=self.name, region_code=rec.region_code,
                               insurance_year=year, fee_version=rec.version, since=since, reason=reason)]

    def _in_paid_in_full_group(self, fig: Figures, policy: Policy | None) -> bool:
        """Whether the person is in the group the region's ``paid_in_full`` clause names (by the
        certification day, which the figures alone do not tell: ``payments.in_group_by_figures``)."""
        if policy is None:
            return False
        group = policy.spec.paid_in_full_group.value
        if group == "on_the_spot":
            return in_group_by_figures(fig, policy)
        spells = [s for s in fold(self.facts).spells if s.category == fig.category]
        if not spells:
            return False
        since = min(s.since for s in spells)
        if group == "in_time":
            return since <= policy.in_time_until
        window = policy.spec.window  # certified_in_window
        return window.start <= since <= window.end

    def apply_payment(self, ack: PaymentAck, book: PolicyBook, now_ms: int) -> list[Effect]:
        """Apply a tax acknowledgement."""
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
            in_group = self._in_paid_in_full_group(acted_on, policy)
            settled, findings = settle(acted_on, status, amount, level, policy, in_group)
            for finding in findings:
                review(finding.kind, finding.detail, finding.code, finding.amount_fen)
                if finding.code in OWED_CODES and finding.amount_fen:
                    rec.owed_fen, rec.owed_kind = finding.amount_fen, finding.code
            rec.payment = status.value
            rec.paid_version = version
            rec.paid_fen = amount
            rec.paid = settled.to_doc()
        return effects


def _recorded_key(fact: Fact) -> tuple[int, str]:
    return fact.recorded_ms, fact.event_id


def _policy_of(book: PolicyBook, fig: Figures, year: int) -> Policy | None:
    if not fig.region_code:
        return None
    try:
        return book.lookup(fig.region_code, year)
    except NoPolicy:
        return None


_EMPTY_YEAR_FIELDS = YearRecord().__dict__  # a year stores only the fields that differ from these
_V1_HELD = ("source", "category", "region_code", "effective", "occurred_ms", "is_student", "first_year", "on_the_spot")


def _from_v1(doc: dict[str, Any]) -> PersonState:
    """A state written before the timeline (``STATE_VERSION`` 1): identities held then, by field
    position, and years whose fingerprint carried the policy id. Each held identity becomes a
    CERTIFIED fact of its start day; revocations and deaths already applied stay applied (the
    identities they ended are gone from a v1 state)."""
    facts = []
    for key, values in doc.get("h", {}).items():
        held = dict(zip(_V1_HELD, values, strict=False))
        facts.append(Fact(event_id=f"v1:{key}", source=held["source"], category=held["category"], change=Change.CERTIFIED,
                          region_code=held["region_code"], effective=dt.date.fromisoformat(held["effective"]),
                          recorded_ms=int(held["occurred_ms"]), is_student=bool(held["is_student"])))
    years: dict[int, YearRecord] = {}
    for y, r in doc.get("y", {}).items():
        fingerprint = r.get("fingerprint", "")
        parts = fingerprint.split("|")
        if parts and parts[0] == "WITHDRAWN":
            r = {**r, "fingerprint": "WITHDRAWN", "policy_id": parts[-1] if len(parts) > 1 else ""}
        elif len(parts) == 8:  # category|funding|level|premium|subsidy|payable|mode|policy_id
            r = {**r, "fingerprint": "|".join(parts[:7]), "policy_id": parts[7]}
        rec = YearRecord(**r)
        if rec.frozen:
            rec.paid = rec.figures().to_doc()
        _with_county(rec)
        years[int(y)] = rec
    return PersonState(id_number=doc["i"], name=doc["n"], facts=facts, years=years, seen=doc.get("s", []))


def _with_county(rec: YearRecord) -> YearRecord:
    """A v1/v2 year's fingerprint with the county and on-the-spot flag (v3), so that the upgrade
    itself sends tax no new version."""
    if rec.fingerprint and rec.fingerprint != "WITHDRAWN" and rec.fingerprint.count("|") == 6:
        rec.fingerprint += f"|{rec.region_code}|{int(rec.on_the_spot)}"
    return rec


def _from_v2(doc: dict[str, Any]) -> PersonState:
    """A v2 state: frozen and superseded figures as positional lists; every restatement kept."""
    years: dict[int, YearRecord] = {}
    for y, r in doc["y"].items():
        r = dict(r)
        if r.get("paid"):
            r["paid"] = Figures.from_list(r["paid"]).to_doc()
        r["older"] = {v: Figures.from_list(f).to_doc() for v, f in r.get("older", {}).items()}
        years[int(y)] = _with_county(YearRecord(**r))
    state = PersonState(id_number=doc["i"], name=doc["n"], years=years, seen=doc["s"],
                        waiting=doc.get("w", []), raised=doc.get("k", []))
    for fact in sorted((Fact.from_doc(f) for f in doc["f"]), key=_recorded_key):
        state._record(fact)
    return state


def unknown_payment(ack: PaymentAck, now_ms: int, detail: str) -> ReviewRaised:
    year = ack.insurance_year
    return ReviewRaised(
        case_id=_case_id(ack.ack_id, ReviewKind.UNKNOWN_PAYMENT, year),
        kind=ReviewKind.UNKNOWN_PAYMENT.value, id_number=ack.id_number, insurance_year=year,
        detail=f"ack {ack.ack_id} ({ack.status.value}): {detail}", raised_at=now_ms, code="UNKNOWN_PAYMENT",
    )


__all__ = ["PersonState", "unknown_payment", "YearView", "view_year"]
