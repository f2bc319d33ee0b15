"""Sending what the stages decide: produce batches per topic and partition, through the app's producer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import faust

from streams.runtime.faust_compat import aiokafka_producer, partitions_of
from streams.runtime.partitioning import partition_for


@dataclass(slots=True)
class Out:
    """One record to produce: what a stage decides, sent by whichever loop owns the input."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None
    timestamp_ms: int | None = None
    headers: list[tuple[str, bytes]] | None = None
    home: int | None = None  # the key's partition of zhucan.person-commands, if known (saves a murmur2)


class Emitter:
    """Sends ``Out`` records through the Faust app's producer (acks=all, idempotent), one
    produce batch per topic and partition rather than one call per record (order kept within
    a partition).

    At-least-once: Faust flushes this producer before it commits any offset, and the worker
    flushes it when it drains on shutdown. ``on_sent(topic)`` may return a callback that gets
    each acknowledged batch's (metadata, count): the person table records its changelog
    offsets that way."""

    def __init__(self, app: faust.App, partitions: int) -> None:
        self.app = app
        self.partitions = partitions
        self._partition_counts: dict[str, int] = {}
        self.on_sent: dict[str, Callable[[Any, int], None]] = {}

    async def emit(self, outs: list[Out], *, wait: bool = False) -> None:
        """Send ``outs``; with ``wait``, return only once the broker has acknowledged them all."""
        if not outs:
            return
        aio = aiokafka_producer(self.app)
        groups: dict[tuple[str, int], list[Out]] = {}
        for o in outs:
            partition = o.partition
            if partition is None:
                n = self._partition_counts.get(o.topic) or await self._partition_count(aio, o.topic)
                if o.home is not None and n == self.partitions:
                    partition = o.home  # what the default partitioner gives the key on a topic this size
                else:
                    partition = partition_for(o.key, n) if o.key is not None else 0
            groups.setdefault((o.topic, partition), []).append(o)
        futures = []
        for (topic, partition), items in groups.items():
            futures += await send_in_batches(aio, topic, partition, items, self._send_batch)
        if wait:
            await asyncio.gather(*futures)

    async def _send_batch(self, aio: Any, builder: Any, topic: str, partition: int, count: int) -> Any:
        future = await aio.send_batch(builder, topic, partition=partition)
        callback = self.on_sent.get(topic)
        if callback is not None:
            def sent(fut: Any) -> None:
                if not fut.cancelled() and fut.exception() is None:
                    callback(fut.result(), count)

            future.add_done_callback(sent)
        return future

    async def _partition_count(self, aio: Any, topic: str) -> int:
        self._partition_counts[topic] = n = len(await partitions_of(aio, topic))
        return n


SendBatch = Callable[[Any, Any, str, int, int], Awaitable[Any]]  # (producer, builder, topic, partition, count)


async def send_in_batches(aio: Any, topic: str, partition: int, items: list[Out], send_batch: SendBatch) -> list[Any]:
    """``items`` of one topic-partition as produce batches (another when one fills; a record
    larger than a batch on its own by a plain send), in order: the futures of their acks.
    ``send_batch`` sends a full builder (``Emitter._send_batch``; ``zhucan bench --clients``
    measures this same path)."""
    futures = []
    builder = aio.create_batch()
    count = 0
    for o in items:
        record = {"key": o.key, "value": o.value, "timestamp": o.timestamp_ms, "headers": o.headers or []}
        if builder.append(**record) is not None:
            count += 1
            continue
        if count:  # the batch is full: send it and start another
            futures.append(await send_batch(aio, builder, topic, partition, count))
            builder, count = aio.create_batch(), 0
            if builder.append(**record) is not None:
                count += 1
                continue
        # larger than a produce batch on its own: a plain send (a failed append closed the builder)
        futures.append(await aio.send(topic, o.value, key=o.key, partition=partition,
                                      timestamp_ms=o.timestamp_ms, headers=o.headers))
        builder = aio.create_batch()
    if count:
        futures.append(await send_batch(aio, builder, topic, partition, count))
    return futures
