"""Money to people rather than through a fee standard (CONTRACT additions 2026-12, rules 7-10).

Pure functions of a person's dated facts and what was paid, used by the person state
(``person.py``):

- ``decide_claim``: a SubsidyClaim (cross-region enrolment 异地参保, employee insurance 渝 三,
  paid in full 事后补助) decided once, from the person's timeline, the region-year's policy and
  what already subsidised that year; an approved claim gives one PaymentInstruction whose id is
  the claim's (``messages.instruction_id``);
- ``owed_instruction``: money a payment (or a revision) left owed to the person, as an
  instruction where the region's policy names its channel (``money.payouts``);
- ``subsidised_by``: what already subsidised a person-year (a frozen standard with a subsidy,
  an earlier instruction, another channel): rule 8's "not subsidised by any channel";
- ``top_up``: under a region's ``other_channel: top_up`` rule, the standard's subsidy covers
  only what the other channel left (rule 10).

The region's rules are data with their clauses (``PolicyFile.money``): which claims it pays,
by when, through which channel, whether an SMS is due, whether people enrolled elsewhere are
paid (攀医保〔2021〕58号 六(二): never).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from streams.domain.enums import (
    PAYS_AS,
    ClaimKind,
    ClaimOutcome,
    ClaimReason,
    InstructionKind,
    PaymentMode,
    Scheme,
)
from streams.domain.ids import mask_id
from streams.domain.messages import Claim, ClaimDecided, InstructionIssued, instruction_id
from streams.domain.payments import Figures
from streams.domain.policy.decide import Decision, cite, yuan
from streams.domain.policy.spec import Param, Policy, PolicyBook
from streams.domain.regions import contains, pooling_region
from streams.domain.timeline import Timeline
from streams.domain.year import YearRecord, decide_year
from streams.domain.years import target_years, view_year

KIND_ZH = {ClaimKind.CROSS_REGION_ENROLMENT: "异地参保补贴", ClaimKind.EMPLOYEE_INSURANCE: "职工医保资助",
           ClaimKind.PAID_IN_FULL: "全额缴费事后补助"}


class PaidOut(NamedTuple):
    """An instruction issued for a person-year (kept in the person state: each cause pays once)."""

    year: int
    kind: str
    cause_id: str
    amount_fen: int
    instruction_id: str
    # where the money is settled (the instruction's county, class and fund); "" in a state
    # written before the ledger (issue #24): the year's own then
    region_code: str = ""
    category: str = ""
    funding_source: str = ""


def paid_out_of(found: InstructionIssued, year: int, cause_id: str) -> PaidOut:
    return PaidOut(year, found.kind.value, cause_id, found.amount_fen, found.instruction_id, found.region_code,
                   found.category, found.funding_source)


class OtherSubsidy(NamedTuple):
    """Another channel's subsidy of a person-year (subsidy.other-channel.v1), as recorded."""

    record_id: str
    funder: str
    year: int
    amount_fen: int


def said(param: Param[Any]) -> str:
    """A parameter's clause for a basis, marked where the notices give no value."""
    return cite(param.reference) + (" [示例值]" if param.example else "")


def subsidised_by(year: int, rec: YearRecord | None, paid_out: Sequence[PaidOut],
                  others: Sequence[OtherSubsidy]) -> list[str]:
    """What already subsidised ``year`` (rule 8), each named; empty when nothing did."""
    found = []
    paid = rec.frozen_figures() if rec is not None and rec.frozen else None
    if paid is not None and paid.subsidy_fen > 0:
        found.append(f"缴费标准 v{rec.paid_version} 已资助 {yuan(paid.subsidy_fen)} ({rec.payment})")  # type: ignore[union-attr]
    found += [f"指令 {p.instruction_id} ({p.kind}) {yuan(p.amount_fen)}" for p in paid_out if p.year == year]
    found += [f"其他渠道 {o.funder} ({o.record_id}) {yuan(o.amount_fen)}" for o in others if o.year == year]
    return found


def _decided(claim: Claim, outcome: ClaimOutcome, reasons: list[ClaimReason], basis: str, now_ms: int,
             policy_id: str = "", amount: int = 0, code: str = "") -> ClaimDecided:
    return ClaimDecided(claim.claim_id, claim.id_number, claim.insurance_year, outcome, reasons, amount, policy_id,
                        basis, now_ms, code)


def refused_unknown(claim: Claim, now_ms: int, code: str, detail: str) -> ClaimDecided:
    """A claim that reaches no person (an invalid ID number): refused, with the finer reason."""
    return _decided(claim, ClaimOutcome.REFUSED, [ClaimReason.NOT_ASSISTED_IN_YEAR], detail, now_ms, code=code)


def _opened_for(timeline: Timeline, year: int, opened: Mapping[str, int]) -> dict[str, int]:
    """The years opened, with ``year`` opened in every county the person was certified in: a
    claim asks about a year the person paid for, whether or not its window was opened here."""
    out = dict(opened)
    for spell in timeline.spells:
        for _, county, _ in spell.changes:
            out[county] = max(year, out.get(county, year))
    return out


def certifying(claim: Claim, timeline: Timeline, book: PolicyBook,
               opened: Mapping[str, int]) -> tuple[Policy | None, Decision | None, str, bool]:
    """The certifying region's policy and decision for the claim's year, the certifying county,
    and whether an identity counts but its region has no policy for that year yet."""
    year = claim.insurance_year
    _, counts = target_years(timeline, book, _opened_for(timeline, year, opened))
    view = view_year(timeline, year, book, claim.id_number, counts)
    if view.policy is None:
        return None, None, "", bool(view.waiting)
    decision, _, _ = decide_year(claim.id_number, view, timeline, book.departments)
    if decision is None:
        return view.policy, None, "", False
    deciding = [(s, c) for s, _, c in view.counted if s.category == decision.category]
    _, county = max(deciding, key=lambda sc: (sc[0].since, sc[0].recorded_ms, sc[1]))
    return view.policy, decision, county, False


def decide_claim(claim: Claim, timeline: Timeline, rec: YearRecord | None, earlier: Mapping[str, Sequence[object]],
                 paid_out: Sequence[PaidOut], others: Sequence[OtherSubsidy], book: PolicyBook,
                 opened: Mapping[str, int], now_ms: int) -> tuple[ClaimDecided, InstructionIssued | None]:
    """The one decision of a new claim id (``earlier``: the person's earlier claims, id ->
    (kind, year, outcome)), and the instruction when it is approved (rules 7-9)."""
    year, kind = claim.insurance_year, claim.kind
    who = f"id {mask_id(claim.id_number)} {year}"
    if claim.amount_paid_fen < 0:
        return _decided(claim, ClaimOutcome.REFUSED, [ClaimReason.NOT_ENROLLED],
                        f"{who}: amount_paid_fen {claim.amount_paid_fen} is negative", now_ms, code="BAD_AMOUNT"), None
    policy, decision, county, waiting = certifying(claim, timeline, book, opened)
    if policy is None and waiting:
        return _decided(claim, ClaimOutcome.REVIEW, [],
                        f"{who}: an identity counts, but its region has no policy for {year} yet; decided by a "
                        f"person once the policy is loaded", now_ms, code="NO_POLICY"), None
    if policy is None or decision is None or decision.subsidy_fen <= 0:
        return _decided(claim, ClaimOutcome.REFUSED, [ClaimReason.NOT_ASSISTED_IN_YEAR],
                        f"{who}: holds no identity that counts for a subsidy in {year}", now_ms,
                        policy.policy_id if policy else ""), None
    money = policy.spec.money
    rule = money.claims[kind]
    reasons: list[ClaimReason] = []
    why: list[str] = []
    code = ""

    def refuse(reason: ClaimReason, text: str) -> None:
        if reason not in reasons:
            reasons.append(reason)
        why.append(text)

    # an earlier claim approved or under review (a refused one does not stop a corrected claim)
    same = [cid for cid, (k, y, outcome, *_) in earlier.items()
            if k == kind and y == year and cid != claim.claim_id and outcome != ClaimOutcome.REFUSED]
    if same:
        refuse(ClaimReason.DUPLICATE_CLAIM, f"claim {same[0]} of the same kind was decided for {year}")
    if not rule.allowed.value:
        refuse(ClaimReason.NOT_ALLOWED_BY_POLICY, f"{policy.policy_id} does not pay {kind} ({said(rule.allowed)})")
    wanted = Scheme.EMPLOYEE if kind is ClaimKind.EMPLOYEE_INSURANCE else Scheme.RESIDENT
    if claim.scheme is not wanted:
        code = "SCHEME_MISMATCH"
        refuse(ClaimReason.NOT_ALLOWED_BY_POLICY, f"{kind} is for the {wanted} scheme, the claim says {claim.scheme}")
    home = pooling_region(county)
    elsewhere = not contains(home, claim.enrolled_region_code)
    if kind is ClaimKind.CROSS_REGION_ENROLMENT and not elsewhere:
        refuse(ClaimReason.ENROLLED_IN_HOME_REGION,
               f"enrolled in {claim.enrolled_region_code}, inside the certifying pooling region {home}")
    if elsewhere and not money.pay_enrolled_elsewhere.value:
        refuse(ClaimReason.NOT_ALLOWED_BY_POLICY, f"enrolled in {claim.enrolled_region_code}, outside {home}; "
               f"the region pays no one enrolled elsewhere ({said(money.pay_enrolled_elsewhere)})")
    if rule.deadline is not None:
        month, day = (int(x) for x in rule.deadline.value.split("-"))
        last = dt.date(year, month, day)
        if claim.submitted_at.date() > last:
            refuse(ClaimReason.AFTER_DEADLINE, f"submitted {claim.submitted_at.date()}, after {last} "
                   f"({said(rule.deadline)})")
    if claim.amount_paid_fen == 0 or not claim.evidence.strip():
        refuse(ClaimReason.NOT_ENROLLED, "no payment shown (amount 0 or no evidence)")
    before = subsidised_by(year, rec, paid_out, others)
    if before:
        refuse(ClaimReason.ALREADY_SUBSIDISED, "already subsidised: " + "; ".join(before))
    if reasons:
        return _decided(claim, ClaimOutcome.REFUSED, reasons, f"{who}: " + "; ".join(why), now_ms,
                        policy.policy_id, code=code), None
    ceiling = max(policy.premium(level) for level in policy.spec.premiums)
    if claim.scheme is Scheme.RESIDENT and claim.amount_paid_fen > ceiling:
        return _decided(claim, ClaimOutcome.REVIEW, [],
                        f"{who}: paid {yuan(claim.amount_paid_fen)}, above the highest premium of "
                        f"{policy.policy_id} ({yuan(ceiling)}): a person checks the evidence", now_ms,
                        policy.policy_id, code="BAD_AMOUNT"), None
    amount = min(decision.subsidy_fen, claim.amount_paid_fen)
    capped = [ClaimReason.AMOUNT_ABOVE_PAID] if decision.subsidy_fen > claim.amount_paid_fen else []
    basis = (f"{decision.basis}; {KIND_ZH[kind]} ({said(rule.allowed)}): 已缴 {yuan(claim.amount_paid_fen)}, "
             f"资助 {yuan(amount)}" + (f" (标准 {yuan(decision.subsidy_fen)}, 以已缴为限)" if capped else "")
             + f"; 认定地 {county}, 参保地 {claim.enrolled_region_code}")
    instruction = owed_instruction(PAYS_AS[kind], claim.claim_id, _figures(decision, county, policy), amount,
                                   policy, (claim.id_number, claim.name), basis, now_ms)
    assert instruction is not None, "an allowed claim kind has its payout (PolicyFile validation)"
    return _decided(claim, ClaimOutcome.APPROVED, capped, basis, now_ms, policy.policy_id, amount), instruction


def _figures(decision: Decision, county: str, policy: Policy) -> Figures:
    return Figures(0, decision.payment_mode, decision.category, decision.funding_source,
                   decision.contribution_level, decision.premium_fen, decision.subsidy_fen, decision.payable_fen,
                   False, policy.policy_id, county)


def owed_instruction(kind: InstructionKind, cause_id: str, fig: Figures, amount: int, policy: Policy,
                     who: tuple[str, str], basis: str, now_ms: int) -> InstructionIssued | None:
    """An instruction of ``kind`` for ``amount`` owed to the person (``fig``: the class and county
    it is paid for), through the channel the region's policy names; None where the policy names
    none (the case raised beside it is then the only trace)."""
    payout = policy.spec.money.payout(kind)
    if payout is None or amount <= 0:
        return None
    return InstructionIssued(
        instruction_id=instruction_id(kind, cause_id), kind=kind, cause_id=cause_id, id_number=who[0], name=who[1],
        region_code=fig.region_code, insurance_year=policy.year, amount_fen=amount, category=fig.category,
        funding_source=fig.funding_source, channel=payout.channel.value, notify_sms=payout.notify_sms.value,
        policy_id=policy.policy_id,
        basis=f"{basis}; 渠道 {payout.channel.value} ({said(payout.channel)})"
              + (f"; 短信告知 ({said(payout.notify_sms)})" if payout.notify_sms.value else ""),
        issued_at=now_ms)


def top_up(decision: Decision, others: Sequence[OtherSubsidy], policy: Policy) -> Decision:
    """Under ``other_channel: top_up``, the decision whose subsidy covers only what the other
    channels left (rule 10); the decision itself otherwise."""
    rule = policy.spec.money.other_channel
    given = sum(o.amount_fen for o in others)
    if rule.value != "top_up" or given <= 0 or decision.subsidy_fen <= 0:
        return decision
    subsidy = max(0, decision.subsidy_fen - given)
    payable = decision.premium_fen - subsidy
    funders = ", ".join(sorted({o.funder for o in others}))
    return dataclasses.replace(
        decision, subsidy_fen=subsidy, payable_fen=payable,
        payment_mode=PaymentMode.ZERO_DECLARATION if payable == 0 else PaymentMode.DIFFERENCE,
        basis=f"{decision.basis}; 其他渠道 ({funders}) 已资助 {yuan(given)}, 本渠道只补足其余 {yuan(subsidy)} "
              f"({said(rule)})")
