"""The person stage: commands of ``zhucan.person-commands`` applied to each person's state.

Records are taken several at a time (batch records of the intake, or single commands). Each
command is decoded to its order (``streams/runtime/wire.py``) and run by the handler the one
map in ``streams/handlers.py`` names, on the person's state as it stood after the previous
command; a command that fails leaves no trace (it is dead-lettered with its bytes). One unit
of work (``streams/runtime/unit.py``): the effects of all the records are sent and
acknowledged first, and only then is each changed person's state written once, to the
table's store and its changelog, together with each partition's applied-offset marker
(``streams/runtime/applied.py``): a record already applied is skipped, and a record beyond a
gap waits for the missing ones, read from the broker and applied first."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import faust

from schemas.exceptions import DecodeError
from streams.domain.commands import BuildLedger
from streams.domain.ids import scrub
from streams.handlers import HANDLERS, Work, remembered_identity
from streams.runtime import wire
from streams.runtime.applied import (
    AppliedOffsets,
    CommitWatch,
    ProgressWatch,
    Stuck,
    Verdict,
    decode_next,
    encode_next,
    marker_key,
)
from streams.runtime.context import StageContext
from streams.runtime.emit import Out
from streams.runtime.faust_compat import as_current
from streams.runtime.ledger import BUILD_COMMAND, built_key
from streams.runtime.unit import UnitOfWork

log = logging.getLogger("zhucan.worker")
Changes = dict[tuple[int, bytes], bytes]


class PersonStage:
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.offsets = AppliedOffsets(lambda partition: ctx.store.get(partition, marker_key(partition)),
                                      retry_s=ctx.settings.tuning.gap_retry_s)
        self.nexts: dict[int, int] = {}  # partition -> next offset to apply, as last saved (the commit watch reads it)
        self.batch_started: float | None = None
        self.commit_watch = CommitWatch(stall_s=ctx.settings.tuning.commit_stall_s)
        self.progress_watch = ProgressWatch(stuck_s=ctx.settings.tuning.progress_stuck_s)
        self.ledger_seen: set[int] = set()  # partitions whose ledger marker was looked at by this process
        self.build_sent: dict[int, float] = {}  # partition -> when its ledger build was asked (monotonic)
        # partition -> the next offset its last published totals count (absent: not published since held)
        self.published: dict[int, int | None] = {}

    def busy_for(self) -> float:
        """Seconds the batch in hand has been running (0 when none is)."""
        return time.monotonic() - self.batch_started if self.batch_started is not None else 0.0

    async def note(self, out: Out) -> None:
        """Publish an offset guard's note, acknowledged by the broker (for people: the repair
        itself is done either way; a worker about to exit must not lose it)."""
        try:
            await self.ctx.send([out], wait=True)
        except Exception as exc:
            log.warning("could not publish the offset repair note: %s", exc)

    async def admit(self, msg: Any) -> list[Any]:
        """The records to apply now, in order, for ``msg``: none if it was applied before; the
        records missing before it, read from the broker, then it, when it shows a gap; none
        when they cannot be read (then the partition is sought back, and asked again later)."""
        ctx, offsets, partition = self.ctx, self.offsets, msg.partition
        log_ = ctx.commands
        topic = log_.topic
        if offsets.next_of(partition) is None:
            committed = await log_.committed(partition)
            # never committed: from the log start, not from the first record handed over (a record
            # before it may have been handed to a worker that lost the partition, or dropped by
            # Faust's seek race): what lies between is read as a gap and applied first
            start = committed if committed is not None else await log_.log_start(partition)
            # written before any record is applied: a take acknowledged without its work (an
            # agent's crash) is then found by the commit watch, on this worker or the next
            await ctx.store.save(partition, {marker_key(partition): encode_next(start)}, ctx.send)
            offsets.start_at(partition, start)
            log.info("%s[%d]: no applied-offset marker yet; starting at %d (%s)", topic, partition, start,
                     "the group's commit" if committed is not None else "the log start, the group never committed")
        verdict = offsets.verdict(partition, msg.offset)
        if verdict is Verdict.SKIP:
            ctx.metrics.inc("zhucan_commands_already_applied_total")
            return []
        if verdict is Verdict.APPLY:
            return [msg]
        rewind = offsets.rewind_due(partition, msg.offset)
        if rewind is None:
            return []  # tried less than retry_s ago: this record comes again
        try:
            missing = await log_.read(partition, rewind.to, msg.offset)
        except Exception as exc:  # the broker out of reach: Faust's fetcher is asked instead
            log.warning("%s[%d]: record %d came before %d was applied, and the missing records could not be "
                        "read (%s); seeking back to %d", topic, partition, msg.offset, rewind.to, exc, rewind.to)
            await log_.rewind(partition, rewind.to)
            await self.note(log_.repair("GAP_REWIND", partition, rewind.to, msg.offset))
            return []
        log.warning("%s[%d]: record %d came before %d was applied; read the %d missing record(s) from the broker",
                    topic, partition, msg.offset, rewind.to, len(missing))
        await self.note(log_.repair("GAP_FILLED", partition, rewind.to, msg.offset))
        gone = sorted(set(range(rewind.to, msg.offset)) - {m.offset for m in missing})
        if gone:  # deleted (retention) before they were applied: nothing can bring them back
            log.error("%s[%d]: records %d-%d no longer exist and were never applied (%d missing)", topic,
                      partition, gone[0], gone[-1], len(gone))
            await self.note(log_.repair("GAP_ACCEPTED", partition, gone[0], gone[-1] + 1))
        return [*missing, msg]

    async def retry_rewinds(self, held: set[int]) -> None:
        """Seek again where a seek back brought nothing in time (a timer calls this)."""
        for rewind in self.offsets.overdue(held):
            log.warning("%s[%d]: record %d has not come since the seek back; seeking to it again",
                        self.ctx.commands.topic, rewind.partition, rewind.to)
            await self.ctx.commands.rewind(rewind.partition, rewind.to)
            self.ctx.metrics.inc("zhucan_offset_rewinds_repeated_total", partition=str(rewind.partition))

    async def watch_commits(self, committed: dict[tuple[str, int], int], held_now: set[int]) -> None:
        """Heal the partitions of the person topic this worker holds (``held_now``) whose commits
        stopped (``CommitWatch``), judged by the applied marker."""
        if self.busy_for() > 1.0:  # a long batch (a control scan) commits when it ends
            return
        topic = self.ctx.commands.topic
        for partition in sorted(held_now):  # a commit past the applied marker: records acked, never applied
            at, applied = committed.get((topic, partition)), self.stored_next(partition)
            if at is not None and applied is not None and at > applied:
                log.error("%s[%d]: the group committed %d but the records from %d on were never applied; "
                          "seeking back to %d", topic, partition, at, applied, applied)
                await self.ctx.commands.rewind(partition, applied)
                await self.note(self.ctx.commands.repair("COMMIT_AHEAD", partition, applied, at))
        held: dict[tuple[str, int], int] = {}
        for partition in held_now:
            progress = self.nexts.get(partition)
            if (topic, partition) in committed and progress is not None:
                held[(topic, partition)] = progress
        for (topic, partition), at, progress in self.commit_watch.observe(
                {tp: committed[tp] for tp in held}, held):
            log.warning("%s[%d]: commits stuck at %d for %.0f s while records up to %d were handled; "
                        "seeking back to %d", topic, partition, at, self.commit_watch.stall_s, progress - 1, at)
            await self.ctx.commands.rewind(partition, at)
            await self.note(self.ctx.commands.repair("COMMIT_STALL", partition, at, progress))

    async def watch_progress(self, offsets: dict[int, tuple[int, int]]) -> bool:
        """Seek back the held partitions whose records wait while nothing moves (``ProgressWatch``;
        ``offsets``: partition -> (committed, end)); True when one is stuck even after that (the
        worker must restart: the caller exits)."""
        if self.busy_for() > 1.0:
            self.progress_watch.idle()
            return False
        give_up = False
        for partition, remedy, at in self.progress_watch.observe(offsets):
            end = offsets[partition][1]
            kind = self.progress_watch.say(remedy, self.ctx.commands.topic, partition, at, end)
            if remedy is Stuck.SEEK:
                await self.ctx.commands.rewind(partition, at)
            give_up = give_up or remedy is Stuck.EXIT
            await self.note(self.ctx.commands.repair(kind, partition, at, end))
        return give_up

    async def keep_ledger(self, held: set[int]) -> None:
        """The ledger's upkeep for the partitions this worker holds (a timer calls it): a partition
        never built gets its build command (``BuildLedger``, in order with its commands; the first
        start of the ledger on an existing person table); the totals that changed, and those of a
        partition newly held, are published to ``zhucan.ledger-totals``."""
        ledger = self.ctx.ledger
        if not ledger.enabled:
            return
        now = time.monotonic()
        builds = [p for p in sorted(held) if now - self.build_sent.get(p, -1e9) > 60.0
                  and ledger.needs_build(p, self.ctx.partition_of)]
        if builds:
            await self.ctx.send([Out(self.ctx.topics.person_commands, built_key(p), wire.pack_build(
                BuildLedger(BUILD_COMMAND)), partition=p) for p in builds], wait=True)
            self.build_sent.update({p: now for p in builds})
            log.info("ledger: build asked for partition(s) %s (no ledger yet)", ",".join(map(str, builds)))
        ledger.dirty &= held
        # the totals that changed, a partition newly held, and one whose commands moved on (a
        # report waits until the snapshots count every command written: their next_offset, the
        # applied-offset marker stored with the totals, whoever wrote them)
        applied = {p: self.stored_next(p) for p in held}
        moved = {p for p in held if p not in self.published or applied[p] != self.published[p]}
        due = sorted(ledger.dirty | moved)
        if not due:
            return
        await self.ctx.send([ledger.snapshot(p, applied[p]) for p in due], wait=True)
        ledger.dirty -= set(due)
        self.published = applied

    def stored_next(self, partition: int) -> int | None:
        """The next offset to apply of a partition, as stored (with the states and totals it covers)."""
        return decode_next(self.ctx.store.get(partition, marker_key(partition)))

    async def take(self, events: Sequence[faust.EventT]) -> None:
        """A take of the person agent, done again until it holds. Faust acknowledges a take's
        records when the agent's body ends, whether it returned or raised: a unit whose send
        failed (a leader moving in a rolling restart of the brokers) would be acknowledged
        without its effects or its states, and, when no later record of that partition shows the
        gap, never applied (a test run once had 166 people without a standard that way). Done
        again, the records applied before the failure are skipped by the markers and the others
        give the same effects with the same ids."""
        attempt = 0
        while True:
            try:
                await self.on_records(events)
                return
            except Exception as exc:
                attempt += 1
                self.ctx.metrics.inc("zhucan_person_take_retries_total")
                log.warning("the person stage could not finish a take of %d record(s) (attempt %d: %s: %s); "
                            "nothing of it is acknowledged, done again in %.0f s", len(events), attempt,
                            type(exc).__name__, scrub(str(exc)), self.ctx.settings.tuning.retry_s)
                await asyncio.sleep(self.ctx.settings.tuning.retry_s)

    async def on_records(self, events: Sequence[faust.EventT]) -> None:
        ctx = self.ctx
        by_partition = {e.message.partition: e for e in events}

        async def write(changes: Changes) -> None:
            per: dict[int, dict[bytes, bytes]] = {}
            for (partition, key), value in changes.items():
                per.setdefault(partition, {})[key] = value
            for partition, states in per.items():
                with as_current(by_partition[partition]):
                    await ctx.store.save(partition, states, ctx.send)
                ctx.ledger.written(partition, states)

        unit: UnitOfWork[tuple[int, bytes], bytes] = ctx.unit(write)
        unit.before_commit.append(ctx.ledger.fold)
        self.offsets.begin()
        ctx.opened.forget()
        ctx.ledger.begin()
        for partition in set(by_partition) - self.ledger_seen:  # a partition's first unit here
            ctx.ledger.first_unit(partition, ctx.partition_of)
            self.ledger_seen.add(partition)
        self.batch_started = held = time.monotonic()
        hold_s = ctx.settings.tuning.person_hold_s
        try:
            for event in events:
                with as_current(event):  # the table's store reads the partition from it
                    for msg in await self.admit(event.message):  # the same partition as the event
                        timed = unit.timed
                        await self.handle(msg, event.key if msg is event.message else msg.key, unit)
                        if unit.timed > timed and msg.timestamp:  # the department's record time to each decision
                            ctx.metrics.observe_latency(max(0.0, time.time() - msg.timestamp), unit.timed - timed)
                if time.monotonic() - held > hold_s:  # let the loop's others run (the intake's heartbeats)
                    await asyncio.sleep(0)
                    held = time.monotonic()
            await self.commit(unit)
        finally:
            self.batch_started = None
        newcomers = ctx.newcomers  # (counted per take, not per person)
        ctx.metrics.set("zhucan_person_newcomers_total", newcomers.misses, how="decided")
        ctx.metrics.set("zhucan_person_newcomers_total", newcomers.hits, how="remembered")
        ctx.metrics.set("zhucan_person_second_identities_total", newcomers.second_misses, how="decided")
        ctx.metrics.set("zhucan_person_second_identities_total", newcomers.second_hits, how="remembered")

    async def commit(self, unit: UnitOfWork[tuple[int, bytes], bytes]) -> None:
        """The unit, with each partition's applied-offset marker written after the states it covers."""
        self.ctx.ledger.fold(unit)  # the ledger's totals first: the marker is the last record of the batch
        markers = self.offsets.markers()
        for partition, marker in markers.items():
            unit.change((partition, marker_key(partition)), marker)
        await unit.commit()
        for partition, marker in markers.items():  # as saved (the commit watch reads it)
            self.nexts[partition] = int(marker)

    async def handle(self, msg: Any, key: bytes | None, unit: UnitOfWork[tuple[int, bytes], bytes]) -> None:
        """Apply one record of zhucan.person-commands (a batch record, or a single command)."""
        ctx = self.ctx
        try:
            commands = wire.commands_of(key, msg.value or b"")  # a tombstone: dead-lettered below
        except wire.BatchFormatError as exc:
            unit.send([ctx.dead_letter(msg, "BATCH_FORMAT", str(exc))])
            self.offsets.applied(msg.partition, msg.offset)
            return
        work = Work(msg.partition, unit, lambda: self.commit(unit))
        for ckey, value in commands:
            try:
                if value[:3] == wire.IDENTITY and remembered_identity(ctx, work, ckey, value):
                    continue  # the next person of a remembered key, from bytes
                command = wire.decode_command(value, ctx.codec, ctx.departments)
                pending = HANDLERS[type(command)](ctx, work, ckey, command)
                if pending is not None:  # a partition's order (a scan): it waits on the broker
                    await pending
            except DecodeError as exc:
                unit.send([ctx.dead_letter(msg, exc.reason, str(exc), inner=(ckey, value))])
            except Exception as exc:  # a bug must not drop the command: keep it for replay
                log.exception("person command failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
                unit.send([ctx.dead_letter(msg, type(exc).__name__, scrub(str(exc)), inner=(ckey, value))])
        self.offsets.applied(msg.partition, msg.offset)
