"""The control stage: an operator's command (control.v1) is fanned out to every partition of
``zhucan.person-commands`` (in the intake's aiokafka loop: a command dropped by Faust's
fetcher around a rebalance, issue #26, would never run). Each partition then runs it over its
own people, in order with the commands before it: the order's handler in ``streams/handlers.py``
(the partition scan), once per command id."""

from __future__ import annotations

import logging
from typing import Any

from schemas.exceptions import DecodeError
from streams.domain.commands import ORDERS
from streams.domain.messages import Control
from streams.runtime import wire
from streams.runtime.context import StageContext
from streams.runtime.emit import Out
from streams.runtime.store import CONTROL_KEY
from streams.runtime.unit import UnitOfWork

log = logging.getLogger("zhucan.worker")
PREVIEW_KEY = "~preview~"


class ControlStage:
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx

    def fan_out(self, msg: Any, unit: UnitOfWork[Any, Any]) -> None:
        """One record of control.v1 (a consumer record) -> a copy for every partition of the
        person topic, into ``unit``; a kind no order runs is logged and passed over."""
        ctx = self.ctx
        try:
            _, value = ctx.codec.decode(msg.value, expect="ControlCommand")
        except DecodeError as exc:
            unit.send([ctx.dead_letter(msg, exc.reason, str(exc))])
            return
        cmd = Control.from_record(value)
        if cmd.command not in ORDERS:
            log.warning("control %s %s is not implemented yet; ignored", cmd.command_id, cmd.command)
            return
        data = ctx.codec.encode("ControlCommand", cmd.to_record())
        n = ctx.settings.partitions
        log.info("control %s %s region %s year %s fanned out to %d partitions", cmd.command_id,
                 cmd.command, cmd.region_code, cmd.insurance_year, n)
        unit.send(self._to_every_partition(CONTROL_KEY, data))

    def _to_every_partition(self, key_prefix: str, data: bytes) -> list[Out]:
        """A copy of ``data`` for each partition of the person topic, keyed ``<prefix><partition>``."""
        return [Out(self.ctx.topics.person_commands, f"{key_prefix}{partition}".encode(), data, partition=partition)
                for partition in range(self.ctx.settings.partitions)]

    def fan_out_preview(self, msg: Any, unit: UnitOfWork[Any, Any]) -> None:
        """One request of zhucan.policy-candidates (``zhucan policy diff``) -> a copy for every
        partition of the person topic, in the internal form (each partition previews its people)."""
        ctx = self.ctx
        try:
            preview = wire.unpack_preview(msg.value or b"")
        except DecodeError as exc:
            unit.send([ctx.dead_letter(msg, exc.reason, str(exc))])
            return
        data = wire.pack_preview(preview)
        n = ctx.settings.partitions
        log.info("policy preview %s of %d file(s) for %s fanned out to %d partitions", preview.preview_id,
                 len(preview.documents), ", ".join(f"{r} {y}" for r, y in preview.targets), n)
        unit.send(self._to_every_partition(PREVIEW_KEY, data))
