"""Records of a partition read straight from the broker, by offset, outside Faust's fetcher.

The person stage fills a gap in ``zhucan.person-commands`` with this (``streams/runtime/
applied.py``): a seek of Faust's consumer can meet the very race that made the gap (a record
fetched before the seek moves Faust's read offset past it again, and during a backlog that
repeats at every seek), so the missing records are read here, with a plain aiokafka consumer
that belongs to no group and commits nothing, and applied in order before the record that
showed the gap.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.security import aiokafka_config


@dataclass(frozen=True)
class Fetched:
    """A record read by offset, shaped as the stage reads a Faust message (timestamp in seconds)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class RangeReader:
    """Reads ``[start, end)`` of one partition; one consumer per worker, started on first use."""

    def __init__(self, bootstrap: str, client_id: str, fetch_bytes: int = 8 * 1024**2) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.fetch_bytes = fetch_bytes
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(**aiokafka_config(self.bootstrap), client_id=self.client_id, group_id=None,
                                        enable_auto_commit=False, auto_offset_reset="earliest",
                                        max_partition_fetch_bytes=self.fetch_bytes)
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def read(self, topic: str, partition: int, start: int, end: int, timeout_s: float = 30.0) -> list[Fetched]:
        """The records of ``topic[partition]`` from ``start`` up to (not including) ``end`` that
        the broker still holds, in order. Raises ``TimeoutError`` if they cannot all be read in
        ``timeout_s`` (the broker unreachable, say)."""
        if end <= start:
            return []
        async with self._lock:
            consumer = await self._ensure()
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, start)
            out: list[Fetched] = []
            deadline = time.monotonic() + timeout_s
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{topic}[{partition}] {start}-{end - 1}: read {len(out)} record(s) "
                                       f"in {timeout_s:.0f} s")
                batch = await consumer.getmany(tp, timeout_ms=int(min(left, 1.0) * 1000), max_records=1000)
                for record in batch.get(tp, []):
                    if record.offset >= end:
                        return out
                    out.append(_fetched(record))
                if await consumer.position(tp) >= end:  # also where the last offsets hold no record
                    return out

    async def log_start(self, topic: str, partition: int) -> int:
        """The first offset of ``topic[partition]`` the broker still holds."""
        async with self._lock:
            consumer = await self._ensure()
            tp = TopicPartition(topic, partition)
            return int((await consumer.beginning_offsets([tp]))[tp])

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


def _fetched(record: Any) -> Fetched:
    return Fetched(record.topic, record.partition, record.offset, record.key, record.value,
                   record.timestamp / 1000 if record.timestamp else 0.0, list(record.headers or []))
