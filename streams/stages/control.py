"""The control stage: an operator's command (control.v1) is fanned out to every partition of
``zhucan.person-commands`` (``fan_out``, in the intake's aiokafka loop: a command dropped by
Faust's fetcher around a rebalance, issue #26, would never run); each partition then scans its
own people in order with the commands before it (``run``, in the person stage), once per
command id."""

from __future__ import annotations

import json
import logging
from typing import Any

from schemas.exceptions import DecodeError
from streams.domain.enums import ControlKind
from streams.domain.messages import Control
from streams.domain.person import PersonState
from streams.runtime.emit import Out
from streams.stages import Context

log = logging.getLogger("zhucan.worker")
CONTROL_KEY = "~control~"
OPENED_KEY = "~opened~"
RUNNABLE = (ControlKind.OPEN_YEAR, ControlKind.CHECK_COVERAGE)


def opened_key(partition: int) -> bytes:
    return f"{OPENED_KEY}{partition}".encode()


class ControlStage:
    def __init__(self, p: Context) -> None:
        self.p = p
        self._opened: dict[int, dict[str, int]] = {}  # partition -> region -> last year opened, this batch

    def opened(self, partition: int) -> dict[str, int]:
        """The years opened in this partition, per region (CONTRACT rule 13: an identity that
        arrives after OPEN_YEAR counts up to that year as if it had come before). Kept in the
        person table under ``~opened~<partition>``, written with the OPEN_YEAR's done marker;
        read once per batch (``forget``)."""
        if partition not in self._opened:
            stored = self.p.store.get(partition, opened_key(partition))
            self._opened[partition] = json.loads(stored) if stored else {}
        return self._opened[partition]

    def forget(self) -> None:
        """At the start of a batch: the partitions held may have changed hands since the last."""
        self._opened.clear()

    def fan_out(self, msg: Any) -> list[Out]:
        """One record of control.v1 (a consumer record) -> a copy for every partition of the person topic."""
        p = self.p
        try:
            _, value = p.codec.decode(msg.value, expect="ControlCommand")
        except DecodeError as exc:
            return [p.dead_letter(msg, exc.reason, str(exc))]
        cmd = Control.from_record(value)
        if cmd.command not in RUNNABLE:
            log.warning("control %s %s is not implemented yet; ignored", cmd.command_id, cmd.command)
            return []
        data = p.codec.encode("ControlCommand", cmd.to_record())
        n = p.settings.partitions
        log.info("control %s %s region %s year %s fanned out to %d partitions", cmd.command_id,
                 cmd.command, cmd.region_code, cmd.insurance_year, n)
        return [Out(p.names.person_commands, f"{CONTROL_KEY}{partition}".encode(), data, partition=partition)
                for partition in range(n)]

    async def run(self, cmd: Control, partition: int) -> None:
        """Run ``cmd`` over the people of ``partition`` (effects acknowledged, then states, per 1,000)."""
        p = self.p
        marker = f"{CONTROL_KEY}{cmd.command_id}~{partition}".encode()
        if p.store.get(partition, marker) is not None:
            log.info("control %s partition %d: already done (redelivery)", cmd.command_id, partition)
            return
        kind, region, year = cmd.command, cmd.region_code, cmd.insurance_year
        as_of = cmd.issued_at.date()
        scanned = touched = 0
        outs: list[Out] = []
        changed: dict[bytes, bytes] = {}

        async def flush() -> None:
            sent, outs[:] = outs[:], []
            await p.emit(sent, wait=True)
            await p.store.save(partition, changed, p.emit)
            changed.clear()

        for key, stored in p.store.people():
            if p.partition_of(key) != partition:
                continue
            state = PersonState.loads(stored)
            pkey = key.decode()
            if kind == ControlKind.OPEN_YEAR:
                effects = state.open_year(year, region, p.book, pkey, p.now_ms(), cmd.command_id,
                                          opened=self.opened(partition))
            else:
                effects = state.check_coverage(year, region, as_of, p.settings.coverage_grace_days)
            if effects:
                touched += 1
                outs += p.publish(effects, pkey)
                if kind == ControlKind.OPEN_YEAR:
                    changed[key] = state.dumps()
            scanned += 1
            if scanned % 1000 == 0:
                await flush()
                log.info("control %s %s partition %d: %d people scanned, %d with output", cmd.command_id,
                         kind, partition, scanned, touched)
        await flush()
        done = {marker: b"done"}
        if kind == ControlKind.OPEN_YEAR:
            opened = dict(self.opened(partition))
            opened[region] = max(year, opened.get(region, year))
            done[opened_key(partition)] = json.dumps(opened, sort_keys=True).encode()
            self._opened[partition] = opened
        p.store.put_many(partition, done)
        await p.emit([
            *(Out(p.names.person_changelog, k, v, partition=partition) for k, v in done.items()),
            Out(p.names.control_progress, cmd.command_id.encode(), json.dumps({
                "command_id": cmd.command_id, "command": kind, "partition": partition, "scanned": scanned,
                "with_output": touched, "done": True}).encode()),
        ])
        p.count_fees()
        log.info("control %s %s region %s year %d partition %d done: %d people scanned, %d with output",
                 cmd.command_id, kind, region, year, partition, scanned, touched)
