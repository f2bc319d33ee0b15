"""The worker's stages, each a page: intake, payments, money, control (the intake loop's inputs) and
person (the Faust agent). Each is built on the ``StageContext`` below it
(``streams/runtime/context.py``) and calls nothing above it.

``Inputs`` routes a fetch of the intake loop: tax's acknowledgements to the payments stage, the
counties' claims and other funders' subsidies to the money stage,
the operators' commands and policy previews to the control stage, the departments' records (every other topic
the loop reads) to the intake stage, all into the fetch's one unit of work."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from streams.domain.ids import scrub
from streams.runtime.context import StageContext
from streams.runtime.unit import UnitOfWork
from streams.stages.control import ControlStage
from streams.stages.intake import IntakeStage
from streams.stages.money import MoneyStage
from streams.stages.payments import PaymentStage

log = logging.getLogger("zhucan.worker")


class Inputs:
    def __init__(self, ctx: StageContext, intake: IntakeStage, payments: PaymentStage, control: ControlStage,
                 money: MoneyStage) -> None:
        self.ctx = ctx
        self.intake = intake
        self.routes: dict[str, Callable[[Any, UnitOfWork[Any, Any]], None]] = {
            ctx.topics.payment_status: payments.forward, ctx.topics.control: control.fan_out,
            ctx.topics.policy_candidates: control.fan_out_preview, ctx.topics.claims: money.claim,
            ctx.topics.other_channel: money.other_channel}

    def handle(self, records: Sequence[Any], unit: UnitOfWork[Any, Any]) -> None:
        """A fetch's records, whatever their topics, into ``unit``; nothing raises (a record
        whose handling fails is dead-lettered)."""
        routes = self.routes
        self.intake.intake([msg for msg in records if msg.topic not in routes], unit)
        for msg in records:
            route = routes.get(msg.topic)
            if route is None:
                continue
            try:
                route(msg, unit)
            except Exception as exc:  # a bug must not drop the record: keep it for replay
                log.exception("handling failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
                unit.send([self.ctx.dead_letter(msg, type(exc).__name__, scrub(str(exc)))])
