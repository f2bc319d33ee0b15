"""The payments stage: tax acknowledgements (payment-status.v1) -> person commands.

An acknowledgement is decoded here and re-keyed by the person (its ID number normalised);
one whose ID number is not valid becomes a review case (UNKNOWN_PAYMENT). The person stage
applies it to the person's state (``streams/domain/person.py`` ``apply_payment``).

It runs in the intake's aiokafka loop (``streams/runtime/intake_loop.py``), not as a Faust
agent: Faust's fetcher can drop records around a rebalance (issue #26), and an acknowledgement
dropped there would be a payment never recorded."""

from __future__ import annotations

from typing import Any

from schemas.exceptions import DecodeError
from streams.domain.ids import mask_id, normalize_id, opaque_key
from streams.domain.messages import PaymentAck, unknown_payment
from streams.runtime import wire
from streams.runtime.context import StageContext
from streams.runtime.unit import UnitOfWork


class PaymentStage:
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx

    def forward(self, msg: Any, unit: UnitOfWork[Any, Any]) -> None:
        """One record of payment-status.v1 (a consumer record) -> what to send, into ``unit``
        (the acknowledgement in the internal form: decoded from Avro here, and only here)."""
        ctx = self.ctx
        try:
            _, value = ctx.codec.decode(msg.value, expect="PaymentStatus")
        except DecodeError as exc:
            unit.send([ctx.dead_letter(msg, exc.reason, str(exc))])
            return
        ack = PaymentAck.from_record(value)
        ctx.metrics.inc("zhucan_acks_in_total", status=ack.status.value)
        id18, problem = normalize_id(ack.id_number)
        if id18 is None:
            detail = f"id {mask_id(ack.id_number)} is not valid: {problem.detail if problem else ''}"
            ctx.publisher.publish(unit, [unknown_payment(ack, ctx.clock(), detail)],
                                  opaque_key(ack.id_number, ctx.secret).encode())
            return
        unit.send([ctx.for_person(id18, wire.pack_payment(ack._replace(id_number=id18)))])
