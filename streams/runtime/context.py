"""What every stage stands on: one plain object, built once by ``create_app`` and handed down.

A stage reads its parts from here and calls nothing above it (in the manner of quix-streams'
``ProcessingContext``). The parts:

- ``settings``, ``codec``, ``book`` (the policy book), ``topics``, ``departments``, ``secret``;
- ``emitter`` and ``send``: the emitter's ``emit`` (one produce batch per topic and partition; ``wait=True``
  returns once the broker acknowledged them all), and ``publisher`` (effects to records);
- ``store``: the person table (``streams/runtime/store.py``), and ``opened``: the years opened
  per partition, kept in it; ``ledger``: the ledger's lines and totals (``streams/runtime/ledger.py``);
- ``metrics``, ``clock`` (epoch ms), ``dead_letter`` (a record kept for replay);
- ``partition_of``: the default partitioner over the person topic;
- ``commands``: the person topic seen from the offset guards (a range read from the broker,
  the group's commit, a seek, a repair note).

A unit of work (``streams/runtime/unit.py``) is made from ``send``: ``ctx.unit(write)``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from schemas.codec import Codec
from streams.domain.departments import Departments
from streams.domain.ids import person_key
from streams.domain.newcomers import Newcomers
from streams.domain.policy.spec import PolicyBook
from streams.kafka.admin import group_offsets
from streams.kafka.topics import Topics
from streams.runtime.deadletter import dead_letter
from streams.runtime.emit import Emitter, Out
from streams.runtime.ledger import LedgerKeeper
from streams.runtime.metrics import Metrics
from streams.runtime.partitioning import partition_for
from streams.runtime.publish import Publisher
from streams.runtime.reader import Fetched, RangeReader
from streams.runtime.remembered import Remembered
from streams.runtime.store import PersonStore, opened_key
from streams.runtime.unit import Send, UnitOfWork, Write
from streams.settings import Settings

log = logging.getLogger("zhucan.worker")
K = TypeVar("K")
V = TypeVar("V")


def now_ms() -> int:
    return int(time.time() * 1000)


class OpenedYears:
    """The years opened in each partition, per region (CONTRACT rule 13: an identity that
    arrives after OPEN_YEAR counts up to that year as if it had come before). Kept in the
    person table under ``~opened~<partition>``, written with the OPEN_YEAR's done marker;
    read once per batch (``forget`` at a batch's start: partitions may have changed hands)."""

    def __init__(self, store: PersonStore) -> None:
        self.store = store
        self._opened: dict[int, dict[str, int]] = {}

    def of(self, partition: int) -> dict[str, int]:
        if partition not in self._opened:
            stored = self.store.get(partition, opened_key(partition))
            self._opened[partition] = json.loads(stored) if stored else {}
        return self._opened[partition]

    def with_year(self, partition: int, region: str, year: int) -> dict[bytes, bytes]:
        """The record that says ``year`` is opened for ``region`` (to write with the done marker);
        this worker sees it at once."""
        opened = dict(self.of(partition))
        opened[region] = max(year, opened.get(region, year))
        self._opened[partition] = opened
        return {opened_key(partition): json.dumps(opened, sort_keys=True).encode()}

    def forget(self) -> None:
        self._opened.clear()


class CommandLog:
    """The person topic as the offset guards see it (``streams/runtime/applied.py``)."""

    def __init__(self, settings: Settings, reader: RangeReader, seek: Callable[[str, int, int], Awaitable[None]],
                 metrics: Metrics) -> None:
        self.settings = settings
        self.topic = settings.topics.person_commands
        self.reader = reader
        self._seek = seek
        self.metrics = metrics

    async def read(self, partition: int, start: int, end: int) -> list[Fetched]:
        """Records ``[start, end)`` of a partition, read from the broker (a gap's records)."""
        return await self.reader.read(self.topic, partition, start, end)

    async def committed(self, partition: int) -> int | None:
        """The streams group's committed offset of a partition (None: never committed). Asked
        once per partition that has no applied-offset marker yet."""
        where = (self.topic, partition)
        found = await asyncio.get_running_loop().run_in_executor(
            None, group_offsets, self.settings.kafka_bootstrap_servers, self.settings.streams_app_id, [where])
        return found.get(where)

    async def log_start(self, partition: int) -> int:
        """The partition's first offset the broker holds (where a group that never committed has
        everything still to apply). Asked once per partition that has no applied-offset marker
        and no commit."""
        return await self.reader.log_start(self.topic, partition)

    async def rewind(self, partition: int, offset: int) -> None:
        await self._seek(self.topic, partition, offset)

    def repair(self, kind: str, partition: int, expected: int, seen: int, topic: str | None = None,
               group: str | None = None) -> Out:
        """Count what an offset guard did, and the note that says so (``zhucan.offset-repairs``;
        the dashboard lists them): ``expected`` is where the partition should go on from,
        ``seen`` the offset that showed the gap or the stall (``topic`` and ``group``: another
        input's, such as the intake's, instead of the person commands')."""
        topic = topic or self.topic
        self.metrics.inc("zhucan_offset_repairs_total", kind=kind, topic=topic, partition=str(partition))
        note = {"kind": kind, "topic": topic, "partition": partition, "expected": expected, "seen": seen,
                "at_ms": now_ms(), "group": group or self.settings.streams_app_id}
        return Out(self.settings.topics.offset_repairs, f"{topic}[{partition}]".encode(), json.dumps(note).encode())


@dataclass(eq=False)
class StageContext:
    settings: Settings
    codec: Codec
    book: PolicyBook
    topics: Topics
    departments: Departments
    secret: bytes
    emitter: Emitter
    send: Send  # the emitter's emit (a test puts a fake here)
    publisher: Publisher
    store: PersonStore
    opened: OpenedYears
    metrics: Metrics
    commands: CommandLog
    ledger: LedgerKeeper
    clock: Callable[[], int] = now_ms
    # the decisions of people seen for the first time, by what decides them (issue #25, part 2)
    newcomers: Newcomers = field(default_factory=lambda: Newcomers(0))
    # the next people of a remembered key, from their command's bytes (None: by the decoded order)
    remembered: Remembered | None = None
    in_flight: int = field(default=0)  # batches and fetches being handled (the drain on shutdown waits)
    # tests on real Kafka only (ZHUCAN_FAULTS die_scan): called after each commit of a partition scan
    scan_committed: Callable[[int, int], None] = field(default=lambda partition, people: None)
    # tests on real Kafka only (ZHUCAN_FAULTS die_sent): called with a unit's records once acknowledged
    after_send: Callable[[list[Out]], None] | None = None

    def dead_letter(self, msg: Any, error_class: str, message: str, inner: tuple[bytes, bytes] | None = None) -> Out:
        """The dead-letter record of ``msg`` (or of one command inside it), counted."""
        return dead_letter(self.topics.dead_letter, msg, error_class, message, self.metrics, inner)

    def for_person(self, id18: str, command: bytes) -> Out:
        """A command of ``zhucan.person-commands`` for the person of ``id18`` (keyed by their token)."""
        return Out(self.topics.person_commands, person_key(id18, self.secret).encode(), command)

    def partition_of(self, key: bytes) -> int:
        """The partition the producer's default partitioner gives ``key`` (murmur2, as in Java)."""
        return partition_for(key, self.settings.partitions)

    def unit(self, write: Write[K, V]) -> UnitOfWork[K, V]:
        """A unit of work whose changes ``write`` writes once its records are acknowledged."""
        return UnitOfWork(lambda outs, wait=False: self.send(outs, wait=wait), write, self.metrics, self.after_send)
