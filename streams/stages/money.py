"""The money stage: the counties' claims (subsidy-claim.v1) and other funders' subsidies
(subsidy.other-channel.v1) -> person commands (CONTRACT additions 2026-12).

Each record is decoded here and re-keyed by the person (its ID number normalised), like tax's
acknowledgements at the payments stage; the person stage decides it on the person's state
(``streams/domain/person.py`` ``apply_claim``, ``apply_other_channel``). A record that cannot be
decoded is dead-lettered (kept, replayable); a claim whose ID number is not valid is refused at
once (a ClaimDecision with code INVALID_ID: it never silently disappears), and such an
other-channel record becomes a review case."""

from __future__ import annotations

from typing import Any

from schemas.exceptions import DecodeError
from streams.domain.enums import ReviewKind
from streams.domain.ids import mask_id, normalize_id, opaque_key
from streams.domain.messages import Claim, OtherChannel, ReviewRaised, case_id
from streams.domain.money import refused_unknown
from streams.runtime import wire
from streams.runtime.context import StageContext
from streams.runtime.unit import UnitOfWork


class MoneyStage:
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx

    def _decoded(self, msg: Any, record: str, unit: UnitOfWork[Any, Any]) -> dict[str, Any] | None:
        try:
            return self.ctx.codec.decode(msg.value, expect=record)[1]
        except DecodeError as exc:
            unit.send([self.ctx.dead_letter(msg, exc.reason, str(exc))])
            return None

    def claim(self, msg: Any, unit: UnitOfWork[Any, Any]) -> None:
        """One record of subsidy-claim.v1 -> a person command (or its refusal, into ``unit``)."""
        ctx = self.ctx
        value = self._decoded(msg, "SubsidyClaim", unit)
        if value is None:
            return
        claim = Claim.from_record(value)
        ctx.metrics.inc("zhucan_claims_in_total", kind=claim.kind.value)
        id18, problem = normalize_id(claim.id_number)
        if id18 is None:
            detail = f"id {mask_id(claim.id_number)} is not valid: {problem.detail if problem else ''}"
            ctx.publisher.publish(unit, [refused_unknown(claim, ctx.clock(), "INVALID_ID", detail)],
                                  opaque_key(claim.id_number, ctx.secret).encode())
            return
        unit.send([ctx.for_person(id18, wire.pack_claim(claim._replace(id_number=id18)))])

    def other_channel(self, msg: Any, unit: UnitOfWork[Any, Any]) -> None:
        """One record of subsidy.other-channel.v1 -> a person command (or a review case)."""
        ctx = self.ctx
        value = self._decoded(msg, "OtherChannelSubsidy", unit)
        if value is None:
            return
        sub = OtherChannel.from_record(value)
        id18, problem = normalize_id(sub.id_number)
        if id18 is None:
            case = ReviewRaised(case_id(f"other|{sub.record_id}", ReviewKind.OTHER, sub.insurance_year),
                                ReviewKind.OTHER.value, sub.id_number, sub.insurance_year,
                                f"other channel {sub.funder} ({sub.record_id}): id {mask_id(sub.id_number)} is not "
                                f"valid: {problem.detail if problem else ''}", ctx.clock(), "INVALID_ID", sub.amount_fen)
            ctx.publisher.publish(unit, [case], opaque_key(sub.id_number, ctx.secret).encode())
            return
        unit.send([ctx.for_person(id18, wire.pack_other(sub._replace(id_number=id18)))])
