"""One test per private Faust / mode / aiokafka API zhucan uses (``streams/runtime/faust_compat.py``).

Each fails if an upgrade removes, renames or changes what zhucan relies on, before a worker
meets it. Numbers refer to the list in faust_compat's docstring."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace

import aiokafka.client
import faust
import mode
import pytest
from faust.stores import base as store_base
from faust.stores import rocksdb as store_rocksdb
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.runtime import faust_compat
from streams.runtime.faust_compat import (
    App,
    DrainingWorker,
    IdempotentProducer,
    as_current,
    leader_topic_name,
    rocksdict_db,
)


def _params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


@pytest.fixture
def app(tmp_path):
    a = App("compat-test", broker="kafka://localhost:1", datadir=str(tmp_path), web_enabled=False)
    a.finalize()
    return a


def test_1_producer_settings_extra_gives_acks_all_and_idempotence(app):
    assert _params(faust_aiokafka.Producer._settings_extra) == ["self"]
    extra = dict(app.producer._settings_extra())
    assert extra["acks"] == "all" and extra["enable_idempotence"] is True


def test_2_the_app_builds_its_producer_through_our_transport(app):
    assert _params(faust.App._new_transport) == _params(faust.App._new_producer_transport) == ["self"]
    assert isinstance(app.producer, IdempotentProducer)


def test_3_ensure_producer_returns_the_aiokafka_producer():
    assert _params(faust_aiokafka.Producer._ensure_producer) == ["self"]
    fake = object()
    producer = SimpleNamespace(_ensure_producer=lambda: fake)
    assert faust_compat.aiokafka_producer(SimpleNamespace(producer=producer)) is fake
    hints = inspect.signature(faust_aiokafka.Producer._ensure_producer).return_annotation
    assert "AIOKafkaProducer" in str(hints)


def test_4_wait_on_metadata_is_a_coroutine_taking_a_topic():
    fn = aiokafka.client.AIOKafkaClient._wait_on_metadata
    assert inspect.iscoroutinefunction(fn) and _params(fn) == ["self", "topic"]

    class Client:
        async def _wait_on_metadata(self, topic):
            return {0, 1, 2} if topic == "t" else set()

    assert asyncio.run(faust_compat.partitions_of(SimpleNamespace(client=Client()), "t")) == {0, 1, 2}


def test_5_set_persisted_offset_takes_a_partition_and_an_offset():
    for store in (store_base.Store, store_rocksdb.Store):
        assert _params(store.set_persisted_offset) == ["self", "tp", "offset"]
    calls = []
    faust_compat.mark_persisted(SimpleNamespace(set_persisted_offset=lambda tp, off: calls.append((tp, off))), "tp", 7)
    assert calls == [("tp", 7)]


def test_6_current_event_is_the_context_variable_faust_reads():
    class Event:  # weak-referenceable, as Faust's events are
        pass

    event = Event()
    assert faust.current_event() is None
    with as_current(event):
        assert faust.current_event() is event
    assert faust.current_event() is None


def test_7_schedule_shutdown_is_what_the_signal_handlers_call():
    assert _params(mode.Worker._schedule_shutdown) == ["self", "signal"]
    for handler in (mode.Worker._on_sigint, mode.Worker._on_sigterm):
        assert "_schedule_shutdown" in inspect.getsource(handler)
    assert "_schedule_shutdown" in DrainingWorker.__dict__


def test_7_draining_worker_drains_before_faust_shuts_down(monkeypatch):
    order: list[str] = []

    class Worker(DrainingWorker):
        def __init__(self) -> None:  # no Faust start-up: only the shutdown path
            self.loop = asyncio.new_event_loop()

        async def drain(self) -> None:
            order.append("drain")

    monkeypatch.setattr(faust.Worker, "_schedule_shutdown", lambda self, signal: order.append("faust"))
    worker = Worker()
    worker._schedule_shutdown("SIGTERM")
    worker._schedule_shutdown("SIGTERM")  # a second signal while draining changes nothing
    worker.loop.run_until_complete(asyncio.sleep(0.01))
    worker.loop.close()
    assert order == ["drain", "faust"]


def test_8_rocksdb_store_gives_a_partitions_database():
    assert _params(store_rocksdb.Store._db_for_partition) == ["self", "partition"]
    assert "use_rocksdict" in inspect.getsource(store_rocksdb.Store.__init__)
    db = object()
    rocks = SimpleNamespace(use_rocksdict=True, _db_for_partition=lambda p: db if p == 3 else None)
    assert rocksdict_db(rocks, 3) is db
    assert rocksdict_db({}, 3) is None  # memory:// goes through the table's mapping


def test_9_leader_topic_name_is_the_topic_the_assignor_subscribes(app):
    name = leader_topic_name(app.conf.id)
    assert name == "compat-test-__assignor-__leader"
    leader = app._leader_assignor
    assert leader._leader_topic_name == name
    assert leader._leader_topic.get_topic_name() == name  # what it reads, under that name
    assert leader._leader_topic.partitions == 1  # zhucan creates it with one partition


def test_9_the_worker_app_declares_no_topic(tmp_path, monkeypatch):
    """zhucan creates every topic (streams/worker.py); Faust's own creation could pick a dead
    broker as controller and stop the worker (streams/app.py)."""
    from streams.app import create_app
    from streams.settings import Settings

    monkeypatch.chdir(tmp_path)
    zapp = create_app(Settings(kafka_bootstrap_servers="localhost:1", store="memory://")).faust
    assert zapp.conf.topic_allow_declare is False

    def no_producer() -> None:
        raise AssertionError("Faust reached for a producer to create a topic")

    zapp.producer.create_topic = no_producer  # type: ignore[method-assign]
    topics = [zapp._leader_assignor._leader_topic, *(t.changelog_topic for t in zapp.tables.values())]
    assert len(topics) == 2
    for topic in topics:  # Faust honours the setting where it declares the leader topic and the changelog
        asyncio.run(asyncio.wait_for(topic.declare(), 10))


def test_10_seek_moves_the_fetch_and_faust_read_offset_so_records_come_again(app):
    from faust.transport import consumer as faust_consumer
    from faust.types import TP

    consumer = app.consumer
    calls = []

    async def _seek(partition, offset):
        calls.append((partition, offset))

    consumer._seek = _seek
    asyncio.run(faust_compat.seek_partition(app, "zhucan.person-commands", 2, 2666))
    tp = TP("zhucan.person-commands", 2)
    assert calls == [(tp, 2666)]
    assert consumer._read_offset[tp] == 2666  # below it Faust would drop a fetched record
    drain = inspect.getsource(faust_consumer.Consumer._drain_messages)
    assert "offset >= r_offset" in drain and "DROPPED MESSAGE" in drain


def test_11_assignment_gives_the_partitions_held(app):
    from faust.types import TP

    assert _params(type(app.consumer).assignment) == ["self"]
    app.consumer.assignment = lambda: {TP("a", 0), TP("a", 3), TP("b", 1)}
    assert faust_compat.held_partitions(app, "a") == {0, 3}


def test_12_take_events_acks_every_event_after_the_body_and_an_offset_counts_once(app, monkeypatch):
    from faust.streams import Stream
    from faust.types import TP
    from faust.types.tuples import Message

    source = inspect.getsource(Stream.take_events)
    assert "yield list(events)" in source and "for event in events:" in source
    assert source.index("yield list(events)") < source.index("await self.ack(event)")
    consumer = app.consumer
    tp = TP("zhucan.person-commands", 0)

    def message(offset):
        return Message("zhucan.person-commands", 0, offset, 0.0, None, None, None, None, None, None, tp=tp)

    monkeypatch.setattr(app.topics, "acks_enabled_for", lambda topic: True)  # the person agent's topic
    consumer._committed_offset[tp] = 10
    assert consumer.ack(message(10)) is True
    assert consumer.ack(message(10)) is False  # the same record handed over again (before and after a seek)
    assert consumer.ack(message(9)) is False  # below the commit: never counted
    assert consumer._acked[tp] == [10]
    assert consumer._new_offset(tp) == 11


def test_12_faust_stops_committing_at_a_missing_offset_at_the_head(app):
    """The stall of issue #26: with the commit at 2666 and 2666-2667 never acked, Faust's
    commit rule returns nothing for ever; the commit watch (streams/runtime/applied.py)
    heals it by seeking back. If an upgrade changes this rule, the watch may be needless."""
    from faust.types import TP

    consumer = app.consumer
    tp = TP("zhucan.person-commands", 2)
    consumer._committed_offset[tp] = 2666
    consumer._acked[tp] = [2668, 2669, 2670]
    assert consumer._new_offset(tp) is None
    consumer._acked[tp] = [2666, 2667, 2668, 2669, 2670]
    assert consumer._new_offset(tp) == 2671


def test_13_the_app_says_when_it_rebalances_or_recovers(app, monkeypatch):
    """The flags Faust sets around a rebalance (App.on_rebalance_start/end) and the recovery
    (Recovery sets app.in_recovery): both exist on a fresh app, False, and each alone counts."""
    import faust.tables.recovery as recovery

    assert app.rebalancing is False and app.in_recovery is False
    assert faust_compat.rebalancing(app) is False
    assert "self.app.in_recovery = True" in inspect.getsource(recovery.Recovery)
    assert "self.rebalancing = True" in inspect.getsource(faust.App.on_rebalance_start)
    assert "self.rebalancing = False" in inspect.getsource(faust.App.on_rebalance_end)
    monkeypatch.setattr(app, "in_recovery", True)
    assert faust_compat.rebalancing(app) is True


def test_14_the_livelock_check_skips_a_partition_awaiting_its_position(app, monkeypatch):
    """The crash of a worker while brokers restarted: Faust's commit livelock detector read
    aiokafka's ``TopicPartitionState.position`` of a partition waiting for a reset, and the
    assertion there ended the worker. Our consumer thread skips the check for it, and runs it
    once the position is known. If an upgrade makes ``position`` return None again, Faust's own
    check handles it (``committed_offset is not None``) and this guard may go."""
    from aiokafka.consumer.subscription_state import SubscriptionState
    from aiokafka.structs import TopicPartition
    from faust.types import TP

    assert _params(faust_aiokafka.Consumer._new_consumer_thread) == ["self"]
    assert isinstance(app.consumer._thread, faust_compat._ConsumerThread)
    assert "tp_state.position" in inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread.verify_event_path)
    tp = TP("zhucan.person-commands", 0)

    async def check():
        subscriptions = SubscriptionState()
        subscriptions.assign_from_user({TopicPartition(tp.topic, tp.partition)})
        aio_consumer = SimpleNamespace(_fetcher=SimpleNamespace(_subscriptions=subscriptions))
        thread = app.consumer._thread
        monkeypatch.setattr(thread, "_ensure_consumer", lambda: aio_consumer)
        monkeypatch.setattr(thread, "time_started", 0.0, raising=False)  # set when the thread starts
        state = subscriptions.subscription.assignment.state_value(TopicPartition(tp.topic, tp.partition))
        state.timestamp = 1000  # fetched before (ms); its leader moved: the position awaits a reset
        assert faust_compat.position_known(aio_consumer, tp) is False
        assert faust_compat.position_known(aio_consumer, TP("other", 0)) is False
        with pytest.raises(AssertionError):  # what the detector met: Faust's own check, unguarded
            faust_aiokafka.AIOKafkaConsumerThread.verify_event_path(thread, 1.0, tp)
        assert thread.verify_event_path(1.0, tp) is None  # ours: skipped, the worker lives

        calls = []
        monkeypatch.setattr(faust_aiokafka.AIOKafkaConsumerThread, "verify_event_path",
                            lambda self, now, tp: calls.append(tp))
        thread.verify_event_path(1.0, tp)
        assert calls == []
        subscriptions.seek(TopicPartition(tp.topic, tp.partition), 5)
        assert faust_compat.position_known(aio_consumer, tp) is True
        thread.verify_event_path(1.0, tp)
        assert calls == [tp]  # once the position is known, Faust's check runs again

    asyncio.run(check())


def test_15_the_seek_after_a_rebalance_brings_back_a_never_committed_partition(app, monkeypatch):
    """Faust drops records fetched while a rebalance's recovery runs and seeks every partition
    back to its committed offset afterwards; aiokafka's ``seek_to_committed`` skips a partition
    without a committed offset above 0, so a never-committed partition's dropped records waited
    for the progress watch (3 minutes). Ours seeks it to its start. The real-Kafka half:
    tests/integration/test_restarts.py (``test_a_partition_never_committed_is_sought_to_its_start_...``)."""
    from aiokafka.structs import TopicPartition
    from faust.transport import consumer as faust_consumer

    # the path Faust takes after a recovery: perform_seek -> the delegate -> the thread's method
    assert "self.seek_to_committed()" in inspect.getsource(faust_consumer.Consumer.perform_seek)
    assert "self._thread.seek_to_committed()" in inspect.getsource(faust_consumer.ThreadDelegateConsumer.seek_to_committed)
    assert "perform_seek" in inspect.getsource(faust_consumer.Consumer.getmany)  # the flow stopped mid-fetch
    thread = app.consumer._thread
    assert isinstance(thread, faust_compat._ConsumerThread)
    assert app.conf.consumer_auto_offset_reset == "earliest"
    assert _params(faust_aiokafka.AIOKafkaConsumerThread.seek_to_committed) == ["self"]

    never, zero, at_five, changelog = (TopicPartition("zhucan.person-commands", 0), TopicPartition("zhucan.person-commands", 1),
                                       TopicPartition("zhucan.person-commands", 2), TopicPartition("zhucan.person-changelog", 0))
    calls: list[tuple[str, tuple]] = []

    class FakeAio:  # aiokafka's own seek_to_committed moves only the partition committed at 5
        async def seek_to_committed(self):
            calls.append(("seek_to_committed", ()))
            return {never: None, zero: 0, at_five: 5, changelog: None}

        def seek(self, tp, offset):
            calls.append(("seek", (tp, offset)))

        async def beginning_offsets(self, tps):
            calls.append(("beginning_offsets", tuple(tps)))
            return {tp: 3 for tp in tps}  # the log start (retention deleted 0-2)

        async def end_offsets(self, tps):
            calls.append(("end_offsets", tuple(tps)))
            return {tp: 9 for tp in tps}

    async def through_the_thread():
        async def call_thread(fun, *args):
            return await fun(*args)
        monkeypatch.setattr(thread, "call_thread", call_thread)
        monkeypatch.setattr(thread, "_ensure_consumer", lambda: FakeAio())
        monkeypatch.setattr(type(app.tables), "changelog_topics", property(lambda self: {"zhucan.person-changelog"}))
        return await thread.seek_to_committed()

    committed = asyncio.run(through_the_thread())
    assert committed == {never: None, zero: 0, at_five: 5, changelog: None}  # what Faust sets its read offsets from
    assert calls == [("seek_to_committed", ()), ("seek", (zero, 0)), ("beginning_offsets", (never,)), ("seek", (never, 3))]
    calls.clear()
    asyncio.run(faust_compat.seek_to_committed_or_start(FakeAio(), "latest", set()))
    assert calls == [("seek_to_committed", ()), ("seek", (zero, 0)), ("end_offsets", (never, changelog)),
                     ("seek", (never, 9)), ("seek", (changelog, 9))]


def test_16_a_resume_empties_the_streams_queues_only_after_a_suspension(app):
    """Faust resumes the flow once when a rebalance needs no table recovery, and again after
    the stream partitions are resumed and sought back; mode's resume empties every stream's
    queue each time, so records handed to the agent in between were lost with nothing to fetch
    them again. Ours empties them on a resume after a suspension only (a rebalance's revocation
    suspends the flow, and empties the queues itself)."""
    from faust.tables import recovery
    from mode.utils.queues import FlowControlEvent, FlowControlQueue

    # the two resumes of one rebalance, in Faust's recovery
    restart = recovery.Recovery._restart_recovery  # a mode ServiceTask around the method
    assert "self.app.flow_control.resume" in inspect.getsource(restart.fun)
    assert "self.app.flow_control.resume()" in inspect.getsource(recovery.Recovery.on_recovery_completed)
    # what a rebalance's revocation does (app.flow_control.suspend, then clear)
    revoked = inspect.getsource(faust.App._on_partitions_revoked)
    assert "self.flow_control.suspend" in revoked and "self.flow_control.clear" in revoked

    async def check():
        flow = app.flow_control
        assert isinstance(flow, faust_compat._FlowControl)
        queue = app.FlowControlQueue(maxsize=10, clear_on_resume=True)  # a stream's queue
        assert isinstance(queue, FlowControlQueue) and queue._flow_control is flow
        queue.put_nowait("stale")
        flow.resume()  # the first resume, after the start's suspension: emptied
        assert queue.qsize() == 0
        queue.put_nowait("fresh")  # handed to the agent after the seek
        flow.resume()  # the second resume of the same rebalance: kept
        assert queue.qsize() == 1
        flow.suspend()
        flow.resume()  # after a suspension: emptied
        assert queue.qsize() == 0
        # mode's own event empties it at every resume (what lost the record): the guard is still needed
        plain = FlowControlEvent()
        theirs = FlowControlQueue(maxsize=10, flow_control=plain, clear_on_resume=True)
        plain.resume()
        theirs.put_nowait("fresh")
        plain.resume()
        assert theirs.qsize() == 0

    asyncio.run(check())


async def test_17_the_fetch_requests_built_after_set_fetch_wait_carry_its_wait_and_bytes():
    """aiokafka's fetcher reads ``_fetch_min_bytes`` and ``_fetch_max_wait_ms`` for each fetch
    request it builds: the request built after ``set_fetch_wait`` carries the new values."""
    from unittest import mock

    from aiokafka.consumer.fetcher import Fetcher
    from aiokafka.consumer.subscription_state import SubscriptionState
    from aiokafka.structs import TopicPartition

    client = mock.MagicMock()
    client._loop = asyncio.get_running_loop()
    client._metadata_max_age_ms = 300_000
    subscriptions = SubscriptionState()
    tp = TopicPartition("identity", 0)
    subscriptions.assign_from_user({tp})
    subscriptions.seek(tp, 5)
    fetcher = Fetcher(client, subscriptions, fetch_min_bytes=16 * 1024, fetch_max_wait_ms=50)
    try:
        def request() -> object:
            (_, req), = fetcher._get_actions_per_node(subscriptions.subscription.assignment)[0]
            return req

        assert (request()._min_bytes, request()._max_wait_ms) == (16 * 1024, 50)
        assert faust_compat.set_fetch_wait(SimpleNamespace(_fetcher=fetcher), 1, 1000)
        assert (request()._min_bytes, request()._max_wait_ms) == (1, 1000)
        assert not faust_compat.set_fetch_wait(SimpleNamespace(), 1, 1000)  # no fetcher: nothing changed
    finally:
        fetcher._fetch_task.cancel()


def test_no_other_module_touches_these_private_apis():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[4]
    private = {"_settings_extra", "_ensure_producer", "_wait_on_metadata", "_current_event", "_schedule_shutdown",
               "_db_for_partition", "set_persisted_offset", "_new_transport", "_new_producer_transport",
               "_leader_topic_name", "_leader_assignor", "_new_consumer_thread", "_subscriptions",
               "has_valid_position", "seek_to_committed", "_fetcher", "_fetch_min_bytes", "_fetch_max_wait_ms",
               "FlowControlEvent"}
    offenders = []
    for path in [*root.glob("streams/**/*.py"), *root.glob("connectors/**/*.py")]:
        if path.name == "faust_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = node.attr if isinstance(node, ast.Attribute) else node.name if isinstance(node, ast.FunctionDef) else None
            if name in private:
                offenders.append(f"{path.relative_to(root)}:{node.lineno}: {name}")
    assert offenders == []
