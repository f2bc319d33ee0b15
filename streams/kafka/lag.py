"""Consumer lag, evaluated over a sliding window in the manner of Burrow.

Per partition, samples of (committed offset, end offset) are kept; the status is:

- OK      lag is zero somewhere in the window (an idle group that caught up never alarms),
          or the latest lag is within the allowed lag, or the consumer is catching up;
- REWIND  the committed offset went backwards;
- STOP    lag > allowed and the group has no active member (nobody consumes);
- STALL   members are present, lag > allowed, and the committed offset has not moved in the window;
- WARN    the offset moves but the lag grew at every step of the window (falling behind).

A group's status is the worst of its partitions. Works against any Kafka through
kafka-python's admin client; no broker-side plugin.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec

from streams.kafka.security import kafka_python_config
from streams.settings import Settings

_NEVER = type("Never", (), {"offset": -1})()  # an OffsetAndMetadata stand-in: no commit yet
SEVERITY = {"OK": 0, "WARN": 1, "REWIND": 2, "STALL": 3, "STOP": 4}
WINDOW = 10  # samples kept per partition


@dataclass(frozen=True)
class Sample:
    at: float
    committed: int  # -1 when the group has never committed on the partition
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - max(self.committed, 0))


def evaluate(samples: Sequence[Sample], allowed_lag: int, active_members: int) -> str:
    """Burrow-style status of one partition from its samples (oldest first)."""
    if not samples:
        return "OK"
    if any(s.lag == 0 for s in samples):
        return "OK"
    offsets = [s.committed for s in samples]
    if any(b < a for a, b in zip(offsets, offsets[1:], strict=False)):
        return "REWIND"
    latest = samples[-1]
    if latest.lag <= allowed_lag:
        return "OK"
    if active_members == 0:
        return "STOP"
    if len(samples) < 2:
        return "OK"  # not enough evidence yet
    if offsets[0] == offsets[-1]:
        return "STALL"
    lags = [s.lag for s in samples]
    if all(b > a for a, b in zip(lags, lags[1:], strict=False)):
        return "WARN"
    return "OK"


@dataclass
class PartitionLag:
    topic: str
    partition: int
    committed: int
    end: int
    lag: int
    seconds_behind: float | None  # None when the report was asked without ages (``report(ages=False)``)
    status: str
    # where the partition's records start (its log start offset), read only where the group never
    # committed: what a consumer that never committed must still take in is from here to ``end``
    start: int = 0


@dataclass
class GroupLag:
    group: str
    state: str
    members: int
    status: str
    total_lag: int
    partitions: list[PartitionLag] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class LagMonitor:
    """Samples groups' committed and end offsets and keeps a sliding window per partition."""

    def __init__(self, bootstrap: str, allowed_lag: int = 1000, window: int = WINDOW) -> None:
        self.bootstrap = bootstrap
        self.allowed_lag = allowed_lag
        self.window = window
        self.admin = KafkaAdminClient(**kafka_python_config(bootstrap, client_id="zhucan-lag"))
        # Faust's group carries its own assignor's member metadata, which kafka-python cannot
        # decode and would print whole (bytes of topic names) at every sample.
        logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
        self.samples: dict[tuple[str, TopicPartition], deque[Sample]] = {}
        self._groups: dict[str, tuple[str, int]] = {}
        self._starts: dict[TopicPartition, int] = {}  # log start offsets of partitions a group never committed on
        self._consumer: KafkaConsumer | None = None

    def close(self) -> None:
        self.admin.close()
        if self._consumer is not None:
            self._consumer.close()

    def groups(self) -> list[str]:
        return sorted(g["group_id"] for g in self.admin.list_groups() if g.get("protocol_type") in ("consumer", ""))

    def sample(self, groups: Sequence[str]) -> None:
        now = time.time()
        described = self.admin.describe_groups(list(groups)) if groups else {}
        committed_by_group = self.admin.list_group_offsets({g: None for g in groups}) if groups else {}
        # A partition the group never committed on still counts: its whole content is lag.
        partitions = self._partitions({tp.topic for offsets in committed_by_group.values() for tp in offsets})
        for offsets in committed_by_group.values():
            for topic in {tp.topic for tp in offsets}:
                for partition in partitions.get(topic, ()):
                    offsets.setdefault(TopicPartition(topic, partition), _NEVER)
        all_tps = {tp for offsets in committed_by_group.values() for tp in offsets}
        ends = self.admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in all_tps}) if all_tps else {}
        never = {tp for offsets in committed_by_group.values() for tp, meta in offsets.items() if int(meta.offset) < 0}
        starts = self.admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in never}) if never else {}
        self._starts = {tp: int(found.offset) for tp, found in starts.items()}
        for group in groups:
            info = described.get(group, {})
            self._groups[group] = (str(info.get("group_state", "Unknown")), len(info.get("members") or []))
            for tp, meta in committed_by_group.get(group, {}).items():
                window = self.samples.setdefault((group, tp), deque(maxlen=self.window))
                window.append(Sample(now, int(meta.offset), int(ends[tp].offset) if tp in ends else 0))

    def _partitions(self, topics: set[str]) -> dict[str, list[int]]:
        """The partitions of ``topics``, from one metadata request naming them (not the whole
        cluster's metadata, which a consumer's ``partitions_for_topic`` fetched: on a broker
        holding thousands of topics its parsing was most of what the sampler cost a worker)."""
        if not topics:
            return {}
        return {t["name"]: sorted(p["partition_index"] for p in t["partitions"])
                for t in self.admin.describe_topics(sorted(topics)) if not t["error_code"]}

    def _peek(self) -> KafkaConsumer:
        if self._consumer is None:
            # It reads one record per lagging partition: small fetches (the broker still sends
            # the first record batch whole), not the default 1 MiB per partition, parsed in
            # full, which cost a worker a few percent of its time while a province's batch waits.
            self._consumer = KafkaConsumer(**kafka_python_config(self.bootstrap), group_id=None,
                                           enable_auto_commit=False, client_id="zhucan-lag-peek",
                                           max_partition_fetch_bytes=16 * 1024, fetch_max_bytes=64 * 1024)
        return self._consumer

    def _seconds_behind(self, tp: TopicPartition, committed: int, lag: int) -> float:
        """Age of the oldest unconsumed record (from its timestamp); 0 when there is none."""
        if lag <= 0:
            return 0.0
        consumer = self._peek()
        consumer.assign([tp])
        if committed < 0:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)
        polled = consumer.poll(timeout_ms=2000, max_records=1)
        for records in polled.values():
            if records and records[0].timestamp > 0:
                return max(0.0, time.time() - records[0].timestamp / 1000)
        return 0.0

    def report(self, groups: Sequence[str], ages: bool = True) -> list[GroupLag]:
        """The last sample of ``groups``, judged. ``ages``: also each lagging partition's
        ``seconds_behind``, which reads the oldest waiting record (a fetch per lagging partition,
        up to a whole batch record of ``zhucan.person-commands``); without it, None."""
        out = []
        for group in groups:
            state, members = self._groups.get(group, ("Unknown", 0))
            parts = []
            for (g, tp), window in sorted(self.samples.items(), key=lambda kv: (kv[0][1].topic, kv[0][1].partition)):
                if g != group:
                    continue
                last = window[-1]
                parts.append(PartitionLag(
                    topic=tp.topic, partition=int(tp.partition), committed=last.committed, end=last.end,
                    lag=last.lag,
                    seconds_behind=round(self._seconds_behind(tp, last.committed, last.lag), 1) if ages else None,
                    status=evaluate(list(window), self.allowed_lag, members),
                    start=self._starts.get(tp, 0) if last.committed < 0 else 0,
                ))
            worst = max((p.status for p in parts), key=SEVERITY.__getitem__, default="OK")
            out.append(GroupLag(group=group, state=state, members=members, status=worst,
                                total_lag=sum(p.lag for p in parts), partitions=parts))
        return out


def progress_of(p: PartitionLag) -> tuple[int, int] | None:
    """What the progress watch judges a partition by (streams/runtime/applied.py ProgressWatch):
    (where the group stands, end). The committed offset; for a partition the group never
    committed on, its log start offset, so that records waiting there since the start count too
    (a full suite run found a worker holding such a partition for minutes with its one record
    never taken in, and the watch blind to it). None when there is nothing to watch: never
    committed, and no record there."""
    if p.committed >= 0:
        return p.committed, p.end
    if p.end > p.start:
        return p.start, p.end
    return None


_monitors: dict[str, LagMonitor] = {}


def own_lag(settings: Settings) -> list[GroupLag]:
    """The lag of a worker's own consumer groups (one monitor per process, reused), without the
    records' ages: the worker's metric and its watches need offsets only, and reading the oldest
    waiting record of every lagging partition cost its process 2-3% of a province's batch
    (py-spy, 2026-12-06: the peeking consumer's network thread)."""
    monitor = _monitors.get("own")
    if monitor is None:
        monitor = _monitors["own"] = LagMonitor(settings.kafka_bootstrap_servers)
    monitor.sample(settings.worker_groups)
    return monitor.report(settings.worker_groups, ages=False)
