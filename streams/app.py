"""``create_app``: the worker's Faust app, its agents and the intake loop, from settings.

Topology (names without the deployment prefix):

  identity.*.v1 ──intake──> zhucan.person-commands (keyed by person key) ──person──> fee-standard.v1
        │  └─ bad records ──> identity.rejected.v1                              └──> review.v1
        └─ undecodable ──> zhucan.dead-letter (headers: origin topic/partition/offset, error)
  payment-status.v1 ──payments──> zhucan.person-commands
  subsidy-claim.v1, subsidy.other-channel.v1 ──money──> zhucan.person-commands
  control.v1 ──control──> every partition of zhucan.person-commands (OPEN_YEAR, CHECK_COVERAGE)

The intake, payments and control stages run in one plain aiokafka loop over whole fetches
(``streams/runtime/intake_loop.py``), consumer group ``ZHUCAN_APP_ID``: stateless, they commit
a fetch once what it produced is acknowledged, and no Faust fetcher can drop their records
around a rebalance (issue #26). The person stage is the one Faust agent, of the app
``<app id>-streams``, and keeps its state in a Faust table (RocksDB by default, memory in
tests); its offsets are guarded by ``streams/runtime/applied.py``. All topics carry raw
bytes: decoding happens inside the handlers with explicit error handling, so a bad record is
rejected or dead-lettered and the stream goes on (an exception escaping an agent would ack and
drop the message). Processing is
at-least-once; effects are idempotent through event ids, ack ids and per-person-year versions
kept in the person table. The process around the app is ``streams/worker.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import faust

from schemas.codec import Codec
from schemas.registry import SchemaRegistryClient
from streams.domain.newcomers import Newcomers
from streams.domain.policy.spec import PolicyBook
from streams.kafka.lag import own_lag, progress_of
from streams.kafka.security import faust_credentials
from streams.policies import load_book
from streams.runtime.context import CommandLog, OpenedYears, StageContext, now_ms
from streams.runtime.emit import Emitter, Out
from streams.runtime.faults import Faults
from streams.runtime.faust_compat import App, held_partitions, rebalancing, seek_partition
from streams.runtime.intake_loop import IntakeService
from streams.runtime.ledger import LedgerKeeper
from streams.runtime.metrics import Metrics, watch_loop
from streams.runtime.publish import Publisher
from streams.runtime.query import PersonQueries
from streams.runtime.reader import RangeReader
from streams.runtime.remembered import Remembered
from streams.runtime.store import PersonStore
from streams.settings import Settings
from streams.stages import Inputs
from streams.stages.control import ControlStage
from streams.stages.intake import IntakeStage
from streams.stages.money import MoneyStage
from streams.stages.payments import PaymentStage
from streams.stages.person import PersonStage

log = logging.getLogger("zhucan.worker")
EXIT_RESTART = 75  # EX_TEMPFAIL: a consumer stuck for good; the supervisor starts the worker again


def _safe_name(text: str) -> str:
    """A path component from a cluster id (base64url: letters, digits, - and _)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text) or "unknown"


RAW: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
POLICY_STATUS_EVERY_S = 30.0  # how often a worker says which policies it holds (and that it runs)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def client_id() -> str:
    """This worker's consumer client id in the streams group (``zhucan person`` finds a partition's
    owner by it in the group's assignment)."""
    return f"zhucan-worker-{worker_id()}"


def policy_status_record(settings: Settings, book: PolicyBook, stopping: bool = False, query_url: str = "") -> Out:
    """This worker's line of zhucan.worker-policies: its policy ids, its client id and where it
    answers person queries; or a tombstone when it stops."""
    key = f"{settings.app_id}|{worker_id()}".encode()
    if stopping:
        return Out(settings.topics.worker_policies, key, b"")
    return Out(settings.topics.worker_policies, key, json.dumps({
        "worker": worker_id(), "app_id": settings.app_id, "policy_ids": sorted(p.policy_id for p in book),
        "every_s": POLICY_STATUS_EVERY_S, "at_ms": now_ms(), "client_id": client_id(),
        "query_url": query_url}).encode())


@dataclass(eq=False)
class StreamsApp:
    """What ``create_app`` builds: the Faust app, the context the stages stand on, the stages."""

    faust: faust.App
    ctx: StageContext
    inputs: Inputs  # the intake loop's records -> the intake, payments and control stages
    person: PersonStage
    intake: IntakeService | None = None  # the intake loop, once the worker runs it
    queries: PersonQueries | None = None  # the person queries (``zhucan person``)


def _context(app: faust.App, settings: Settings, book: PolicyBook, codec: Codec) -> StageContext:
    """The person table, the emitter and every other part the stages share."""
    t, n = settings.topics, settings.partitions
    schema: faust.Schema = faust.Schema(key_type=bytes, value_type=bytes, **RAW)
    # Named under "zhucan." (CONTRACT.md); compacted only, never deleted by time.
    rf, min_isr = settings.replication_factor or 1, settings.min_insync_replicas or 1
    changelog = app.topic(  # created beforehand by ensure_topics with the same settings
        t.person_changelog, schema=schema, partitions=n, compacting=True, deleting=False,
        acks=False, internal=True, maxsize=131_072, allow_empty=True, replicas=rf,
        config={"min.insync.replicas": str(min_isr)},
    )
    people = app.Table("person", default=None, partitions=n, schema=schema, key_type=bytes,
                       value_type=bytes, changelog_topic=changelog, options=settings.tuning.rocksdb_options)
    emitter = Emitter(app, n)
    store = PersonStore(people, emitter, t.person_changelog)
    metrics = Metrics(t.specs)
    reader = RangeReader(settings.kafka_bootstrap_servers, f"{settings.app_id}-gap-reader",
                         settings.tuning.max_fetch_size)

    async def seek(topic: str, partition: int, offset: int) -> None:
        await seek_partition(app, topic, partition, offset)

    publisher, newcomers = Publisher(t, codec), Newcomers(settings.tuning.person_memo_entries)
    ledger = LedgerKeeper(t, codec, store, now_ms, enabled=not Faults.parse(settings.faults).no_ledger)
    ctx = StageContext(
        settings=settings, codec=codec, book=book, topics=t, departments=settings.registry,
        secret=settings.secret_bytes, emitter=emitter, send=emitter.emit, publisher=publisher, store=store,
        opened=OpenedYears(store), metrics=metrics, commands=CommandLog(settings, reader, seek, metrics),
        ledger=ledger, newcomers=newcomers, remembered=Remembered(newcomers, publisher, settings.registry, ledger),
    )
    return ctx


def create_app(settings: Settings, book: PolicyBook | None = None, cluster: str = "local",
               codec: Codec | None = None) -> StreamsApp:
    """Build the worker's Faust app and its stages from settings; nothing connects until it starts."""
    book = book or load_book(settings.policy_dir, settings.registry)
    if codec is None:
        registry = SchemaRegistryClient(settings.schema_registry_url) if settings.schema_registry_url else None
        codec = Codec(registry)
    datadir = settings.data_dir / settings.app_id / _safe_name(cluster)
    datadir.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    brokers = [f"kafka://{h.strip()}" for h in settings.kafka_bootstrap_servers.split(",") if h.strip()]
    tuning = settings.tuning
    app = App(
        settings.streams_app_id,
        broker=brokers,
        broker_credentials=faust_credentials(settings.kafka_bootstrap_servers),  # KAFKA_SECURITY_PROTOCOL and friends (streams/kafka/security.py)
        store=settings.store,
        # The table's local copy (RocksDB) is per Kafka cluster: after `zhucan kafka down --wipe`
        # the changelog starts again, and an old copy would say every person was already done.
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        # Faust's own topics (the leader assignor's) replicated as zhucan's; run_worker resolves
        # the factor from the cluster (min(3, brokers) unless ZHUCAN_REPLICATION_FACTOR says).
        topic_replication_factor=settings.replication_factor or 1,
        # Faust never creates a topic: run_worker creates every one (the changelog, the leader
        # assignor's). Faust's own creation asks the broker a metadata response names as
        # controller; with two of three brokers down that can be a dead one, and the
        # NodeNotReadyError stopped the worker at start or at a rebalance (seen in the
        # one-broker-of-three test).
        topic_allow_declare=False,
        producer_acks=-1,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        web_enabled=False,  # no /table view: state holds personal data
        stream_wait_empty=True,
        # A standby replica makes every worker read every other worker's changelog through
        # Faust's per-message path (measured: a tenth of a worker's time, and seconds of lag after
        # a province's batch). Failover instead restores from the compacted changelog.
        table_standby_replicas=settings.standby_replicas,
        broker_client_id=client_id(),  # the worker's own: its partitions in the group say whose they are
        broker_session_timeout=tuning.session_timeout_s,
        broker_heartbeat_interval=tuning.heartbeat_s,
        # static membership (ZHUCAN_INSTANCE_ID): a restarted worker takes its partitions back at once
        consumer_group_instance_id=f"{settings.instance_id}-streams" if settings.instance_id else None,
        broker_commit_every=tuning.commit_every,
        broker_commit_interval=tuning.commit_interval_s,
        broker_max_poll_records=tuning.max_poll_records,
        consumer_max_fetch_size=tuning.max_fetch_size,
        stream_buffer_maxsize=tuning.stream_buffer_maxsize,
        producer_linger=tuning.producer_linger_s,
        producer_max_batch_size=tuning.producer_max_batch_size,
    )
    ctx = _context(app, settings, book, codec)
    inputs = Inputs(ctx, IntakeStage(ctx), PaymentStage(ctx), ControlStage(ctx), MoneyStage(ctx))
    built = StreamsApp(app, ctx, inputs, PersonStage(ctx))
    commands = app.topic(settings.topics.person_commands, partitions=settings.partitions, **RAW)

    # One agent, concurrency=1 (faust #606), decoding inside. The departments', tax's and the
    # operators' topics are read by the intake's aiokafka loop (streams/runtime/intake_loop.py).
    faults = Faults.parse(settings.faults)
    if faults.die_scan:
        ctx.scan_committed = faults.scan_committed
    if faults.die_sent:
        ctx.after_send = faults.sent({attr: getattr(settings.topics, attr) for attr in faults.die_sent})
    if faults.fail_send:
        ctx.send = faults.failing(ctx.send, {attr: getattr(settings.topics, attr) for attr in faults.fail_send})

    @app.agent(commands, concurrency=1, name="zhucan.person")
    async def person(stream: Any) -> None:  # a faust Stream (take_events is not on StreamT)
        # Several batch records at a time: one wait for the broker's acks per take, not per record.
        # take_events acks the records only after this body has handled all of them.
        if faults:
            log.warning("FAULTS INJECTED (tests only): %s", settings.faults)
            faults.install(app.consumer, settings.topics.person_commands)
        async for events in stream.take_events(tuning.person_take, within=tuning.person_within_s):
            ctx.in_flight += 1
            try:
                if faults:
                    events = [e for e in events if not faults.lost(e.message.partition, e.message.offset)]
                await built.person.take(list(events))  # done again until it holds: never acked undone
            finally:
                ctx.in_flight -= 1

    class Intake(IntakeService):
        """The intake loop, started once tables are recovered (its producer is the app's)."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(ctx, inputs.handle, **kwargs)
            built.intake = self

    app.service(Intake)

    @app.task
    async def quiet_loggers() -> None:
        """aiokafka and Faust build a debug record per message otherwise (filtered later, paid for now)."""
        for name in ("aiokafka", "faust", "mode", "kafka"):
            logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().getEffectiveLevel()))
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
        logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)  # GIL waits of the lag sampler's IO thread

    @app.task
    async def loop_watch() -> None:
        """How long work holds the worker's event loop (a metric, and a warning past 3 s)."""
        await watch_loop(ctx.metrics)

    @app.timer(tuning.commit_watch_s)
    async def lag_metric() -> None:
        """The worker's own consumer lag as a metric (sampled off the event loop)."""
        try:
            groups = await asyncio.get_running_loop().run_in_executor(None, own_lag, settings)
        except Exception as exc:  # monitoring must never stop the worker
            log.debug("lag sample failed: %s", exc)
            return
        for group in groups:
            for p in group.partitions:
                ctx.metrics.set("zhucan_consumer_lag", p.lag, topic=p.topic, partition=str(p.partition))
        # the same sample feeds the commit watch: a partition whose commits stopped is healed
        # (streams/runtime/applied.py CommitWatch), not only reported
        ours = [g for g in groups if g.group == settings.streams_app_id]
        committed = {(p.topic, p.partition): p.committed for g in ours for p in g.partitions if p.committed >= 0}
        held = held_partitions(app, settings.topics.person_commands)
        try:
            if not rebalancing(app):  # the tables restored first: their markers say how far they got
                await built.person.watch_commits(committed, held)
        except Exception as exc:  # the watch must never stop the worker; it looks again next time
            log.warning("commit watch failed: %s", exc)
        # and the progress watch: a held partition whose records wait while nothing moves
        # (streams/runtime/applied.py ProgressWatch), for both groups
        offsets = {p.partition: watched for g in ours for p in g.partitions
                   if p.topic == settings.topics.person_commands and p.partition in held
                   and (watched := progress_of(p)) is not None}
        intake = {(p.topic, p.partition): watched for g in groups if g.group == settings.app_id
                  for p in g.partitions if (watched := progress_of(p)) is not None}
        if rebalancing(app):  # partitions paused meanwhile: not stuck
            built.person.progress_watch.idle()
            offsets = {}
        try:
            stuck = await built.person.watch_progress(offsets)
            if built.intake is not None:
                stuck = await built.intake.watch_progress(intake) or stuck
        except Exception as exc:  # looked at again next time
            log.warning("progress watch failed: %s", exc)
            return
        if stuck:  # crash-only: what was not committed comes again to the new consumer
            log.error("a consumer fetches nothing although records wait, even after a seek: exiting with code %d "
                      "for the supervisor to start the worker again", EXIT_RESTART)
            logging.shutdown()
            os._exit(EXIT_RESTART)

    @app.timer(tuning.gap_retry_s)
    async def retry_rewinds() -> None:
        """A seek back over a gap that brought nothing is asked again (streams/runtime/applied.py)."""
        try:
            await built.person.retry_rewinds(held_partitions(app, settings.topics.person_commands))
        except Exception as exc:  # asked again at the next tick
            log.warning("retrying a seek back failed: %s", exc)

    @app.timer(tuning.ledger_publish_s)
    async def keep_ledger() -> None:
        """The ledger's builds and the totals' snapshots (streams/runtime/ledger.py)."""
        if rebalancing(app):  # partitions move or are restored: looked at again next time
            return
        try:
            await built.person.keep_ledger(held_partitions(app, settings.topics.person_commands))
        except Exception as exc:  # published at the next tick
            log.warning("ledger upkeep failed: %s", exc)

    queries = PersonQueries(ctx, lambda: held_partitions(app, settings.topics.person_commands))
    built.queries = queries

    async def say_policies() -> None:
        """The policy ids this worker decides with, on zhucan.worker-policies (``zhucan policy
        status``; REDECIDE and the preview are refused while running workers disagree), and
        where it answers person queries."""
        if settings.query_addr != "off" and not queries.url:
            host, _, port = settings.query_addr.rpartition(":")
            try:
                await queries.start(host.strip("[]") or "127.0.0.1", int(port or 0))
            except (OSError, ValueError) as exc:
                log.warning("person queries not served on %s: %s", settings.query_addr, exc)
        try:
            await ctx.send([policy_status_record(settings, book, query_url=queries.url)])
        except Exception as exc:  # said again at the next tick
            log.warning("could not publish this worker's policy ids: %s", exc)

    app.task(say_policies)  # at start
    app.timer(POLICY_STATUS_EVERY_S)(say_policies)  # and while it runs

    @app.timer(30.0)
    async def progress() -> None:
        summary = ctx.metrics.summary()
        if summary:
            log.info("progress: %s", summary)

    return built
