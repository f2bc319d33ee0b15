"""Money to people, applied to a person's state (CONTRACT additions 2026-12, rules 7-10).

The decisions are ``money.py``'s pure functions; here they meet the state they read and record:
a claim decided once per claim id, another channel's subsidy recorded once per record id, the
money a payment or a revision left owed paid once per cause (``PersonState.paid_out``), and one
DOUBLE_SUBSIDY case per other channel's record where two channels subsidise one premium. The
person state's methods of the same names call these (``person.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.domain.enums import InstructionKind, PaymentMode, ReviewKind
from streams.domain.ids import mask_id
from streams.domain.messages import Claim, Effect, OtherChannel
from streams.domain.money import (
    OtherSubsidy,
    decide_claim,
    owed_instruction,
    paid_out_of,
    subsidised_by,
)
from streams.domain.payments import Figures
from streams.domain.person_record import PersonRecord
from streams.domain.policy.decide import yuan
from streams.domain.policy.spec import Policy, PolicyBook
from streams.domain.timeline import fold


def apply_claim(state: PersonRecord, claim: Claim, book: PolicyBook, now_ms: int,
                opened: Mapping[str, int] | None = None) -> list[Effect]:
    """A SubsidyClaim, decided once (rule 7: the same claim id again gives nothing); an
    approved one gives its instruction (``money.decide_claim``, rules 8-9)."""
    if claim.claim_id in state.claims:
        return []
    state.name = state.name or claim.name
    year = claim.insurance_year
    decided, instruction = decide_claim(claim, fold(state.facts), state.years.get(year), state.claims,
                                        state.paid_out, state.others, book, opened or {}, now_ms)
    state.claims[claim.claim_id] = [claim.kind.value, year, decided.outcome.value]
    if instruction is None:
        return [decided]
    state.paid_out.append(paid_out_of(instruction, year, claim.claim_id))
    return [decided, instruction]


def record_other_channel(state: PersonRecord, sub: OtherChannel) -> bool:
    """Keep another channel's subsidy of a person-year (rule 10), once per record id: False
    when the record was kept before."""
    if any(o.record_id == sub.record_id for o in state.others):
        return False
    state.others.append(OtherSubsidy(sub.record_id, sub.funder, sub.insurance_year, sub.amount_fen))
    return True


def owe(state: PersonRecord, kind: InstructionKind, cause_id: str, year: int, fig: Figures, amount: int,
        policy: Policy | None, why: str, person_key: str, now_ms: int) -> list[Effect]:
    """Money a payment or a revision left owed to the person, as an instruction where the
    region names its channel, unless another instruction or channel already subsidised the
    year (then a DOUBLE_SUBSIDY case says so instead)."""
    if policy is None or any(p.cause_id == cause_id for p in state.paid_out):
        return []
    if subsidised_by(year, None, state.paid_out, state.others):
        return double_subsidy(state, year, person_key, now_ms)
    found = owed_instruction(kind, cause_id, fig, amount, policy, (state.id_number, state.name), why, now_ms)
    if found is None:
        return []
    state.paid_out.append(paid_out_of(found, year, cause_id))
    return [found]


def double_subsidy(state: PersonRecord, year: int, person_key: str, now_ms: int) -> list[Effect]:
    """One DOUBLE_SUBSIDY case per other channel's record of ``year`` while a standard (live
    or paid) or an instruction subsidises the same premium too (CONTRACT rule 10)."""
    if not state.others:  # the hot path: nobody else subsidises this person
        return []
    rec = state.years.get(year)
    ours = subsidised_by(year, rec, state.paid_out, [])
    if not ours and rec is not None and not rec.frozen and rec.mode != PaymentMode.WITHDRAWN and rec.subsidy_fen > 0:
        ours = [f"缴费标准 v{rec.version} 资助 {yuan(rec.subsidy_fen)}"]
    rule = "" if rec is None or not rec.policy_id else f" (policy {rec.policy_id}: other_channel)"
    out: list[Effect] = []
    for other in (o for o in state.others if o.year == year and ours):
        if state.once(f"DOUBLE_SUBSIDY|{year}|{other.record_id}"):
            out.append(state.review(
                f"{person_key}|double|{other.record_id}", ReviewKind.DOUBLE_SUBSIDY, year, "DOUBLE_SUBSIDY",
                f"id {mask_id(state.id_number)} {year}: {other.funder} ({other.record_id}) subsidises "
                f"{yuan(other.amount_fen)} of the same premium as {'; '.join(ours)}{rule}", now_ms,
                other.amount_fen))
    return out
