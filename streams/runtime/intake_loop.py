"""The intake: department records in, batch records of person commands out, on plain aiokafka;
in the same loop, tax's acknowledgements and the operators' commands (issue #26).

Why not a Faust agent: the intake is the one stage that sees every department record one
by one, and Faust hands each message from its fetcher to an agent through its conductor
and a queue (about 27 event-loop callbacks per message, measured with ``zhucan bench``),
which capped the whole worker near 3,000 events/s. Here a fetch of thousands of records
is handled in one go: decoded, validated, grouped by the person's partition and sent as
a few batch records (``streams/runtime/wire.py``). The stage holds no state, so it needs no table;
the person stage, which does, stays a Faust agent whose messages are those batch records.

Delivery is at-least-once, as everywhere in zhucan: a fetch is one unit of work
(``streams/runtime/unit.py``) whose changes are its offsets, committed only after every
record it produced (commands, rejections, dead letters) is acknowledged by the broker (sent
by ``Emitter.emit`` through the worker's one producer: acks=all, idempotent). A failed send seeks back and the fetch is handled again; the person stage
drops redelivered event ids. A rebalance waits for the
fetch in hand to be finished and committed before the partitions go.

The consumer group is ``ZHUCAN_APP_ID`` (the group operators watch for the departments'
topics); the Faust app runs as ``<app id>-streams``.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

import mode
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from streams.kafka.admin import group_offsets
from streams.kafka.security import aiokafka_config
from streams.runtime.applied import ProgressWatch, Stuck
from streams.runtime.context import StageContext
from streams.runtime.faust_compat import set_fetch_wait
from streams.runtime.unit import UnitOfWork
from streams.settings import Settings

log = logging.getLogger("zhucan.intake")
# What the loop runs (``streams/stages/__init__.py`` Inputs): a fetch's records into its unit of work.
Route = Callable[[Sequence[Any], UnitOfWork[Any, Any]], None]


class _WaitForBatch(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions are not taken away while a fetch is being handled: the revocation waits."""

    def __init__(self, intake: IntakeService) -> None:
        self.intake = intake

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.intake.lock:
            pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("intake assigned %d partition(s): %s", len(assigned),
                 ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)))
        self.intake.checked.difference_update(assigned)  # each looked at again before its first record


def in_written_order(fetched: dict[TopicPartition, list[Any]]) -> list[Any]:
    """A fetch's records across its partitions in the order they were written (their timestamps),
    each partition's own order kept whatever its timestamps say. A fetch that waited for a few
    records (``intake_fetch_min_bytes``) holds up to ``intake_fetch_wait_ms`` of them from several
    partitions: taken partition by partition, a department's correction sent after its
    certification, keyed to another partition, was decided first, and tax got a version that the
    certification then replaced (the decision comes out the same in any order; the versions
    sent on the way do not)."""
    if len(fetched) == 1:
        return next(iter(fetched.values()))
    return list(heapq.merge(*fetched.values(), key=attrgetter("timestamp")))


class IntakeService(mode.Service):
    """The aiokafka loop of the intake, started once the Faust app runs (its producer is
    the worker's) and stopped before it."""

    def __init__(self, ctx: StageContext, route: Route, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ctx = ctx
        self.route = route
        self.settings: Settings = ctx.settings
        self.lock = asyncio.Lock()
        self.first_fetch_ms: int | None = None  # when department records first came (the bench's clock)
        self.consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.batches = 0  # fetches handled and committed
        self.start_at: dict[TopicPartition, int] = {}  # adopted partitions: records below were handled before
        self.checked: set[TopicPartition] = set()  # partitions whose start was looked at (adopt_offsets)
        self.progress_watch = ProgressWatch(stuck_s=self.settings.tuning.progress_stuck_s)
        self._fetch_fixed = False  # this aiokafka's fetch waits cannot be changed (faust_compat, 17)

    @staticmethod
    def consumer_config(s: Settings) -> dict[str, Any]:
        """The intake consumer's settings (its group is ``app_id``), besides the connection's."""
        t = s.tuning
        return dict(
            client_id=f"{s.app_id}-intake", group_id=s.app_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=t.intake_partition_fetch_bytes, fetch_max_bytes=t.intake_fetch_bytes,
            fetch_min_bytes=t.intake_fetch_min_bytes, fetch_max_wait_ms=t.intake_fetch_wait_ms,
            # static membership as the person stage's group (its session timeout stays aiokafka's 10 s:
            # a worker gone for good hands its department partitions on sooner than its people)
            group_instance_id=f"{s.instance_id}-intake" if s.instance_id else None,
            heartbeat_interval_ms=int(t.heartbeat_s * 1000),
        )

    async def on_start(self) -> None:
        s = self.settings
        self.consumer = AIOKafkaConsumer(**aiokafka_config(s.kafka_bootstrap_servers), **self.consumer_config(s))
        topics = [*s.topics.identity.values(), s.topics.payment_status, s.topics.control, s.topics.policy_candidates,
                  s.topics.claims, s.topics.other_channel]
        self.consumer.subscribe(topics, listener=_WaitForBatch(self))
        await self.consumer.start()
        self._task = asyncio.ensure_future(self._run())
        log.info("intake started on %s (group %s)", ", ".join(topics), s.app_id)

    async def adopt_offsets(self, tps: Any) -> None:
        """A partition of payment-status.v1 or control.v1 this group never committed on starts
        where the Faust app's group ``<app id>-streams`` left it (those topics were read by Faust
        agents before issue #26), not from the beginning. Called in ``handle`` before the first
        record of each partition assigned, so no record below that offset is handled."""
        assert self.consumer is not None
        s = self.settings
        fresh = []
        for tp in set(tps) - self.checked:
            self.checked.add(tp)
            if tp.topic in (s.topics.payment_status, s.topics.control) and await self.consumer.committed(tp) is None:
                fresh.append(tp)
        if not fresh:
            return
        try:
            earlier = await asyncio.get_running_loop().run_in_executor(
                None, group_offsets, s.kafka_bootstrap_servers, s.streams_app_id,
                [(tp.topic, tp.partition) for tp in fresh])
        except Exception as exc:  # from the beginning then: acks and commands are idempotent
            log.warning("could not read the offsets of %s (%s): those partitions start from the beginning",
                        s.streams_app_id, exc)
            return
        for (topic, partition), offset in earlier.items():
            tp = TopicPartition(topic, partition)
            self.start_at[tp] = offset  # what is fetched below it is passed over (and committed past)
            log.info("intake starts %s[%d] at %d, where %s left it", tp.topic, tp.partition, offset, s.streams_app_id)

    async def watch_progress(self, offsets: dict[tuple[str, int], tuple[int, int]]) -> bool:
        """The progress watch over the partitions this loop holds (``offsets``: (topic, partition)
        -> (committed, end) of the group, from the lag sample): a stuck one is sought back to its
        commit; True when one is stuck even after that (the worker must restart)."""
        consumer = self.consumer
        if consumer is None:
            return False
        held = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        give_up = False
        for (topic, partition), remedy, at in self.progress_watch.observe(
                {tp: o for tp, o in offsets.items() if tp in held}):
            end = offsets[(topic, partition)][1]
            kind = self.progress_watch.say(remedy, topic, partition, at, end)
            if remedy is Stuck.SEEK:
                consumer.seek(TopicPartition(topic, partition), at)
            give_up = give_up or remedy is Stuck.EXIT
            try:
                await self.ctx.send([self.ctx.commands.repair(kind, partition, at, end, topic=topic,
                                                              group=self.settings.app_id)], wait=True)
            except Exception as exc:
                log.warning("could not publish the offset repair note: %s", exc)
        return give_up

    async def on_stop(self) -> None:
        """Finish and commit the fetch in hand, then stop fetching (what was fetched and not
        handled is not committed and comes again)."""
        self._stopping = True
        async with self.lock:
            if self._task is not None:
                self._task.cancel()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self.consumer is not None:
            await self.consumer.stop()
        log.info("intake stopped after %d batches", self.batches)

    async def _run(self) -> None:
        assert self.consumer is not None
        t = self.settings.tuning
        idle = False
        while not self._stopping:
            try:
                fetched = await self.consumer.getmany(timeout_ms=t.intake_idle_wait_ms if idle else t.intake_fetch_wait_ms,
                                                      max_records=t.intake_max_records)
            except KafkaError as exc:
                log.warning("intake fetch failed (%s); retrying", exc)
                await asyncio.sleep(t.retry_s)
                continue
            except Exception:  # noqa: BLE001 - the loop is the only reader of its topics: it goes on
                log.exception("intake fetch raised; retrying")
                self.ctx.metrics.inc("zhucan_intake_retries_total")
                await asyncio.sleep(t.retry_s)
                continue
            if bool(fetched) == idle:  # quiet now, or records after a quiet spell
                idle = not fetched
                self.quiet(idle)
            if not fetched:
                continue
            if self.first_fetch_ms is None and any(self.ctx.topics.source_of(tp.topic) for tp in fetched):
                self.first_fetch_ms = int(time.time() * 1000)
                self.ctx.metrics.set("zhucan_intake_first_fetch_ms", self.first_fetch_ms)
            async with self.lock:
                if self._stopping:
                    return
                try:
                    await self.handle(fetched)
                except Exception:  # noqa: BLE001 - a bug must not end the loop (nothing would read the topics)
                    await self._again(fetched)

    def quiet(self, idle: bool) -> None:
        """While nothing comes, a fetch waits ``intake_idle_wait_ms`` on the broker and is
        answered at the first byte; once records come, it waits up to ``intake_fetch_wait_ms``
        for ``intake_fetch_min_bytes`` again (a batch per fetch at a steady low rate)."""
        assert self.consumer is not None
        t = self.settings.tuning
        if self._fetch_fixed:
            return
        if not set_fetch_wait(self.consumer, *((1, t.intake_idle_wait_ms) if idle
                                               else (t.intake_fetch_min_bytes, t.intake_fetch_wait_ms))):
            self._fetch_fixed = True
            log.warning("intake: this aiokafka's fetches cannot be told to wait longer while idle; "
                        "an idle worker asks every %d ms", t.intake_fetch_wait_ms)

    async def _again(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        """A fetch whose handling raised (not a failed send or commit, which ``handle`` takes):
        logged, counted, and fetched again from its first records (nothing was committed). A
        fetch that fails every time stops its partitions' progress, which the progress watch
        sees: sought back, then the worker exits for its supervisor."""
        assert self.consumer is not None
        log.exception("intake: handling a fetch of %d records failed; it is fetched again",
                      sum(len(recs) for recs in fetched.values()))
        self.ctx.metrics.inc("zhucan_intake_retries_total")
        held = self.consumer.assignment()
        for tp, recs in fetched.items():
            if tp in held:  # a partition that left in a rebalance starts at its commit elsewhere
                self.consumer.seek(tp, recs[0].offset)
        await asyncio.sleep(self.settings.tuning.retry_s)

    async def handle(self, fetched: dict[TopicPartition, list[Any]]) -> bool:
        """Handle one fetch: produce its outputs, wait for the broker's acks, commit. True when committed."""
        assert self.consumer is not None
        await self.adopt_offsets(fetched)
        records = in_written_order(fetched)
        if self.start_at:  # only after an upgrade: records an earlier group handled are passed over
            records = [r for r in records if r.offset >= self.start_at.get(TopicPartition(r.topic, r.partition), 0)]
        unit: UnitOfWork[TopicPartition, OffsetAndMetadata] = self.ctx.unit(self._commit)
        self.ctx.in_flight += 1
        try:
            self.route(records, unit)
            for tp, recs in fetched.items():
                unit.change(tp, OffsetAndMetadata(recs[-1].offset + 1, ""))
            try:
                await unit.commit()
            except (CommitFailedError, IllegalStateError) as exc:
                log.warning("intake commit failed after a rebalance (%s): those records come again", exc)
                return False
            except KafkaError as exc:
                # Nothing is committed: go back to the first record of each partition and redo the
                # fetch (what was sent is sent again; the person stage drops the redelivered ids).
                log.warning("intake send failed (%s); the batch of %d records will be handled again",
                            exc, len(records))
                for tp, recs in fetched.items():
                    self.consumer.seek(tp, recs[0].offset)
                await asyncio.sleep(self.settings.tuning.retry_s)
                return False
            self.batches += 1
            return True
        finally:
            self.ctx.in_flight -= 1

    async def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        assert self.consumer is not None
        await self.consumer.commit(offsets)
