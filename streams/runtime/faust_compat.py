"""Every use of a private Faust, mode or aiokafka API, in one place.

Each is a risk at upgrade time; ``tests/unit/streams/runtime/test_faust_compat.py`` has a test
per use that fails when an upgrade renames, removes or changes it. Nothing else in zhucan
touches a name starting with ``_`` of those libraries.

1. ``Producer._settings_extra`` (faust): the aiokafka producer's extra settings; overridden to
   set ``acks=all`` and idempotence, which Faust enables only inside transactions.
2. ``App._new_transport`` / ``App._new_producer_transport`` (faust): how the app builds its
   transports; overridden to use the idempotent producer.
3. ``Producer._ensure_producer`` (faust): the aiokafka producer Faust started (for batch sends).
4. ``AIOKafkaClient._wait_on_metadata`` (aiokafka): a topic's partitions, waiting for metadata.
5. ``Store.set_persisted_offset`` (faust): a table partition's offset RocksDB resumes from.
6. ``faust.streams._current_event`` (faust): the context variable table stores read the
   partition from.
7. ``Worker._schedule_shutdown`` (mode): the signal handler's shutdown; wrapped to drain first.
8. ``Store._db_for_partition`` (faust, RocksDB driver): a partition's rocksdict database.
9. The leader assignor's topic name (faust's ``LeaderAssignor._leader_topic_name``, spelled
   here, not read): zhucan creates that topic itself, since the app may not declare topics
   (``streams/app.py``); the test compares the spelling with Faust's.
14. ``Consumer._new_consumer_thread`` (faust) and the aiokafka consumer's partition state
    (``AIOKafkaConsumer._fetcher._subscriptions``, ``TopicPartitionState.has_valid_position``):
    Faust's commit livelock detector reads ``TopicPartitionState.position``, which aiokafka
    (0.14 here) asserts is set. While a partition waits for its position to be reset (its leader
    moved in a broker restart) the assertion killed the worker. The consumer thread here skips
    that check for such a partition: the check only logs, and the progress watch
    (``ProgressWatch`` in ``streams/runtime/applied.py``) still sees a partition that stops.
15. ``AIOKafkaConsumerThread.seek_to_committed`` (faust's aiokafka driver; Faust's
    ``Consumer.perform_seek`` calls it after every rebalance's recovery, to fetch again what it
    dropped meanwhile: records fetched while the flow was suspended, the generation changed, or
    the partition was not active yet). aiokafka's ``seek_to_committed`` seeks only a partition
    whose committed offset is above 0: one the group never committed on (or committed at 0)
    kept the position past the dropped records, and its records waited until the progress
    watch sought back, three minutes later (a second worker joining while records came). Here
    such a partition is sought to its start (the offset the reset policy, ``earliest``, gives,
    asked of the broker, not by waiting for the fetcher's reset: the recovery does not wait on a
    fetch in flight); the tables' changelogs are left to Faust's recovery, which seeks them.
16. ``App.flow_control`` (faust; mode's ``FlowControlEvent``): every ``resume`` empties the
    streams' queues. Faust resumes it once when a rebalance needs no table recovery and again
    after the stream partitions are resumed and sought back (``Recovery._restart_recovery``,
    ``on_recovery_completed``); records handed to the person agent in between, after the seek,
    were emptied out with nothing to fetch them again (found with item 15, whose first version
    waited for the fetcher there and widened that window to a second and a half). Here a resume
    empties the queues only when the flow was suspended (what a rebalance's revocation does,
    and it empties them too); a record handed over twice is skipped by the applied marker.
17. aiokafka's ``Fetcher._fetch_min_bytes`` and ``Fetcher._fetch_max_wait_ms`` (the consumer's
    ``_fetcher``), read each time it builds a fetch request: the intake sets them between two
    fetches (``set_fetch_wait``), so that an idle worker asks the broker once a second and is
    answered at the first byte, and a busy one waits for a batch (aiokafka fixes both when
    the consumer is made).

Public Faust APIs whose behaviour the offset guards (``streams/runtime/applied.py``) rely on,
each with a test as well, since an upgrade could keep the name and change what it does:

10. ``Consumer.seek``: seeks aiokafka's fetch position *and* resets Faust's read offset, so the
    records from there on are handed to the agent again (Faust drops a fetched record below
    its read offset).
11. ``Consumer.assignment``: the partitions this worker holds (the commit watch looks at those).
13. ``App.rebalancing`` and ``App.in_recovery``: set while a rebalance or the tables' recovery is
    under way (the progress watch does not count that time as a partition stuck).
12. ``Stream.take_events`` acks every event of a batch once the body returns, including those
    the stage skipped, and also when the body raises (so the person stage's take never raises
    for a failed unit: ``PersonStage.take`` does it again); Faust's ``Consumer.ack`` counts an offset once, so a record handed over
    twice (before and after a seek) neither blocks nor doubles the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

import faust
from aiokafka.structs import TopicPartition
from faust import streams as faust_streams
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode.utils.queues import FlowControlEvent


class IdempotentProducer(faust_aiokafka.Producer):
    """(1) Faust enables idempotence only inside transactions; we want it always (acks=all)."""

    def _settings_extra(self) -> Any:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


def position_known(aio_consumer: Any, tp: TP) -> bool:
    """(14) Whether aiokafka holds a fetch position for ``tp`` (False while it awaits a reset,
    or when ``tp`` is not in the consumer's assignment)."""
    subscription = aio_consumer._fetcher._subscriptions.subscription
    assignment = subscription.assignment if subscription is not None else None
    if assignment is None:
        return False
    state = assignment.state_value(TopicPartition(tp.topic, tp.partition))
    return state is not None and bool(state.has_valid_position)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """(14) Faust's livelock check, skipped for a partition without a fetch position; (15) its
    seek back after a rebalance, for a partition never committed on too."""

    def verify_event_path(self, now: float, tp: TP) -> None:
        if not position_known(self._ensure_consumer(), tp):
            return None
        return super().verify_event_path(now, tp)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """(15) Faust's seek back after a rebalance, for never-committed partitions too."""
        changelogs = self.app.tables.changelog_topics
        return await self.call_thread(seek_to_committed_or_start, self._ensure_consumer(),
                                      self.app.conf.consumer_auto_offset_reset, changelogs)


async def seek_to_committed_or_start(aio_consumer: Any, reset: str, leave: set[str]) -> dict[Any, int | None]:
    """(15) ``aio_consumer.seek_to_committed()``, then each partition without a committed offset
    above 0 (none, or 0), except those of the topics in ``leave``, sought where a fresh
    assignment would start: its committed offset 0, else the ``reset`` policy's offset (the log
    start for ``earliest``, the end for ``latest``), asked of the broker. The committed offsets,
    as aiokafka's method returns them."""
    committed = await aio_consumer.seek_to_committed()
    unsought = [tp for tp, offset in committed.items() if not offset and tp.topic not in leave]
    for tp in unsought:
        if committed[tp] == 0:
            aio_consumer.seek(tp, 0)
    never = [tp for tp in unsought if committed[tp] is None]
    if never and reset in ("earliest", "latest"):
        ask = aio_consumer.beginning_offsets if reset == "earliest" else aio_consumer.end_offsets
        for tp, offset in (await ask(never)).items():
            aio_consumer.seek(tp, offset)
    return committed


class _FlowControl(FlowControlEvent):
    """(16) Resumed, the streams' queues are emptied only if the flow was suspended."""

    def resume(self) -> None:
        if self.is_active():  # not suspended since the last resume: the queues hold fresh records
            return
        super().resume()


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = IdempotentProducer


class App(faust.App):
    """(2) A Faust app whose producers are idempotent; (16) whose flow control empties the
    streams' queues only on a resume after a suspension."""

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return _FlowControl(loop=self.loop)

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        return _Transport(self.conf.broker_producer, self)


def aiokafka_producer(app: faust.App) -> Any:
    """(3) The aiokafka producer behind the app's producer (started with the app)."""
    producer: Any = app.producer
    return producer._ensure_producer()


async def partitions_of(aio_producer: Any, topic: str) -> set[int]:
    """(4) The partition numbers of ``topic``, waiting for its metadata if needed."""
    return set(await aio_producer.client._wait_on_metadata(topic))


def mark_persisted(store: Any, tp: Any, offset: int) -> None:
    """(5) Record ``offset`` of changelog partition ``tp`` as written (where a restart resumes)."""
    store.set_persisted_offset(tp, offset)


@contextlib.contextmanager
def as_current(event: faust.EventT) -> Iterator[None]:
    """(6) Make ``event`` Faust's current event: its table stores take the partition from it."""
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


class DrainingWorker(faust.Worker):
    """(7) On SIGTERM/SIGINT, await ``drain()`` before Faust's own shutdown begins."""

    _draining = False

    async def drain(self) -> None:  # overridden
        return None

    def _schedule_shutdown(self, signal: Any) -> None:
        if self._draining:
            return
        self._draining = True

        async def drain_then_stop() -> None:
            await self.drain()
            faust.Worker._schedule_shutdown(self, signal)

        asyncio.ensure_future(drain_then_stop(), loop=self.loop)


def rocksdict_db(store: Any, partition: int) -> Any | None:
    """(8) The rocksdict database of a table partition, or None when the store is not
    Faust's RocksDB driver on rocksdict (memory://, python-rocksdb)."""
    if getattr(store, "use_rocksdict", False) and hasattr(store, "_db_for_partition"):
        return store._db_for_partition(partition)
    return None


async def seek_partition(app: faust.App, topic: str, partition: int, offset: int) -> None:
    """(10) Fetch ``topic[partition]`` again from ``offset``; the agent gets those records again."""
    await app.consumer.seek(TP(topic, partition), offset)


def held_partitions(app: faust.App, topic: str) -> set[int]:
    """(11) The partitions of ``topic`` assigned to this worker now."""
    return {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}


def leader_topic_name(app_id: str) -> str:
    """(9) The leader assignor's topic of the Faust app ``app_id``, as Faust names it."""
    return f"{app_id}-__assignor-__leader"


def rebalancing(app: faust.App) -> bool:
    """(13) Whether a rebalance or the tables' recovery is under way (partitions paused)."""
    return bool(getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False))


def set_fetch_wait(aio_consumer: Any, min_bytes: int, max_wait_ms: int) -> bool:
    """(17) The next fetch requests of ``aio_consumer`` (started) wait on the broker until
    ``min_bytes`` are there or ``max_wait_ms`` has passed. False, and nothing changed, where the
    consumer has no such knobs (an aiokafka that renamed them: the fetches stay as made)."""
    fetcher = getattr(aio_consumer, "_fetcher", None)
    if not (hasattr(fetcher, "_fetch_min_bytes") and hasattr(fetcher, "_fetch_max_wait_ms")):
        return False
    fetcher._fetch_min_bytes = min_bytes  # type: ignore[union-attr]
    fetcher._fetch_max_wait_ms = max_wait_ms  # type: ignore[union-attr]
    return True
