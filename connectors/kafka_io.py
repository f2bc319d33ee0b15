"""kafka-python helpers shared by the CLI, the demo, the simulators and the tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams.kafka.security import kafka_python_config


def make_producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    """A producer with acks=all and idempotence on, set explicitly."""
    config: dict[str, Any] = {
        **kafka_python_config(bootstrap),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "client_id": "zhucan-producer",
    }
    config.update(overrides)
    return KafkaProducer(**config)


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    timeout_s: float = 60.0,
    until: Callable[[list[Any]], bool] | None = None,
    idle_s: float | None = None,
) -> list[Any]:
    """Read ``topic`` from the beginning (no consumer group) and return its records.

    Stops when ``until(records)`` is true, after ``idle_s`` seconds without a new
    record (once at least one was read, or the deadline), or at ``timeout_s``.
    """
    records: list[Any] = []
    for batch in iter_topic(bootstrap, topic, timeout_s=timeout_s, idle_s=idle_s):
        records.extend(batch)
        if until is not None and until(records):
            break
    return records


def iter_topic(bootstrap: str, topic: str, *, timeout_s: float, idle_s: float | None = None) -> Iterator[list[Any]]:
    consumer = KafkaConsumer(**kafka_python_config(bootstrap), enable_auto_commit=False, group_id=None,
                             client_id="zhucan-reader", consumer_timeout_ms=500)
    try:
        deadline = time.monotonic() + timeout_s
        partitions = None
        while partitions is None and time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic)
            if parts:
                partitions = [TopicPartition(topic, p) for p in sorted(parts)]
            else:
                time.sleep(0.2)
        if partitions is None:
            raise TimeoutError(f"topic {topic} does not exist")
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=300)
            batch = [r for recs in polled.values() for r in recs]
            if batch:
                last_new = time.monotonic()
                yield batch
            else:
                yield []
                if idle_s is not None and time.monotonic() - last_new > idle_s:
                    return
    finally:
        consumer.close()


def read_to_end(bootstrap: str, topic: str, timeout_s: float = 120.0, only: set[int] | None = None) -> list[Any]:
    """Every record of ``topic`` (of its partitions ``only``, if given) up to the end offsets it
    has now (no consumer group).

    For reports over a topic as it stands (ledger, dead letters, changelog sizes): it stops
    at the end instead of guessing it from a quiet spell. A missing topic reads as empty.
    """
    consumer = KafkaConsumer(**kafka_python_config(bootstrap), enable_auto_commit=False, group_id=None,
                             client_id="zhucan-reader", max_poll_records=10000)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
                 if only is None or p in only]
        if not parts:
            return []
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} to its end took over {timeout_s:.0f}s")
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(records)
        return out
    finally:
        consumer.close()
