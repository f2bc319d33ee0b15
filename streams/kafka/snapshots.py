"""The ledger's totals as they stand: the last record of each partition of ``zhucan.ledger-totals``.

Each worker publishes its partitions' totals to the same partition of that topic
(``streams/runtime/ledger.py``), so what the ledger's totals are now is the last record of each
partition: read with one seek per partition, whatever the number of people. The reports, the
dashboard, ``zhucan ledger check`` and the worker's SETTLE read them here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from streams.domain.ledger import Totals, from_rows, merge
from streams.kafka.security import kafka_python_config


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(**kafka_python_config(bootstrap), enable_auto_commit=False, group_id=None,
                             client_id="zhucan-snapshot-reader")
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(parts).items()} if parts else {}
    finally:
        consumer.close()


def last_records(bootstrap: str, topic: str, timeout_s: float = 30.0) -> dict[int, Any]:
    """The last record of each partition of ``topic`` (a partition with none is left out; a
    missing topic reads as empty)."""
    consumer = KafkaConsumer(**kafka_python_config(bootstrap), enable_auto_commit=False, group_id=None,
                             client_id="zhucan-snapshot-reader")
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not parts:
            return {}
        consumer.assign(parts)
        ends = consumer.end_offsets(parts)
        waiting = {tp for tp in parts if ends[tp] > 0}
        for tp in waiting:
            consumer.seek(tp, ends[tp] - 1)
        consumer.pause(*(tp for tp in parts if tp not in waiting))
        found: dict[int, Any] = {}
        deadline = time.monotonic() + timeout_s
        while waiting:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading the last records of {topic} took over {timeout_s:.0f}s")
            for tp, records in consumer.poll(timeout_ms=500).items():
                for record in records:
                    if record.offset >= ends[tp] - 1:
                        found[tp.partition] = record
                if consumer.position(tp) >= ends[tp]:
                    waiting.discard(tp)
                    consumer.pause(tp)
        return found
    finally:
        consumer.close()


@dataclass
class LiveTotals:
    """The ledger's totals summed over the partitions' last snapshots."""

    totals: Totals = field(default_factory=dict)
    partitions: int = 0  # snapshots read
    expected: int = 0  # partitions of the person topic
    unbuilt: list[int] = field(default_factory=list)  # partitions whose ledger is still being built
    as_of_ms: int = 0  # the oldest snapshot's time
    behind: dict[int, int] = field(default_factory=dict)  # partition -> its commands not in the totals yet

    @property
    def missing(self) -> list[int]:
        return [p for p in range(self.expected) if p not in self._seen]

    _seen: set[int] = field(default_factory=set)

    def warnings(self) -> list[str]:
        out = []
        if self.missing:
            out.append(f"no totals yet from partition(s) {','.join(map(str, self.missing))} "
                       "(no worker has published them: are the workers running this version?)")
        if self.behind:
            out.append(f"the totals do not count the last {sum(self.behind.values())} command(s) of the person topic "
                       f"yet (partition(s) {','.join(map(str, sorted(self.behind)))}): the workers are still working, or none "
                       "of this version runs")
        if self.unbuilt:
            out.append(f"the ledger of partition(s) {','.join(map(str, self.unbuilt))} is still being built from the "
                       "person states: their totals are incomplete")
        return out


def summed(docs: dict[int, dict[str, Any]], partitions: int, ends: dict[int, int] | None) -> LiveTotals:
    """The partitions' snapshots (``docs``) summed; with ``ends`` (the person topic's end offset per
    partition), what each does not count yet: a snapshot behind its partition's commands, or none
    for a partition that has commands (one with none has nothing to count)."""
    live = LiveTotals(expected=partitions)
    for partition, doc in sorted(docs.items()):
        live._seen.add(partition)
        live.partitions += 1
        if not doc.get("built"):
            live.unbuilt.append(partition)
        live.as_of_ms = min(live.as_of_ms or doc["at_ms"], doc["at_ms"])
        merge(live.totals, from_rows(doc["rows"]))
        lag = (ends or {}).get(partition, 0) - (doc.get("next_offset") or 0)
        if ends is not None and lag > 0:
            live.behind[partition] = lag
    if ends is not None:
        for partition in live.missing:
            if ends.get(partition, 0) > 0:
                live.behind[partition] = ends[partition]
            else:
                live._seen.add(partition)
    return live


def read_totals(bootstrap: str, topic: str, partitions: int, commands: str | None = None,
                wait_s: float = 0.0) -> LiveTotals:
    """The totals summed over the partitions' last snapshots. With ``commands`` (the person
    topic), each snapshot's ``next_offset`` is compared with that partition's end: for up to
    ``wait_s`` the snapshots are read again until they count every command written so far
    (the workers publish every ``ledger_publish_s``), so that a report right after a command
    sees it; what is still missing then is said in ``behind``."""
    deadline = time.monotonic() + wait_s
    while True:
        ends = end_offsets(bootstrap, commands) if commands else {}
        docs = {p: json.loads(r.value) for p, r in last_records(bootstrap, topic).items()}
        live = summed(docs, partitions, ends if commands else None)
        if (not live.behind and not live.unbuilt) or time.monotonic() >= deadline:
            return live
        time.sleep(0.3)
