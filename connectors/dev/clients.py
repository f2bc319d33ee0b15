"""The Kafka clients alone (``zhucan bench --clients``): the CPU each record costs to consume and
to produce, with the client and the calls the stages use, and with librdkafka.

Issue #25 names a C client (librdkafka) as a lever where the intake and the person stage move
records. What a C client can take off a worker is at most what the Python client costs per
record times the records a stage moves per event (the intake consumes one department record;
the person stage produces about three: the fee standard, the ledger line and the state on the
changelog). This measures that cost on the bench's own records, no processing:

- **aiokafka, as the stages use it**: the intake's ``getmany`` over whole fetches (its fetch
  sizes and ``Tuning.intake_max_records``), and the person stage's produce batches
  (``create_batch``/``send_batch`` per topic-partition, one wait for the acks per take of
  ``take`` records; acks=all, idempotent, the worker's linger and batch size);
- **librdkafka** (confluent-kafka): ``consume`` in fetches of the same size, and ``produce`` per
  record with a ``flush`` per take (the same settings).

CPU is the process's (every thread: librdkafka works in its own), from the first call to the
last ack. Each client reads and writes its own scratch topics, so neither reads a cache the
other warmed beyond the broker's page cache (both read the same records from it).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from connectors.dev.bench import (
    librdkafka,
    rdkafka_producer,
    remove_run,
    scratch_topics,
    synthetic_events,
)
from streams.kafka.security import aiokafka_config
from streams.runtime.emit import Out, send_in_batches
from streams.runtime.partitioning import partition_for
from streams.settings import Settings

TAKE = 4000  # records produced between two waits for the acks (the person stage: one take)
WAIT_S = 300.0  # for a client to read every record, then the run says how far it got
STATE_BYTES = 800  # a person's state on the changelog (the bench's state bytes per person: 570-790)


def _in_time(deadline: float, seen: int, n: int, client: str) -> None:
    if time.monotonic() > deadline:
        raise RuntimeError(f"zhucan bench --clients: {client} read {seen:,} of the {n:,} records in {WAIT_S:.0f} s")


def _cpu_us(n: int, run: Callable[[], None]) -> float:
    started = time.process_time()
    run()
    return round((time.process_time() - started) / n * 1e6, 2)


def measure_clients(settings: Settings, n: int, take: int = TAKE, keep_topics: bool = False) -> dict[str, Any]:
    """µs of CPU per record consumed and produced, by aiokafka (as the stages call it) and by
    librdkafka (None where it cannot run); ``n`` of the bench's department records. The scratch
    topics are deleted at the end unless ``keep_topics``."""
    run = uuid.uuid4().hex[:6]
    prefix = f"{settings.topics.prefix}bench-clients-{run}."
    try:
        return _measure(settings, n, take, run, prefix)
    finally:
        if not keep_topics:
            remove_run(settings.kafka_bootstrap_servers, prefix, f"zhucan-bench-clients-{run}")


def _measure(settings: Settings, n: int, take: int, run: str, prefix: str) -> dict[str, Any]:
    say = lambda msg: print(f"[bench --clients] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    partitions = settings.partitions
    src, out_aio, out_c = f"{prefix}src", f"{prefix}out-aiokafka", f"{prefix}out-librdkafka"
    scratch_topics(settings, [src, out_aio, out_c])
    say(f"generating {n:,} department records...")
    records = [(key, value) for _, key, value in synthetic_events(n)[0]]
    routed = [(partition_for(key, partitions), key, value) for key, value in records]
    bootstrap = settings.kafka_bootstrap_servers
    t = settings.tuning

    async def load() -> None:  # the records the consumers read, written once
        producer = AIOKafkaProducer(**aiokafka_config(bootstrap), acks="all", enable_idempotence=True,
                                    linger_ms=20, max_batch_size=512 * 1024)
        await producer.start()
        try:
            await _send_takes(producer, src, _takes(src, routed, len(routed)))
        finally:
            await producer.stop()

    async def consume_aiokafka() -> float:
        consumer = AIOKafkaConsumer(**aiokafka_config(bootstrap), group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", max_partition_fetch_bytes=t.intake_partition_fetch_bytes,
                                    fetch_max_bytes=t.intake_fetch_bytes)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(src, p) for p in range(partitions)])
            seen = 0
            started, deadline = time.process_time(), time.monotonic() + WAIT_S
            while seen < n:
                _in_time(deadline, seen, n, "aiokafka")
                for recs in (await consumer.getmany(timeout_ms=500, max_records=t.intake_max_records)).values():
                    for r in recs:  # what the intake reads of each
                        r.key, r.value, r.offset  # noqa: B018
                    seen += len(recs)
            return (time.process_time() - started) / n * 1e6
        finally:
            await consumer.stop()

    # the person stage writes larger records than the departments' (a state is ~800 bytes): produced
    # at both sizes
    padded = [(partition, key, value.ljust(STATE_BYTES, b"\0")) for partition, key, value in routed]

    async def produce_aiokafka(topic: str, rows: list[tuple[int, bytes, bytes]]) -> float:
        producer = AIOKafkaProducer(**aiokafka_config(bootstrap), acks="all", enable_idempotence=True,
                                    linger_ms=int(t.producer_linger_s * 1000), max_batch_size=t.producer_max_batch_size)
        await producer.start()
        takes = _takes(topic, rows, take)
        try:
            started = time.process_time()
            await _send_takes(producer, topic, takes)
            return (time.process_time() - started) / n * 1e6
        finally:
            await producer.stop()

    say(f"writing them to {src} ({partitions} partitions)...")
    asyncio.run(load())
    say("aiokafka: the intake's getmany, then the person stage's produce batches...")
    result: dict[str, Any] = {"records": n, "take": take, "partitions": partitions,
                              "topics": {"source": src, "aiokafka": out_aio, "librdkafka": out_c},
                              "group": f"zhucan-bench-clients-{run}",  # librdkafka's consumer group
                              "value_bytes_mean": round(sum(len(v) for _, _, v in routed) / n, 1)}
    result["consume_us_per_record_aiokafka"] = round(asyncio.run(consume_aiokafka()), 2)
    result["produce_us_per_record_aiokafka"] = round(asyncio.run(produce_aiokafka(out_aio, routed)), 2)
    result["produce_state_sized_us_per_record_aiokafka"] = round(asyncio.run(produce_aiokafka(out_aio, padded)), 2)
    ck = librdkafka()
    if ck is None:
        say("librdkafka: not measured (confluent-kafka missing, or a secured cluster)")
        for what in ("consume", "produce", "produce_state_sized"):
            result[f"{what}_us_per_record_librdkafka"] = None
        return result
    say("librdkafka: consume, then produce...")
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": f"zhucan-bench-clients-{run}",
                            "enable.auto.commit": False, "fetch.max.bytes": t.intake_fetch_bytes,
                            "max.partition.fetch.bytes": t.intake_partition_fetch_bytes})
    consumer.assign([ck.TopicPartition(src, p, ck.OFFSET_BEGINNING) for p in range(partitions)])

    def consume_c() -> None:
        seen, deadline = 0, time.monotonic() + WAIT_S
        while seen < n:
            _in_time(deadline, seen, n, "librdkafka")
            for msg in consumer.consume(num_messages=t.intake_max_records, timeout=0.5):
                if msg.error() is None:
                    msg.key(), msg.value(), msg.offset()
                    seen += 1

    try:
        result["consume_us_per_record_librdkafka"] = _cpu_us(n, consume_c)
    finally:
        consumer.close()
    producer = rdkafka_producer(ck, bootstrap, {"linger.ms": t.producer_linger_s * 1000,
                                                "batch.size": t.producer_max_batch_size,
                                                "queue.buffering.max.messages": max(100_000, 2 * take)})

    def produce_c(rows: list[tuple[int, bytes, bytes]]) -> Callable[[], None]:
        def run() -> None:
            for i in range(0, len(rows), take):
                for partition, key, value in rows[i:i + take]:
                    producer.produce(out_c, value=value, key=key, partition=partition)
                producer.flush(60)  # one wait for the acks per take
        return run

    result["produce_us_per_record_librdkafka"] = _cpu_us(n, produce_c(routed))
    result["produce_state_sized_us_per_record_librdkafka"] = _cpu_us(n, produce_c(padded))
    return result


def _takes(topic: str, routed: list[tuple[int, bytes, bytes]], take: int) -> list[dict[int, list[Out]]]:
    """The records as the person stage hands them to its sender: ``Out`` records, per take
    grouped per partition (built before the clock, outside what is measured)."""
    takes = []
    for i in range(0, len(routed), take):
        groups: dict[int, list[Out]] = {}
        for partition, key, value in routed[i:i + take]:
            groups.setdefault(partition, []).append(Out(topic, key, value, partition=partition))
        takes.append(groups)
    return takes


async def _send_takes(producer: AIOKafkaProducer, topic: str, takes: list[dict[int, list[Out]]]) -> None:
    """As the person stage sends: per take, each partition's records by the stages' own
    ``send_in_batches``, then one wait for the acks."""
    async def send_batch(aio: Any, builder: Any, topic: str, partition: int, count: int) -> Any:
        return await aio.send_batch(builder, topic, partition=partition)

    for groups in takes:
        futures = []
        for partition, items in groups.items():
            futures += await send_in_batches(producer, topic, partition, items, send_batch)
        await asyncio.gather(*futures)


def print_clients(found: dict[str, Any]) -> None:
    def us(v: float | None) -> str:
        return "not measured" if v is None else f"{v:.2f} µs"

    print(f"{'records':<40} {found['records']:,} ({found['value_bytes_mean']} bytes each on average)")
    for what, said in (("consume", "consume"), ("produce", "produce"),
                       ("produce_state_sized", f"produce {STATE_BYTES} B")):
        for client in ("aiokafka", "librdkafka"):
            print(f"{said + ' CPU per record, ' + client:<40} {us(found[f'{what}_us_per_record_{client}'])}")
