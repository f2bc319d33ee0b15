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
from streams.domain.ids import mask_id, normalize_id, opaque_key, person_key
from streams.domain.messages import PaymentAck
from streams.domain.person import unknown_payment
from streams.runtime.emit import Out
from streams.stages import Context


class PaymentStage:
    def __init__(self, p: Context) -> None:
        self.p = p

    def forward(self, msg: Any) -> list[Out]:
        """One record of payment-status.v1 (a consumer record) -> what to send."""
        p = self.p
        try:
            _, value = p.codec.decode(msg.value, expect="PaymentStatus")
        except DecodeError as exc:
            return [p.dead_letter(msg, exc.reason, str(exc))]
        ack = PaymentAck.from_record(value)
        p.metrics.inc("zhucan_acks_in_total", status=ack.status.value)
        id18, problem = normalize_id(ack.id_number)
        if id18 is None:
            detail = f"id {mask_id(ack.id_number)} is not valid: {problem.detail if problem else ''}"
            return p.publish([unknown_payment(ack, p.now_ms(), detail)], opaque_key(ack.id_number, p.secret))
        return [Out(p.names.person_commands, person_key(id18, p.secret).encode(),
                    p.codec.encode("PaymentStatus", ack._replace(id_number=id18).to_record()))]
