"""One insurance year of one person: what the record keeps (``YearRecord``), how the year is
decided from its view (``decide_year``: the decision, on the spot or not, the due day), and the
version issued when the decision changed (``issue``; ``withdrawn_basis`` says why a year is
withdrawn, from the timeline).

Pure: the year's view comes from ``years.py`` (which identities count, which region decides),
the decision from ``policy/decide.py``; the person state (``person.py``) strings them together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from streams.domain.departments import Departments
from streams.domain.enums import FREEZING_STATES, Category, PaymentMode, PaymentState
from streams.domain.messages import FeeStandardIssued, SuspectedFound
from streams.domain.payments import Figures
from streams.domain.policy.decide import ON_THE_SPOT, Decision, cite, decide, late_until, yuan
from streams.domain.policy.spec import PolicyBook
from streams.domain.timeline import Timeline, alive_for
from streams.domain.years import YearView, held_for, lookup


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
    # the explanation of the year's current decision (the ledger's ``basis``), kept even when no
    # figure changed and so no version went to tax; and the day CHECK_COVERAGE first found the
    # year unpaid after its due date (the ledger's ``suspected_since``)
    basis: str = ""
    suspected: str = ""

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


def decide_year(id_number: str, view: YearView, timeline: Timeline,
                departments: Departments) -> tuple[Decision | None, bool, dt.date | None]:
    """The year's decision, whether it is on the spot, and the day payment is due."""
    policy = view.policy
    if policy is None:
        return None, False, None
    year = view.year
    decision = decide(held_for(id_number, timeline, year, policy, view.counted), policy, departments)
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

def withdrawn_basis(timeline: Timeline, year: int, premium: int, departments: Departments) -> str:
    """Why a year is withdrawn, from the timeline (never from the event that happened to come last)."""
    if not alive_for(timeline, year):
        by = "/".join(departments.zh_of(s) for s in timeline.death_by)
        return f"死亡核减 ({timeline.death}, {by}报告); 不再资助"
    ended = [s for s in timeline.spells if s.end is not None and s.end <= dt.date(year, 12, 31)]
    if ended:
        last = max(ended, key=lambda s: (s.end, s.key))
        why = f"{departments.zh_of(last.source)} 撤销 {last.category} ({last.end})"
    else:
        why = "剩余身份不在本地资助范围"
    return f"{why}; 不再资助, 按普通居民缴费 {yuan(premium)}"

def message_id(person_key: str, year: int, version: int) -> str:
    """A fee standard's message id: the same for the same person, year and version (tax dedupes on it)."""
    return f"{person_key[:32]}-{year}-v{version}"


def issue(rec: YearRecord, year: int, decision: Decision | None, view: YearView, on_the_spot: bool,
          who: tuple[str, str], person_key: str, now_ms: int, timeline: Timeline,
          book: PolicyBook) -> FeeStandardIssued | None:
    """A new version of ``year`` when the decision's fingerprint differs from the record's
    (the record takes its figures); None when nothing changed or nothing is to withdraw.
    ``who``: the person's (ID number, name)."""
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
        basis = withdrawn_basis(timeline, year, premium, book.departments)
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
    rec.basis = basis
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
        message_id=message_id(person_key, year, rec.version),
        id_number=who[0],
        name=who[1],
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


class Revision(NamedTuple):
    """What a revised policy gives a year already paid: more subsidy than was paid."""

    policy_id: str  # the revised policy
    difference: int  # fen: what it gives more than the paid version did
    owed: bool  # whether the region's rule (paid_year_revision) owes it to the person
    detail: str


def revision_of_paid(rec: YearRecord, view: YearView, timeline: Timeline, book: PolicyBook,
                     id_number: str) -> Revision | None:
    """A frozen year under the book's policy (CONTRACT rule 14): the year keeps what was paid; where
    a policy other than the one it was paid under raises the subsidy, the difference, and whether
    the region owes it (``paid_year_revision``, with its clause). None when nothing was raised."""
    paid = rec.frozen_figures()
    decision, _, _ = decide_year(id_number, view, timeline, book.departments)
    if paid is None or decision is None or decision.policy_id == paid.policy_id or view.policy is None:
        return None
    difference = decision.subsidy_fen - paid.subsidy_fen
    if difference <= 0:
        return None
    rule = view.policy.spec.paid_year_revision
    owed = rule.value == "owed_to_person"
    said = f"{rule.value}{' [示例值]' if rule.example else ''} ({cite(rule.reference)})"
    return Revision(decision.policy_id, difference, owed,
                    f"paid under {paid.policy_id} with a subsidy of {yuan(paid.subsidy_fen)}; {decision.policy_id} "
                    f"gives {yuan(decision.subsidy_fen)}. The year keeps what was paid; the difference "
                    f"{yuan(difference)} is {'owed to the person' if owed else 'not paid'}: {said}")


def suspected(rec: YearRecord, year: int, as_of: dt.date, grace_days: int, death_of: Callable[[], dt.date | None],
              who: tuple[str, str]) -> SuspectedFound | None:
    """A live standard with no payment after its due date + ``grace_days``, judged on ``as_of``
    (疑似未参保); never for a withdrawn or frozen year, nor for a person dead by then
    (``death_of``: asked only for a year past due, it folds the timeline)."""
    if rec.frozen or rec.mode == PaymentMode.WITHDRAWN or not rec.due:
        return None
    since = dt.date.fromisoformat(rec.due) + dt.timedelta(days=grace_days + 1)
    if as_of < since:
        return None
    death = death_of()
    if death is not None and death <= as_of:
        return None  # a dead person is not chased to enrol
    if rec.last_ack == PaymentState.REJECTED:
        reason = f"税务回执 REJECTED (版本 v{rec.version}), 应缴 {yuan(rec.payable_fen)}"
    else:
        reason = (f"缴费期 {rec.due} 结束 {grace_days} 天后仍无缴费回执 (版本 v{rec.version}, "
                  f"应缴 {yuan(rec.payable_fen)})")
    return SuspectedFound(id_number=who[0], name=who[1], region_code=rec.region_code, insurance_year=year,
                          fee_version=rec.version, since=since, reason=reason)
