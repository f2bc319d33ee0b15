"""The control stage: an operator's command (control.v1) is fanned out to every partition of
``zhucan.person-commands`` (in the intake's aiokafka loop: a command dropped by Faust's
fetcher around a rebalance, issue #26, would never run). Each partition then runs it over its
own people, in order with the commands before it: the order's handler in ``streams/handlers.py``
(the partition scan), once per command id. A SETTLE is run here: the settlement lines from the
ledger's totals, on settlement.v1."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from schemas.exceptions import DecodeError
from streams.domain.commands import ORDERS
from streams.domain.enums import ControlKind
from streams.domain.messages import Control
from streams.domain.reports import settlement_key, settlement_lines
from streams.kafka.snapshots import read_totals
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
        # an operator's command this stage runs itself (from the ledger's totals), by kind
        self.here: dict[str, Callable[[Control, UnitOfWork[Any, Any]], None]] = {ControlKind.SETTLE: self.settle}

    def settle(self, cmd: Control, unit: UnitOfWork[Any, Any]) -> None:
        """SETTLE: the settlement lines (资助汇总表) of ``region_code`` and ``insurance_year`` (empty,
        0: all) from the ledger's totals as they stand (``streams/kafka/snapshots.py``), on
        settlement.v1 as of the command's time; its progress record says how many lines."""
        ctx = self.ctx
        live = read_totals(ctx.settings.kafka_bootstrap_servers, ctx.topics.ledger_totals, ctx.settings.partitions)
        lines = settlement_lines(live.totals, cmd.issued_at, ctx.book, cmd.region_code or None,
                                 cmd.insurance_year or None)
        topic = ctx.topics.settlement
        unit.send([Out(topic, settlement_key(line), ctx.codec.encode("SettlementLine", line, topic=topic))
                   for line in lines])
        unit.send([Out(ctx.topics.control_progress, cmd.command_id.encode(), json.dumps({
            "command_id": cmd.command_id, "command": cmd.command, "partition": 0, "done": True, "lines": len(lines),
            "warnings": live.warnings()}).encode())])
        log.info("control %s SETTLE region %s year %s: %d settlement lines published%s", cmd.command_id,
                 cmd.region_code or "(all)", cmd.insurance_year or "(all)", len(lines),
                 "".join(f"; {w}" for w in live.warnings()))

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
        here = self.here.get(cmd.command)
        if here is not None:  # run by this stage, not by every partition
            here(cmd, unit)
            return
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
