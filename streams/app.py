"""The worker: an aiokafka intake loop and a Faust app whose thin agents decode, call the domain, and publish.

Topology (names without the deployment prefix):

  identity.*.v1 ──intake──> zhucan.person-commands (keyed by person key) ──person──> fee-standard.v1
        │  └─ bad records ──> identity.rejected.v1                              └──> review.v1
        └─ undecodable ──> zhucan.dead-letter (headers: origin topic/partition/offset, error)
  payment-status.v1 ──acks──> zhucan.person-commands
  control.v1 ──control──> every partition of zhucan.person-commands (OPEN_YEAR, CHECK_COVERAGE)

The intake (streams/intake.py) is a plain aiokafka loop over whole fetches, consumer group
``ZHUCAN_APP_ID``; the other stages are Faust agents of the app ``<app id>-streams``, and
the person stage keeps its state in a Faust table (RocksDB by default, memory in tests).

All topics carry raw bytes: decoding happens inside the handlers with explicit
error handling, so a bad record is rejected or dead-lettered and the stream
goes on (an exception escaping an agent would ack and drop the message).
Processing is at-least-once; effects are idempotent through event ids, ack
ids and per-person-year versions kept in the person table.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import json
import logging
import time
import weakref
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from faust import streams as faust_streams
from faust.transport.drivers import aiokafka as faust_aiokafka

from schemas.codec import Codec
from schemas.exceptions import DecodeError
from schemas.registry import SchemaRegistryClient
from streams import batch
from streams.domain.categories import ControlKind, RejectionReason, Source
from streams.domain.ids import mask_id, normalize_id, opaque_key, person_key, scrub
from streams.domain.person import (
    Effect,
    FeeStandardIssued,
    PersonState,
    ReviewRaised,
    SuspectedFound,
    unknown_payment,
)
from streams.domain.policy import PolicyBook
from streams.domain.validation import Identity, Invalid, identity_from_command, validate_identity
from streams.intake import IntakeService
from streams.metrics import Metrics, serve_metrics
from streams.partitioning import partition_for
from streams.settings import Settings
from streams.store import PersonStore

log = logging.getLogger("zhucan.worker")

RAW = {"key_serializer": "raw", "value_serializer": "raw"}
CONTROL_KEY = "~control~"
# Faust's RocksDB defaults (3 x 64 MiB memtables and a 2 GiB block cache per partition) let a
# worker's memory grow to gigabytes on a province; a person's state is ~0.6 KiB, reads are
# point lookups of people seen recently, and the changelog is the durable copy.
ROCKSDB_OPTIONS = {"write_buffer_size": 16 * 1024**2, "max_write_buffer_number": 2, "block_cache_size": 64 * 1024**2,
                   "bloom_filter_size": 10}  # bits per key: most lookups are of people not seen yet
GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (CPython's default: 700)
PERSON_TAKE = 64  # records of zhucan.person-commands (mostly batch records) handled together
PERSON_WITHIN_S = 0.01  # or fewer, after this long
BATCH_KEY = "~batch~"  # record keys of batch records (the commands inside carry person keys)


class _IdempotentProducer(faust_aiokafka.Producer):
    """Faust enables idempotence only inside transactions; we want it always (acks=all)."""

    def _settings_extra(self) -> Any:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class _Transport(faust_aiokafka.Transport):
    Producer = _IdempotentProducer


class ZhucanApp(faust.App):
    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        return _Transport(self.conf.broker_producer, self)


def now_ms() -> int:
    return int(time.time() * 1000)


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


@dataclass(slots=True)
class Out:
    """One record to produce: what the pipeline decides, sent by whichever loop owns the input."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None
    timestamp_ms: int | None = None
    headers: list[tuple[str, bytes]] | None = None
    home: int | None = None  # the key's partition of zhucan.person-commands, if known (saves a murmur2)


class Pipeline:
    """What the stages do, kept apart from Faust and aiokafka so it reads as plain code.

    Each handler turns input records into a list of ``Out`` records; the loop that owns the
    input (the intake's aiokafka loop, or a Faust agent) sends them and only then lets the
    input's offset be committed.
    """

    def __init__(self, app: faust.App, settings: Settings, book: PolicyBook, codec: Codec) -> None:
        self.app = app
        self.settings = settings
        self.book = book
        self.codec = codec
        self.secret = settings.secret_bytes
        t = settings.topics
        self.names = t
        self._source_of = {topic: source for source, topic in t.identity.items()}
        n = settings.partitions
        self.payment_in = app.topic(t.payment_status, **RAW)
        self.commands = app.topic(t.person_commands, partitions=n, **RAW)
        self.control_in = app.topic(t.control, **RAW)
        schema = faust.Schema(key_type=bytes, value_type=bytes, **RAW)
        # Named under "zhucan." (CONTRACT.md); compacted only, never deleted by time.
        changelog = app.topic(
            t.person_changelog, schema=schema, partitions=n, compacting=True, deleting=False,
            acks=False, internal=True, maxsize=131_072, allow_empty=True,
        )
        self.people = app.Table("person", default=None, partitions=n, schema=schema, key_type=bytes,
                                value_type=bytes, changelog_topic=changelog, options=ROCKSDB_OPTIONS)
        self.store = PersonStore(self.people)
        self.metrics = Metrics()
        self.in_flight = 0  # batches and messages being handled right now (the drain on shutdown waits)
        self.intake_service: Any = None  # the intake loop, once the worker runs it
        self._partition_counts: dict[str, int] = {}
        self.fee_modes: Counter[str] = Counter()  # fee standards decided, not yet in the metrics
        self.fees_decided = 0  # fee standards decided since the start (never reset)

    async def emit(self, outs: list[Out], *, wait: bool = False) -> None:
        """Send records through the Faust app's producer (acks=all, idempotent), one produce
        batch per topic and partition rather than one call per record (order kept within a
        partition). With ``wait``, return only once the broker has acknowledged them all.

        At-least-once: Faust flushes this producer before it commits any offset, and the
        worker flushes it when it drains on shutdown. Changelog batches of the person table
        record their offsets as the table's persisted offsets (where RocksDB resumes)."""
        if not outs:
            return
        aio = self.app.producer._ensure_producer()  # the aiokafka producer Faust started
        groups: dict[tuple[str, int], list[Out]] = {}
        for o in outs:
            partition = o.partition
            if partition is None:
                n = self._partition_counts.get(o.topic) or await self._partition_count(aio, o.topic)
                if o.home is not None and n == self.settings.partitions:
                    partition = o.home  # what the default partitioner gives the key on a topic this size
                else:
                    partition = partition_for(o.key, n) if o.key is not None else 0
            groups.setdefault((o.topic, partition), []).append(o)
        futures = []
        for (topic, partition), items in groups.items():
            builder = aio.create_batch()
            count = 0
            for o in items:
                record = {"key": o.key, "value": o.value, "timestamp": o.timestamp_ms, "headers": o.headers or []}
                if builder.append(**record) is not None:
                    count += 1
                    continue
                if count:  # the batch is full: send it and start another
                    futures.append(await self._send_batch(aio, builder, topic, partition, count))
                    builder, count = aio.create_batch(), 0
                    if builder.append(**record) is not None:
                        count += 1
                        continue
                # larger than a produce batch on its own: a plain send (a failed append closed the builder)
                futures.append(await aio.send(topic, o.value, key=o.key, partition=partition,
                                              timestamp_ms=o.timestamp_ms, headers=o.headers))
                builder = aio.create_batch()
            if count:
                futures.append(await self._send_batch(aio, builder, topic, partition, count))
        if wait:
            await asyncio.gather(*futures)

    async def _send_batch(self, aio: Any, builder: Any, topic: str, partition: int, count: int) -> Any:
        future = await aio.send_batch(builder, topic, partition=partition)
        if topic == self.names.person_changelog:
            store = self.people.data

            def persisted(fut: Any) -> None:
                if not fut.cancelled() and fut.exception() is None:
                    meta = fut.result()
                    store.set_persisted_offset(meta.topic_partition, meta.offset + count - 1)

            future.add_done_callback(persisted)
        return future

    async def _partition_count(self, aio: Any, topic: str) -> int:
        partitions = await aio.client._wait_on_metadata(topic)
        self._partition_counts[topic] = n = len(partitions)
        return n

    async def save_states(self, partition: int, states: dict[bytes, bytes]) -> None:
        """Write changed person states to the table's store and, batched, to its changelog
        (the changelog partition is the person's partition of ``zhucan.person-commands``).
        Call only after the effects decided from these states were acknowledged."""
        if not states:
            return
        self.store.put_many(partition, states)
        await self.emit([Out(self.names.person_changelog, key, value, partition=partition)
                         for key, value in states.items()])

    # -- dead letters and rejections -----------------------------------------
    def dead_letter(self, msg: Any, error_class: str, message: str, inner: tuple[bytes, bytes] | None = None) -> Out:
        """A record (or, with ``inner``, one command of a batch record) for the dead-letter topic,
        with its origin. ``msg`` is any consumer record (topic, partition, offset, key, value)."""
        key, value = inner if inner is not None else (msg.key, msg.value)
        headers = [
            ("zhucan.origin.topic", msg.topic.encode()),
            ("zhucan.origin.partition", str(msg.partition).encode()),
            ("zhucan.origin.offset", str(msg.offset).encode()),
            ("zhucan.error.class", error_class.encode()),
            ("zhucan.error.message", scrub(message)[:1000].encode()),
            ("zhucan.failed.at", str(now_ms()).encode()),
        ]
        self.metrics.inc("zhucan_dead_letters_total", error_class=error_class)
        log.warning("dead-lettered %s[%d]@%d: %s: %s", msg.topic, msg.partition, msg.offset, error_class, scrub(message)[:200])
        return Out(self.names.dead_letter, key, value or b"", headers=headers)

    def rejection(self, *, event_id: str, source: str, raw_id: str, reasons: list[RejectionReason],
                  detail: str, key: str) -> Out:
        value = self.codec.encode("Rejection", {
            "event_id": event_id, "source": source, "id_number": raw_id, "reasons": [r.value for r in reasons],
            "detail": scrub(detail), "received_at": _utc(now_ms()),
        }, topic=self.names.rejected)
        for reason in reasons:
            self.metrics.inc("zhucan_rejections_total", reason=reason.value)
        log.info("rejected event %s from %s (id %s): %s", event_id, source, mask_id(raw_id),
                 ",".join(r.value for r in reasons))
        return Out(self.names.rejected, key.encode(), value)

    # -- intake of identity events -------------------------------------------
    def intake(self, records: Sequence[Any]) -> list[Out]:
        """A batch of department records -> rejections, dead letters, and one batch record per
        target partition of ``zhucan.person-commands`` (split when large), in input order.

        ``records`` are consumer records (topic, partition, offset, key, value, timestamp in ms).
        Nothing raises: a record whose handling fails is dead-lettered and the batch goes on."""
        outs: list[Out] = []
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        oldest: dict[int, int] = {}
        counts: Counter[str] = Counter()
        for msg in records:
            try:
                forward = self._intake_one(msg, outs, counts)
            except Exception as exc:  # a bug must not drop the record: keep it for replay
                log.exception("intake failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
                outs.append(self.dead_letter(msg, type(exc).__name__, scrub(str(exc))))
                continue
            if forward is not None:
                partition = self.partition_of(forward[0])
                by_partition.setdefault(partition, []).append(forward)
                ts = msg.timestamp
                oldest[partition] = min(oldest.get(partition, ts), ts)
        for partition, items in by_partition.items():
            # A batch keeps its oldest department timestamp: latency is measured from the event.
            for chunk in batch.pack_chunks(items):
                outs.append(Out(self.names.person_commands, f"{BATCH_KEY}{partition}".encode(), chunk,
                                partition=partition, timestamp_ms=oldest[partition]))
        for source, n in counts.items():
            self.metrics.inc("zhucan_events_in_total", n, source=source)
        return outs

    def _intake_one(self, msg: Any, outs: list[Out], counts: Counter[str]) -> tuple[bytes, bytes] | None:
        """One department record: rejected or dead-lettered into ``outs``, or returned as (person key, command)."""
        source = self._source_of.get(msg.topic, Source.CIVIL_AFFAIRS.value)
        try:
            _, raw = self.codec.decode(msg.value, expect="IdentityEvent")
        except DecodeError as exc:
            outs.append(self.dead_letter(msg, exc.reason, str(exc)))
            coord = f"{msg.topic}:{msg.partition}:{msg.offset}"
            outs.append(self.rejection(event_id=coord, source=source, raw_id="", reasons=[RejectionReason.SCHEMA],
                                       detail=f"undecodable record at {coord}: {exc}",
                                       key=opaque_key(coord, self.secret)))
            return None
        counts[source] += 1
        if raw["source"] != source:
            outs.append(self.rejection(
                event_id=raw["event_id"], source=source, raw_id=raw["id_number"], reasons=[RejectionReason.SCHEMA],
                detail=f"source {raw['source']} does not match topic {msg.topic} ({source})",
                key=self._key_for(raw["id_number"]),
            ))
            return None
        result = validate_identity(raw)
        if isinstance(result, Invalid):
            outs.append(self.rejection(event_id=raw["event_id"], source=source, raw_id=raw["id_number"],
                                       reasons=list(result.reasons), detail=result.detail,
                                       key=self._key_for(raw["id_number"])))
            return None
        return person_key(result.id_number, self.secret).encode(), batch.pack_identity(result)

    def _key_for(self, raw_id: str) -> str:
        id18, _ = normalize_id(raw_id)
        return person_key(id18, self.secret) if id18 else opaque_key(raw_id, self.secret)

    # -- intake of tax acknowledgements --------------------------------------
    async def on_payment(self, event: faust.EventT) -> None:
        msg = event.message
        try:
            _, ack = self.codec.decode(msg.value, expect="PaymentStatus")
        except DecodeError as exc:
            await self.emit([self.dead_letter(msg, exc.reason, str(exc))])
            return
        self.metrics.inc("zhucan_acks_in_total", status=ack["status"])
        id18, problem = normalize_id(ack["id_number"])
        if id18 is None:
            review = unknown_payment(ack, now_ms(), f"id {mask_id(ack['id_number'])} is not valid: {problem.detail if problem else ''}")
            await self.emit(self.effect_outs([review], opaque_key(ack["id_number"], self.secret)))
            return
        await self.emit([Out(self.names.person_commands, person_key(id18, self.secret).encode(),
                             self.codec.encode("PaymentStatus", {**ack, "id_number": id18}))])

    # -- the person aggregate -------------------------------------------------
    async def on_person_records(self, events: Sequence[faust.EventT]) -> None:
        """Records of the internal topic (batches of commands, or single ones), as taken together.

        Each command is applied to the person's state as it stood after the previous one
        (a command that fails leaves no trace: it is dead-lettered with its bytes). The
        outputs of all the records are sent and acknowledged first; then each changed
        person's state is written once, to the table's store and its changelog."""
        outs: list[Out] = []
        pending: dict[int, dict[bytes, bytes]] = {}  # partition -> person key -> state so far
        for event in events:
            msg = event.message
            fees_before = self.fees_decided
            with _as_current(event):  # the table's RocksDB store reads the partition from it
                try:
                    commands = list(batch.unpack(event.key, msg.value))
                except batch.BatchFormatError as exc:
                    outs.append(self.dead_letter(msg, "BATCH_FORMAT", str(exc)))
                    continue
                states = pending.setdefault(msg.partition, {})
                for key, value in commands:
                    try:
                        control = self.on_person_command(key, value, msg, outs, states)
                    except DecodeError as exc:
                        outs.append(self.dead_letter(msg, exc.reason, str(exc), inner=(key, value)))
                    except Exception as exc:  # a bug must not drop the command: keep it for replay
                        log.exception("person command failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
                        outs.append(self.dead_letter(msg, type(exc).__name__, scrub(str(exc)), inner=(key, value)))
                    else:
                        if control is not None:  # the scan must see every earlier command
                            await self._save(outs, pending, events)
                            await self.on_partition_control(control, msg.partition)
            fees = self.fees_decided - fees_before
            if fees and msg.timestamp:  # the department's record time to the decision, per fee standard
                self.metrics.observe_latency(max(0.0, time.time() - msg.timestamp), fees)
        await self._save(outs, pending, events)
        self.count_fees()

    def count_fees(self) -> None:
        """Move the fee standards counted since the last call into the metrics (once per batch)."""
        for mode, n in self.fee_modes.items():
            self.metrics.inc("zhucan_fee_standards_out_total", n, payment_mode=mode)
        self.fee_modes.clear()

    async def _save(self, outs: list[Out], pending: dict[int, dict[bytes, bytes]],
                    events: Sequence[faust.EventT]) -> None:
        """Effects first, acknowledged, and only then the states: a state that says "done" never
        exists without its effects on the broker (if they fail, a replay redoes the work, with
        the same message ids)."""
        sent, outs[:] = outs[:], []
        await self.emit(sent, wait=True)
        by_partition = {e.message.partition: e for e in events}
        for partition, states in pending.items():
            with _as_current(by_partition[partition]):
                await self.save_states(partition, states)
            states.clear()

    def on_person_command(self, key: bytes, data: bytes, msg: Any, outs: list[Out],
                          pending: dict[bytes, bytes]) -> dict[str, Any] | None:
        """Apply one command; a control command is returned for the caller to run."""
        identity: Identity | None = None
        payment: dict[str, Any] = {}
        if data[:3] == batch.IDENTITY:  # the intake's internal form (most commands)
            identity = batch.unpack_identity(data)
        else:
            name, value = self.codec.decode(data, expect=("IdentityEvent", "PaymentStatus", "ControlCommand"))
            if name == "ControlCommand":
                return value
            if name == "IdentityEvent":  # a replayed dead letter, or a record of an older version
                identity = identity_from_command(value)  # validated at the intake
            else:
                payment = value
        stored = pending.get(key) or self.store.get(msg.partition, key)
        state = PersonState.loads(stored) if stored else None
        pkey = key.decode()
        if identity is not None:
            state = state or PersonState(id_number=identity.id_number)
            effects = state.apply_identity(identity, self.book, pkey, now_ms())
        else:
            if state is None:
                outs += self.effect_outs([unknown_payment(payment, now_ms(), "no fee standard was ever issued to this person")], pkey)
                return None
            effects = state.apply_payment(payment, self.book, now_ms())
        outs += self.effect_outs(effects, pkey, home=msg.partition)
        pending[key] = state.dumps()
        return None

    # -- operators' commands ------------------------------------------------------
    async def on_control(self, event: faust.EventT) -> None:
        """Fan a control command out to every partition of the person topic: each scans its own people."""
        _, cmd = self.codec.decode(event.message.value, expect="ControlCommand")
        if cmd["command"] not in (ControlKind.OPEN_YEAR, ControlKind.CHECK_COVERAGE):
            log.warning("control %s %s is not implemented yet; ignored", cmd["command_id"], cmd["command"])
            return
        data = self.codec.encode("ControlCommand", cmd)
        await self.emit([Out(self.names.person_commands, f"{CONTROL_KEY}{partition}".encode(), data, partition=partition)
                         for partition in range(self.settings.partitions)])
        log.info("control %s %s region %s year %s fanned out to %d partitions", cmd["command_id"],
                 cmd["command"], cmd["region_code"], cmd["insurance_year"], self.settings.partitions)

    async def on_partition_control(self, cmd: dict[str, Any], partition: int) -> None:
        marker = f"{CONTROL_KEY}{cmd['command_id']}~{partition}".encode()
        if self.store.get(partition, marker) is not None:
            log.info("control %s partition %d: already done (redelivery)", cmd["command_id"], partition)
            return
        kind, region, year = cmd["command"], cmd["region_code"], int(cmd["insurance_year"])
        as_of = cmd["issued_at"].date()
        scanned = touched = 0
        outs: list[Out] = []
        changed: dict[bytes, bytes] = {}

        async def flush() -> None:
            sent, outs[:] = outs[:], []
            await self.emit(sent, wait=True)
            await self.save_states(partition, changed)
            changed.clear()

        for key, stored in list(self.people.items()):
            if key.startswith(CONTROL_KEY.encode()) or self.partition_of(key) != partition:
                continue
            state = PersonState.loads(stored)
            pkey = key.decode()
            if kind == ControlKind.OPEN_YEAR:
                effects = state.open_year(year, region, self.book, pkey, now_ms(), cmd["command_id"])
            else:
                effects = state.check_coverage(year, region, as_of, self.settings.coverage_grace_days)
            if effects:
                touched += 1
                outs += self.effect_outs(effects, pkey)
                if kind == ControlKind.OPEN_YEAR:
                    changed[key] = state.dumps()
            scanned += 1
            if scanned % 1000 == 0:
                await flush()
                log.info("control %s %s partition %d: %d people scanned, %d with output", cmd["command_id"],
                         kind, partition, scanned, touched)
        await flush()
        self.store.put_many(partition, {marker: b"done"})
        await self.emit([
            Out(self.names.person_changelog, marker, b"done", partition=partition),
            Out(self.names.control_progress, cmd["command_id"].encode(), json.dumps({
                "command_id": cmd["command_id"], "command": kind, "partition": partition, "scanned": scanned,
                "with_output": touched, "done": True}).encode()),
        ])
        self.count_fees()
        log.info("control %s %s region %s year %d partition %d done: %d people scanned, %d with output",
                 cmd["command_id"], kind, region, year, partition, scanned, touched)

    def partition_of(self, key: bytes) -> int:
        """The partition the producer's default partitioner gives ``key`` (murmur2, as in Java)."""
        return partition_for(key, self.settings.partitions)

    def effect_outs(self, effects: list[Effect], pkey: str, home: int | None = None) -> list[Out]:
        """The records that publish ``effects`` (``home``: the person's partition of the command
        topic, when known). Fee standards are counted in ``fee_modes`` (see ``count_fees``)."""
        outs: list[Out] = []
        key = pkey.encode()
        for effect in effects:
            if isinstance(effect, FeeStandardIssued):
                value = self.codec.encode("FeeStandard", effect.to_record(), topic=self.names.fee_standard)
                outs.append(Out(self.names.fee_standard, key, value, home=home))
                self.fee_modes[effect.payment_mode] += 1
                self.fees_decided += 1
            elif isinstance(effect, ReviewRaised):
                value = self.codec.encode("ReviewCase", effect.to_record(), topic=self.names.review)
                outs.append(Out(self.names.review, key, value, home=home))
                self.metrics.inc("zhucan_review_cases_total", kind=effect.kind)
                log.info("review case %s %s %s year %s (id %s)", effect.case_id, effect.kind, effect.code,
                         effect.insurance_year, mask_id(effect.id_number))
            elif isinstance(effect, SuspectedFound):
                value = self.codec.encode("SuspectedUnenrolled", effect.to_record(), topic=self.names.unenrolled)
                outs.append(Out(self.names.unenrolled, key, value, home=home))
                self.metrics.inc("zhucan_suspected_unenrolled_total")
        return outs


async def _guarded(pipeline: Pipeline, handler: Any, event: faust.EventT) -> Any:
    """Run one message's handler; any failure dead-letters the message and the stream goes on."""
    pipeline.in_flight += 1
    try:
        return await handler(event)
    except DecodeError as exc:
        await pipeline.emit([pipeline.dead_letter(event.message, exc.reason, str(exc))])
    except Exception as exc:  # a bug must not drop the message: keep it for replay
        log.exception("handler failed on %s[%d]@%d", event.message.topic, event.message.partition, event.message.offset)
        await pipeline.emit([pipeline.dead_letter(event.message, type(exc).__name__, scrub(str(exc)))])
    finally:
        pipeline.in_flight -= 1
    return None


def _safe_name(text: str) -> str:
    """A path component from a cluster id (base64url: letters, digits, - and _)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text) or "unknown"


@contextlib.contextmanager
def _as_current(event: faust.EventT) -> Iterator[None]:
    """Make ``event`` Faust's current event: its table stores take the partition from it."""
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def _agent_body(pipeline: Pipeline, handler: Any) -> Any:
    async def agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await _guarded(pipeline, handler, event)

    return agent


def create_app(settings: Settings, book: PolicyBook | None = None, cluster: str = "local") -> faust.App:
    """Build the worker's Faust app from settings; nothing connects until it starts."""
    book = book or PolicyBook.load(settings.policy_dir)
    registry = SchemaRegistryClient(settings.schema_registry_url) if settings.schema_registry_url else None
    codec = Codec(registry)
    datadir = settings.data_dir / settings.app_id / _safe_name(cluster)
    datadir.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    brokers = [f"kafka://{h.strip()}" for h in settings.kafka_bootstrap_servers.split(",") if h.strip()]
    app = ZhucanApp(
        settings.streams_app_id,
        broker=brokers,
        store=settings.store,
        # The table's local copy (RocksDB) is per Kafka cluster: after `zhucan kafka down --wipe`
        # the changelog starts again, and an old copy would say every person was already done.
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        producer_acks=-1,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        web_enabled=False,  # no /table view: state holds personal data
        stream_wait_empty=True,
        # A standby replica makes every worker read every other worker's changelog through
        # Faust's per-message path (measured: a tenth of a worker's time, and seconds of lag after
        # a province's batch). Failover instead restores from the compacted changelog.
        table_standby_replicas=settings.standby_replicas,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        # Throughput: fewer, larger fetches and produce requests (measured with `zhucan bench`).
        broker_max_poll_records=2000,
        consumer_max_fetch_size=8 * 1024 * 1024,
        stream_buffer_maxsize=16384,
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
    )
    pipeline = Pipeline(app, settings, book, codec)
    app.pipeline = pipeline  # type: ignore[attr-defined]

    # One agent per input, each with concurrency=1 (faust #606), decoding inside the agent.
    for channel, handler, name in (
        (pipeline.payment_in, pipeline.on_payment, "zhucan.acks"),
        (pipeline.control_in, pipeline.on_control, "zhucan.control"),
    ):
        app.agent(channel, concurrency=1, name=name)(_agent_body(pipeline, handler))

    @app.agent(pipeline.commands, concurrency=1, name="zhucan.person")
    async def person(stream: faust.StreamT) -> None:
        # Several batch records at a time: one wait for the broker's acks per take, not per record.
        # take_events acks the records only after this body has handled all of them.
        async for events in stream.take_events(PERSON_TAKE, within=PERSON_WITHIN_S):
            pipeline.in_flight += 1
            try:
                await pipeline.on_person_records(list(events))
            finally:
                pipeline.in_flight -= 1

    class Intake(IntakeService):
        """The intake loop (plain aiokafka, see streams/intake.py), started once tables are recovered."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(pipeline, settings, **kwargs)

    app.service(Intake)

    @app.task
    async def quiet_loggers() -> None:
        """aiokafka and Faust build a debug record per message otherwise (filtered later, paid for now)."""
        for name in ("aiokafka", "faust", "mode", "kafka"):
            logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().getEffectiveLevel()))
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
        logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)  # GIL waits of the lag sampler's IO thread

    @app.task
    async def heap_settled() -> None:
        """Once the worker runs (see settle_heap)."""
        settle_heap()

    @app.timer(15.0)
    async def own_lag() -> None:
        """The worker's own consumer lag as a metric (sampled off the event loop)."""
        try:
            groups = await asyncio.get_running_loop().run_in_executor(None, _own_lag, settings)
        except Exception as exc:  # monitoring must never stop the worker
            log.debug("lag sample failed: %s", exc)
            return
        for group in groups:
            for p in group.partitions:
                pipeline.metrics.set("zhucan_consumer_lag", p.lag, topic=p.topic, partition=str(p.partition))

    @app.timer(30.0)
    async def progress() -> None:
        summary = pipeline.metrics.summary()
        if summary:
            log.info("progress: %s", summary)

    return app


_monitors: dict[str, Any] = {}


def settle_heap() -> None:
    """Move the start-up heap (modules, Faust, the clients: ~100,000 objects that live as long
    as the worker) to the permanent generation, and collect the young generation every 20,000
    allocations instead of CPython's 700 (the older ones after 20 collections of the younger
    instead of 10). A fetch of 4,000 records allocates a few hundred
    thousand short-lived objects: with the defaults many lived through two young collections,
    and a full collection, scanning the whole heap and freeing nothing, ran every few seconds
    during a province's batch (50-190 ms each). Measured with `zhucan bench` (300,000 events,
    one worker, twice each): 111-119 µs of worker CPU per event instead of 128-135."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


def _own_lag(settings: Settings) -> list[Any]:
    from connectors.lag import LagMonitor

    monitor = _monitors.get("own")
    if monitor is None:
        monitor = _monitors["own"] = LagMonitor(settings.kafka_bootstrap_servers)
    monitor.sample(settings.worker_groups)
    return monitor.report(settings.worker_groups)


class ZhucanWorker(faust.Worker):
    """Drains before stopping: on SIGTERM/SIGINT the intake finishes and commits the fetch in
    hand and stops, no new message is handed to an agent, the ones being handled finish (their table writes while the tables still run), the producer
    is flushed, and only then does Faust's own shutdown begin. Messages fetched but not
    handled are not acked and come again after a restart (at-least-once)."""

    _draining = False

    def _schedule_shutdown(self, signal: Any) -> None:
        if self._draining:
            return
        self._draining = True
        app = self.app
        pipeline = app.pipeline  # type: ignore[attr-defined]
        app.flow_control.suspend()
        log.info("stopping: draining %d message(s) in flight", pipeline.in_flight)

        async def drain_then_stop() -> None:
            if pipeline.intake_service is not None:
                try:  # finishes and commits the fetch in hand, then fetches no more
                    await asyncio.wait_for(pipeline.intake_service.stop(), 20)
                except Exception as exc:  # stopping anyway; what was not committed comes again
                    log.warning("intake stop failed: %s", exc)
            deadline = time.monotonic() + 20
            while pipeline.in_flight and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            try:
                await asyncio.wait_for(app.producer.flush(), 15)
            except Exception as exc:  # stopping anyway; what was not acked comes again
                log.warning("producer flush on stop failed: %s", exc)
            faust.Worker._schedule_shutdown(self, signal)

        asyncio.ensure_future(drain_then_stop(), loop=self.loop)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT."""
    from connectors.topics import cluster_id, ensure_topics

    settings.warn_if_dev_secret()
    ensure_topics(settings)
    app = create_app(settings, cluster=cluster_id(settings))
    if settings.metrics_port >= 0:
        try:
            serve_metrics(app.pipeline.metrics, settings.metrics_host, settings.metrics_port)  # type: ignore[attr-defined]
        except OSError as exc:  # e.g. a second worker on the same host: it runs, without an endpoint
            log.warning("metrics endpoint off: cannot listen on %s:%d (%s); set ZHUCAN_METRICS_PORT",
                        settings.metrics_host, settings.metrics_port, exc)
    worker = ZhucanWorker(app, loglevel=loglevel)
    worker.execute_from_commandline()
