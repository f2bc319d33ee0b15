"""The person stage: commands of ``zhucan.person-commands`` applied to each person's state.

Records are taken several at a time (batch records of the intake, or single commands). Each
command is decoded to its type (``streams/runtime/wire.py``) and applied by the handler the
one map in ``streams/handlers.py`` names, to the person's state as it stood after the previous
command; a command that fails leaves no trace (it is dead-lettered with its bytes). One unit
of work: the effects of all the records are sent and acknowledged first, and only then is each
changed person's state written once, to the table's store and its changelog."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import faust

from schemas.exceptions import DecodeError
from streams.domain.ids import scrub
from streams.domain.messages import Control
from streams.runtime import wire
from streams.runtime.emit import Out
from streams.runtime.faust_compat import as_current
from streams.stages import Context

log = logging.getLogger("zhucan.worker")


class PersonStage:
    def __init__(self, p: Context) -> None:
        self.p = p

    async def on_records(self, events: Sequence[faust.EventT]) -> None:
        p = self.p
        outs: list[Out] = []
        pending: dict[int, dict[bytes, bytes]] = {}  # partition -> person key -> state so far
        for event in events:
            msg = event.message
            fees_before = p.fees_decided
            with as_current(event):  # the table's RocksDB store reads the partition from it
                try:
                    commands = list(wire.unpack(event.key, msg.value or b""))  # a tombstone: dead-lettered below
                except wire.BatchFormatError as exc:
                    outs.append(p.dead_letter(msg, "BATCH_FORMAT", str(exc)))
                    continue
                states = pending.setdefault(msg.partition, {})
                for key, value in commands:
                    try:
                        command = wire.decode_command(value, p.codec, p.departments)
                        if isinstance(command, Control):  # the scan must see every earlier command
                            await self.save(outs, pending, events)
                            await p.run_control(command, msg.partition)
                            continue
                        outs += p.apply(key, command, msg.partition, states)
                    except DecodeError as exc:
                        outs.append(p.dead_letter(msg, exc.reason, str(exc), inner=(key, value)))
                    except Exception as exc:  # a bug must not drop the command: keep it for replay
                        log.exception("person command failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
                        outs.append(p.dead_letter(msg, type(exc).__name__, scrub(str(exc)), inner=(key, value)))
            fees = p.fees_decided - fees_before
            if fees and msg.timestamp:  # the department's record time to the decision, per fee standard
                p.metrics.observe_latency(max(0.0, time.time() - msg.timestamp), fees)
        await self.save(outs, pending, events)
        p.count_fees()

    async def save(self, outs: list[Out], pending: dict[int, dict[bytes, bytes]], events: Sequence[Any]) -> None:
        """Effects first, acknowledged, and only then the states: a state that says "done" never
        exists without its effects on the broker (if they fail, a replay redoes the work, with
        the same message ids)."""
        sent, outs[:] = outs[:], []
        await self.p.emit(sent, wait=True)
        by_partition = {e.message.partition: e for e in events}
        for partition, states in pending.items():
            with as_current(by_partition[partition]):
                await self.p.store.save(partition, states, self.p.emit)
            states.clear()
