"""Tax's payment-status acknowledgements, applied to a person's state.

An acknowledgement is applied once per ack id (the same id with other content is a
DUPLICATE_ACK_ID case); a freezing status (PAID, ZERO_DECLARED, ALREADY_PAID) freezes the
year at the version it acts on, with its class and subsidy (``payments.settle``: what the
payment means for the money, and what it leaves owed, paid by instruction through
``person_money.owe``); a second payment of a paid person-year is a DUPLICATE_PAYMENT case
(人费对应, 豫医保办〔2024〕65号 五). The person state's ``apply_payment`` calls this.
"""

from __future__ import annotations

import hashlib

from streams.domain.enums import FREEZING_STATES, InstructionKind, PaymentState, ReviewKind
from streams.domain.ids import mask_id
from streams.domain.messages import Effect, PaymentAck, unknown_payment
from streams.domain.payments import OWED_CODES, Figures, in_paid_in_full_group, settle
from streams.domain.person_money import double_subsidy, owe
from streams.domain.person_record import PersonRecord
from streams.domain.policy.decide import yuan
from streams.domain.policy.spec import Policy, PolicyBook
from streams.domain.timeline import fold
from streams.domain.years import lookup

# What money a payment's finding leaves owed is paid as (where the region names a channel).
OWED_AS = {"POST_HOC_SUBSIDY": InstructionKind.POST_HOC_SUBSIDY, "TAX_REFUND": InstructionKind.LATE_DATA_REFUND,
           "OWED_TO_PERSON": InstructionKind.LATE_DATA_REFUND}


def apply_payment(state: PersonRecord, ack: PaymentAck, book: PolicyBook, now_ms: int,
                  person_key: str = "") -> list[Effect]:
    """Apply a tax acknowledgement (``person_key``: the cases' trigger, as elsewhere)."""
    person_key = person_key or state.id_number
    ack_id, year, status, version, amount = ack.ack_id, ack.insurance_year, ack.status, ack.fee_version, ack.amount_fen
    level = ack.contribution_level
    digest = hashlib.sha256(f"{year}|{version}|{status}|{amount}|{level}".encode()).hexdigest()[:8]
    earlier = next((s for s in state.seen if s.startswith(f"ack:{ack_id}:")), None)
    if earlier is not None:
        if earlier.endswith(":" + digest):
            return []  # a redelivery
        return [state.review(ack_id + digest, ReviewKind.OTHER, year, "DUPLICATE_ACK_ID",
                             f"ack id {ack_id} was used before with different content ({status}, v{version}, "
                             f"{yuan(amount)}); ignored", now_ms)]
    state.remember(f"ack:{ack_id}:{digest}")
    rec = state.years.get(year)
    if rec is None:
        return [unknown_payment(ack, now_ms, f"no fee standard was issued for id {mask_id(state.id_number)} year {year}")]
    effects: list[Effect] = []

    def review(kind: ReviewKind, detail: str, code: str = "", amount_fen: int | None = None) -> None:
        effects.append(state.review(ack_id, kind, year, code, f"ack {ack_id} ({status}): {detail}", now_ms,
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
        in_group = in_paid_in_full_group(fold(state.facts), acted_on, policy)
        settled, findings = settle(acted_on, status, amount, level, policy, in_group)
        rec.payment = status.value
        rec.paid_version = version
        rec.paid_fen = amount
        rec.paid = settled.to_doc()
        for finding in findings:
            review(finding.kind, finding.detail, finding.code, finding.amount_fen)
            if finding.code in OWED_CODES and finding.amount_fen:
                rec.owed_fen, rec.owed_kind = finding.amount_fen, finding.code
                effects += owe(state, OWED_AS[finding.code], ack_id, year, acted_on, finding.amount_fen, policy,
                               f"ack {ack_id}: {finding.detail}", person_key, now_ms)
        effects += double_subsidy(state, year, person_key, now_ms)
    return effects


def _policy_of(book: PolicyBook, fig: Figures, year: int) -> Policy | None:
    return lookup(book, fig.region_code, year) if fig.region_code else None
