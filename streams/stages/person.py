"""The person stage: commands of ``zhucan.person-commands`` applied to each person's state.

Records are taken several at a time (batch records of the intake, or single commands). Each
command is decoded to its type (``streams/runtime/wire.py``) and applied by the handler the
one map in ``streams/handlers.py`` names, to the person's state as it stood after the previous
command; a command that fails leaves no trace (it is dead-lettered with its bytes). One unit
of work: the effects of all the records are sent and acknowledged first, and only then is each
changed person's state written once, to the table's store and its changelog, together with
each partition's applied-offset marker (``streams/runtime/applied.py``): a record already
applied is skipped, and a record beyond a gap waits for the missing ones, read from the broker
and applied first."""

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
from streams.runtime.applied import AppliedOffsets, Verdict, marker_key
from streams.runtime.emit import Out
from streams.runtime.faust_compat import as_current
from streams.stages import Context

log = logging.getLogger("zhucan.worker")


class PersonStage:
    def __init__(self, p: Context) -> None:
        self.p = p
        self.offsets = AppliedOffsets(lambda partition: p.store.get(partition, marker_key(partition)),
                                      retry_s=p.settings.tuning.gap_retry_s)
        self.nexts: dict[int, int] = {}  # partition -> next offset to apply, as last saved (the commit watch reads it)
        self.batch_started: float | None = None

    def busy_for(self) -> float:
        """Seconds the batch in hand has been running (0 when none is)."""
        return time.monotonic() - self.batch_started if self.batch_started is not None else 0.0

    async def admit(self, msg: Any) -> list[Any]:
        """The records to apply now, in order, for ``msg``: none if it was applied before; the
        records missing before it, read from the broker, then it, when it shows a gap; none
        when they cannot be read (then the partition is sought back, and asked again later)."""
        p, offsets, partition = self.p, self.offsets, msg.partition
        topic = p.names.person_commands
        if offsets.next_of(partition) is None:
            committed = await p.committed_command_offset(partition)
            offsets.start_at(partition, committed if committed is not None else msg.offset)
            log.info("%s[%d]: no applied-offset marker yet; starting at %d (%s)", topic, partition,
                     offsets.next_of(partition), "the group's commit" if committed is not None
                     else "the first record, the group never committed")
        verdict = offsets.verdict(partition, msg.offset)
        if verdict is Verdict.SKIP:
            p.metrics.inc("zhucan_commands_already_applied_total")
            return []
        if verdict is Verdict.APPLY:
            return [msg]
        rewind = offsets.rewind_due(partition, msg.offset)
        if rewind is None:
            return []  # tried less than retry_s ago: this record comes again
        try:
            missing = await p.read_commands(partition, rewind.to, msg.offset)
        except Exception as exc:  # the broker out of reach: Faust's fetcher is asked instead
            log.warning("%s[%d]: record %d came before %d was applied, and the missing records could not be "
                        "read (%s); seeking back to %d", topic, partition, msg.offset, rewind.to, exc, rewind.to)
            await p.rewind_commands(partition, rewind.to)
            await p.offset_repair("GAP_REWIND", partition, rewind.to, msg.offset)
            return []
        log.warning("%s[%d]: record %d came before %d was applied; read the %d missing record(s) from the broker",
                    topic, partition, msg.offset, rewind.to, len(missing))
        await p.offset_repair("GAP_FILLED", partition, rewind.to, msg.offset)
        gone = sorted(set(range(rewind.to, msg.offset)) - {m.offset for m in missing})
        if gone:  # deleted (retention) before they were applied: nothing can bring them back
            log.error("%s[%d]: records %d-%d no longer exist and were never applied (%d missing)", topic,
                      partition, gone[0], gone[-1], len(gone))
            await p.offset_repair("GAP_ACCEPTED", partition, gone[0], gone[-1] + 1)
        return [*missing, msg]

    async def retry_rewinds(self, held: set[int]) -> None:
        """Seek again where a seek back brought nothing in time (a timer calls this)."""
        p = self.p
        for rewind in self.offsets.overdue(held):
            log.warning("%s[%d]: record %d has not come since the seek back; seeking to it again",
                        p.names.person_commands, rewind.partition, rewind.to)
            await p.rewind_commands(rewind.partition, rewind.to)
            p.metrics.inc("zhucan_offset_rewinds_repeated_total", partition=str(rewind.partition))

    async def on_records(self, events: Sequence[faust.EventT]) -> None:
        outs: list[Out] = []
        pending: dict[int, dict[bytes, bytes]] = {}  # partition -> person key -> state so far
        self.offsets.begin()
        self.p.control.forget()
        self.batch_started = time.monotonic()
        try:
            await self._on_records(events, outs, pending)
        finally:
            self.batch_started = None

    async def _on_records(self, events: Sequence[faust.EventT], outs: list[Out],
                          pending: dict[int, dict[bytes, bytes]]) -> None:
        p = self.p
        for event in events:
            with as_current(event):  # the table's store reads the partition from it
                for msg in await self.admit(event.message):  # the same partition as the event
                    fees_before = p.fees_decided
                    await self.handle(msg, event.key if msg is event.message else msg.key, outs, pending, events)
                    fees = p.fees_decided - fees_before
                    if fees and msg.timestamp:  # the department's record time to the decision, per fee standard
                        p.metrics.observe_latency(max(0.0, time.time() - msg.timestamp), fees)
        await self.save(outs, pending, events)
        p.count_fees()

    async def handle(self, msg: Any, key: bytes | None, outs: list[Out], pending: dict[int, dict[bytes, bytes]],
                     events: Sequence[Any]) -> None:
        """Apply one record of zhucan.person-commands (a batch record, or a single command)."""
        p = self.p
        try:
            commands = list(wire.unpack(key, msg.value or b""))  # a tombstone: dead-lettered below
        except wire.BatchFormatError as exc:
            outs.append(p.dead_letter(msg, "BATCH_FORMAT", str(exc)))
            self.offsets.applied(msg.partition, msg.offset)
            return
        states = pending.setdefault(msg.partition, {})
        for ckey, value in commands:
            try:
                command = wire.decode_command(value, p.codec, p.departments)
                if isinstance(command, Control):  # the scan must see every earlier command
                    await self.save(outs, pending, events)
                    await p.run_control(command, msg.partition)
                    continue
                outs += p.apply(ckey, command, msg.partition, states)
            except DecodeError as exc:
                outs.append(p.dead_letter(msg, exc.reason, str(exc), inner=(ckey, value)))
            except Exception as exc:  # a bug must not drop the command: keep it for replay
                log.exception("person command failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
                outs.append(p.dead_letter(msg, type(exc).__name__, scrub(str(exc)), inner=(ckey, value)))
        self.offsets.applied(msg.partition, msg.offset)

    async def save(self, outs: list[Out], pending: dict[int, dict[bytes, bytes]], events: Sequence[Any]) -> None:
        """Effects first, acknowledged, and only then the states: a state that says "done" never
        exists without its effects on the broker (if they fail, a replay redoes the work, with
        the same message ids)."""
        sent, outs[:] = outs[:], []
        await self.p.emit(sent, wait=True)
        by_partition = {e.message.partition: e for e in events}
        for partition, marker in self.offsets.markers().items():  # last: written after the states it covers
            pending.setdefault(partition, {})[marker_key(partition)] = marker
            self.nexts[partition] = int(marker)
        for partition, states in pending.items():
            with as_current(by_partition[partition]):
                await self.p.store.save(partition, states, self.p.emit)
            states.clear()
