"""The payments stage: tax acknowledgements (payment-status.v1) -> person commands.

An acknowledgement is decoded here and re-keyed by the person (its ID number normalised);
one whose ID number is not valid becomes a review case (UNKNOWN_PAYMENT). The person stage
applies it to the person's state (``streams/domain/person.py`` ``apply_payment``)."""

from __future__ import annotations

import faust

from schemas.exceptions import DecodeError
from streams.domain.ids import mask_id, normalize_id, opaque_key, person_key
from streams.domain.messages import PaymentAck
from streams.domain.person import unknown_payment
from streams.runtime.emit import Out
from streams.stages import Context


class PaymentStage:
    def __init__(self, p: Context) -> None:
        self.p = p

    async def on_payment(self, event: faust.EventT) -> None:
        p, msg = self.p, event.message
        try:
            _, value = p.codec.decode(msg.value, expect="PaymentStatus")
        except DecodeError as exc:
            await p.emit([p.dead_letter(msg, exc.reason, str(exc))])
            return
        ack = PaymentAck.from_record(value)
        p.metrics.inc("zhucan_acks_in_total", status=ack.status.value)
        id18, problem = normalize_id(ack.id_number)
        if id18 is None:
            detail = f"id {mask_id(ack.id_number)} is not valid: {problem.detail if problem else ''}"
            await p.emit(p.publish([unknown_payment(ack, p.now_ms(), detail)], opaque_key(ack.id_number, p.secret)))
            return
        await p.emit([Out(p.names.person_commands, person_key(id18, p.secret).encode(),
                          p.codec.encode("PaymentStatus", ack._replace(id_number=id18).to_record()))])
