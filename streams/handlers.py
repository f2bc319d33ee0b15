"""What the worker does with each kind of message, in one place.

- ``COMMANDS``: the one map from a person command's type (``Identity``, ``PaymentAck``) to the
  domain function that applies it; a ``Control`` is run by the control stage over a partition.
- ``EFFECTS``: the one map from an effect's type to the topic and record that publish it.
- ``Pipeline``: the parts every stage shares (codec, policy book, topics, emitter, person
  store, metrics), built once by ``create_app``. The stages (``streams/stages/``) are thin:
  decode, call the domain, publish. One unit of work everywhere: effects acknowledged by the
  broker, then state written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import faust

from schemas.codec import Codec
from streams.domain.identity import Identity
from streams.domain.ids import mask_id, scrub
from streams.domain.messages import (
    Control,
    Effect,
    FeeStandardIssued,
    PaymentAck,
    ReviewRaised,
    SuspectedFound,
)
from streams.domain.person import PersonState, unknown_payment
from streams.domain.policy.spec import PolicyBook
from streams.kafka.admin import group_offsets
from streams.runtime.applied import CommitWatch
from streams.runtime.deadletter import dead_letter
from streams.runtime.emit import Emitter, Out
from streams.runtime.faust_compat import held_partitions, seek_partition
from streams.runtime.metrics import Metrics
from streams.runtime.partitioning import partition_for
from streams.runtime.reader import Fetched, RangeReader
from streams.runtime.store import PersonStore
from streams.settings import Settings
from streams.stages.control import ControlStage
from streams.stages.intake import IntakeStage
from streams.stages.payments import PaymentStage
from streams.stages.person import PersonStage

log = logging.getLogger("zhucan.worker")
RAW: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}

# A person command's type -> how it changes the state (returns the effects).
# ``opened``: the years opened in the person's partition, per region (ControlStage.opened).
Apply = Callable[[PersonState, Any, PolicyBook, str, int, Mapping[str, int]], list[Effect]]
COMMANDS: dict[type, Apply] = {
    Identity: lambda state, ident, book, pkey, now, opened: state.apply_identity(ident, book, pkey, now, opened),
    PaymentAck: lambda state, ack, book, pkey, now, opened: state.apply_payment(ack, book, now),
}
# An effect's type -> (the Topics attribute it goes to, its record in schemas/).
EFFECTS: dict[type, tuple[str, str]] = {
    FeeStandardIssued: ("fee_standard", "FeeStandard"),
    ReviewRaised: ("review", "ReviewCase"),
    SuspectedFound: ("unenrolled", "SuspectedUnenrolled"),
}


class Pipeline:
    def __init__(self, app: faust.App, settings: Settings, book: PolicyBook, codec: Codec) -> None:
        self.app = app
        self.settings = settings
        self.book = book
        self.codec = codec
        self.secret = settings.secret_bytes
        self.names = t = settings.topics
        self.departments = settings.registry
        n = settings.partitions
        self.commands = app.topic(t.person_commands, partitions=n, **RAW)
        schema: faust.Schema = faust.Schema(key_type=bytes, value_type=bytes, **RAW)
        # Named under "zhucan." (CONTRACT.md); compacted only, never deleted by time.
        rf, min_isr = settings.replication_factor or 1, settings.min_insync_replicas or 1
        changelog = app.topic(  # created beforehand by ensure_topics with the same settings
            t.person_changelog, schema=schema, partitions=n, compacting=True, deleting=False,
            acks=False, internal=True, maxsize=131_072, allow_empty=True, replicas=rf,
            config={"min.insync.replicas": str(min_isr)},
        )
        self.people = app.Table("person", default=None, partitions=n, schema=schema, key_type=bytes,
                                value_type=bytes, changelog_topic=changelog,
                                options=settings.tuning.rocksdb_options)
        self.emitter = Emitter(app, n)
        self.store = PersonStore(self.people, self.emitter, t.person_changelog)
        self.metrics = Metrics()
        self.in_flight = 0  # batches and messages being handled right now (the drain on shutdown waits)
        self.intake_service: Any = None  # the intake loop, once the worker runs it
        self.fee_modes: Counter[str] = Counter()  # fee standards decided, not yet in the metrics
        self.fees_decided = 0  # fee standards decided since the start (never reset)
        self.intake_stage = IntakeStage(self)
        self.person = PersonStage(self)
        self.payments = PaymentStage(self)
        self.control = ControlStage(self)
        self.commit_watch = CommitWatch(stall_s=settings.tuning.commit_stall_s)
        self.reader = RangeReader(settings.kafka_bootstrap_servers, f"{settings.app_id}-gap-reader",
                                  settings.tuning.max_fetch_size)

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)

    async def emit(self, outs: list[Out], *, wait: bool = False) -> None:
        await self.emitter.emit(outs, wait=wait)

    def intake(self, records: Sequence[Any]) -> list[Out]:
        """A fetch of the intake loop: the departments' records to the intake stage, tax's
        acknowledgements to the payments stage, operators' commands to the control stage."""
        by_topic = {self.names.payment_status: self.payments.forward, self.names.control: self.control.fan_out}
        departments: list[Any] = []
        outs: list[Out] = []
        for msg in records:
            handler = by_topic.get(msg.topic)
            if handler is None:
                departments.append(msg)
                continue
            try:
                outs += handler(msg)
            except Exception as exc:  # a bug must not drop the record: keep it for replay
                log.exception("handling failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
                outs.append(self.dead_letter(msg, type(exc).__name__, scrub(str(exc))))
        return self.intake_stage.intake(departments) + outs

    def dead_letter(self, msg: Any, error_class: str, message: str, inner: tuple[bytes, bytes] | None = None) -> Out:
        return dead_letter(self.names.dead_letter, msg, error_class, message, self.metrics, inner)

    def partition_of(self, key: bytes) -> int:
        """The partition the producer's default partitioner gives ``key`` (murmur2, as in Java)."""
        return partition_for(key, self.settings.partitions)

    def apply(self, key: bytes, command: Identity | PaymentAck, partition: int,
              pending: dict[bytes, bytes]) -> list[Out]:
        """Apply one person command to the state as it stands in ``pending`` (or the store);
        the new state goes to ``pending``, the effects' records are returned."""
        stored = pending.get(key) or self.store.get(partition, key)
        state = PersonState.loads(stored) if stored else None
        pkey = key.decode()
        if state is None:
            if isinstance(command, PaymentAck):
                return self.publish([unknown_payment(command, self.now_ms(),
                                                     "no fee standard was ever issued to this person")], pkey)
            state = PersonState(id_number=command.id_number)
        effects = COMMANDS[type(command)](state, command, self.book, pkey, self.now_ms(),
                                          self.control.opened(partition))
        outs = self.publish(effects, pkey, home=partition)
        pending[key] = state.dumps()  # only once it all succeeded: a failed command leaves no trace
        return outs

    def publish(self, effects: list[Effect], pkey: str, home: int | None = None) -> list[Out]:
        """The records that publish ``effects`` (``home``: the person's partition of the command
        topic, when known). Fee standards are counted in ``fee_modes`` (see ``count_fees``)."""
        outs: list[Out] = []
        key = pkey.encode()
        for effect in effects:
            attr, record = EFFECTS[type(effect)]
            topic = getattr(self.names, attr)
            outs.append(Out(topic, key, self.codec.encode(record, effect.to_record(), topic=topic), home=home))
            if isinstance(effect, FeeStandardIssued):
                self.fee_modes[effect.payment_mode] += 1
                self.fees_decided += 1
            elif isinstance(effect, ReviewRaised):
                self.metrics.inc("zhucan_review_cases_total", kind=effect.kind)
                log.info("review case %s %s %s year %s (id %s)", effect.case_id, effect.kind, effect.code,
                         effect.insurance_year, mask_id(effect.id_number))
            else:
                self.metrics.inc("zhucan_suspected_unenrolled_total")
        return outs

    async def read_commands(self, partition: int, start: int, end: int) -> list[Fetched]:
        """Records ``[start, end)`` of a partition of the command topic, read from the broker
        (a gap's records, ``streams/runtime/reader.py``)."""
        return await self.reader.read(self.names.person_commands, partition, start, end)

    async def committed_command_offset(self, partition: int) -> int | None:
        """The streams group's committed offset of a partition of the command topic (None: never
        committed). Asked once per partition that has no applied-offset marker yet."""
        where = (self.names.person_commands, partition)
        found = await asyncio.get_running_loop().run_in_executor(
            None, group_offsets, self.settings.kafka_bootstrap_servers, self.settings.streams_app_id, [where])
        return found.get(where)

    async def rewind_commands(self, partition: int, offset: int) -> None:
        await seek_partition(self.app, self.names.person_commands, partition, offset)

    async def offset_repair(self, kind: str, partition: int, expected: int, seen: int,
                            topic: str | None = None) -> None:
        """Count what an offset guard did and publish it (``zhucan.offset-repairs``; the
        dashboard lists them): ``expected`` is where the partition should go on from,
        ``seen`` the offset that showed the gap or the stall."""
        topic = topic or self.names.person_commands
        self.metrics.inc("zhucan_offset_repairs_total", kind=kind, topic=topic, partition=str(partition))
        note = {"kind": kind, "topic": topic, "partition": partition, "expected": expected, "seen": seen,
                "at_ms": self.now_ms(), "group": self.settings.streams_app_id}
        try:
            await self.emit([Out(self.names.offset_repairs, f"{topic}[{partition}]".encode(),
                                 json.dumps(note).encode())])
        except Exception as exc:  # the note is for people; the repair itself is done
            log.warning("could not publish the offset repair note: %s", exc)

    async def watch_commits(self, committed: dict[tuple[str, int], int]) -> None:
        """Heal the partitions of the person topic this worker holds whose commits stopped
        (``CommitWatch``), judged by the person stage's applied marker (the only Faust agent:
        the other inputs are read by the intake's aiokafka loop)."""
        if self.person.busy_for() > 1.0:  # a long batch (a control scan) commits when it ends
            return
        topic = self.names.person_commands
        held: dict[tuple[str, int], int] = {}
        for partition in held_partitions(self.app, topic):
            progress = self.person.nexts.get(partition)
            if (topic, partition) in committed and progress is not None:
                held[(topic, partition)] = progress
        for (topic, partition), at, progress in self.commit_watch.observe(
                {tp: committed[tp] for tp in held}, held):
            log.warning("%s[%d]: commits stuck at %d for %.0f s while records up to %d were handled; "
                        "seeking back to %d", topic, partition, at, self.commit_watch.stall_s, progress - 1, at)
            await seek_partition(self.app, topic, partition, at)
            await self.offset_repair("COMMIT_STALL", partition, at, progress, topic=topic)

    async def run_control(self, cmd: Control, partition: int) -> None:
        await self.control.run(cmd, partition)

    def count_fees(self) -> None:
        """Move the fee standards counted since the last call into the metrics (once per batch)."""
        for mode, n in self.fee_modes.items():
            self.metrics.inc("zhucan_fee_standards_out_total", n, payment_mode=mode)
        self.fee_modes.clear()
