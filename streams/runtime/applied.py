"""How far the person stage has applied ``zhucan.person-commands``, per partition, and what it
does with a record that is not the next one (issue #26).

The person table holds, beside the people, one marker per partition (key ``~applied~<p>``):
the offset of the next command record to apply. It is written with the states the records
changed, in the same local write batch and the same changelog send, so the state and "how far
it got" can never disagree, on this worker or on the one that restores the partition after a
rebalance. Faust's own bookkeeping (the committed offset, its read offsets, the acks) decides
only where fetching starts; whether a record is applied is decided here:

- ``offset < next``: applied before (a redelivery after a restart or a seek): skipped;
- ``offset == next``: applied, and ``next`` moves on. With no marker yet (a new deployment, or
  one that ran before the markers), ``next`` is the group's committed offset, or the
  partition's log start offset when the group never committed;
- ``offset > next``: a gap. The stage reads the missing records ``[next, offset)`` straight
  from the broker (``streams/runtime/reader.py``) and applies them, in order, before this
  one. Records the broker no longer holds (deleted by retention before they were applied)
  are an error that is logged, published and counted, and the gap is then accepted. Only if
  the broker cannot be read does the stage fall back on seeking Faust's consumer back to
  ``next`` (again every ``retry_s`` until it comes; a timer asks when no record comes at all),
  applying nothing of that partition beyond the gap meanwhile.

A gap is what a restarted worker saw in issue #26: a rebalance's seek met a record being
handed over, Faust recorded that record as read after the seek and dropped the records fetched
again below it (``tests/unit/streams/runtime/test_faust_drain_race.py``); its commit rule then
stopped at the first missing offset for good. A seek of Faust's consumer can meet the same
race, which is why the gap is read, not sought.

``CommitWatch`` is the second guard: a partition whose committed offset has not moved for
``stall_s`` while the stage applied records past it is sought back to the committed offset
(the records come again, are skipped as applied, and acknowledged, so the commit moves; if
the seek meets the race it is tried again after another ``stall_s``: nothing is lost
meanwhile, only the commit waits).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

log = logging.getLogger("zhucan.worker")
MARKER_PREFIX = b"~applied~"


def marker_key(partition: int) -> bytes:
    return MARKER_PREFIX + str(partition).encode()


def encode_next(offset: int) -> bytes:
    return str(offset).encode()


def decode_next(value: bytes | None) -> int | None:
    return int(value) if value else None


class Verdict(Enum):
    APPLY = "apply"
    SKIP = "skip"  # applied before
    HOLD = "hold"  # beyond a gap: the missing records first


@dataclass
class Rewind:
    """A repair of a gap asked for: partition, from which offset, and the record that showed it."""

    partition: int
    to: int
    seen: int


@dataclass
class AppliedOffsets:
    """The per-partition ``next`` offsets of one batch (read from the store, then kept here
    until the batch's states are saved), and the seeks back under way."""

    read_marker: Callable[[int], bytes | None]  # the store's marker of a partition (None: none yet)
    retry_s: float = 2.0
    clock: Callable[[], float] = time.monotonic
    nexts: dict[int, int | None] = field(default_factory=dict)
    rewinding: dict[int, tuple[int, float]] = field(default_factory=dict)  # partition -> (to, when asked)
    changed: set[int] = field(default_factory=set)  # partitions whose marker moved since the last save
    assumed: dict[int, int] = field(default_factory=dict)  # partition without a marker -> where it starts

    def begin(self) -> None:
        """A new batch: markers are read again (a rebalance may have restored them from the changelog)."""
        self.nexts.clear()
        self.changed.clear()

    def next_of(self, partition: int) -> int | None:
        """The next offset to apply; None when the partition has no marker and no start yet."""
        if partition not in self.nexts or self.nexts[partition] is None:
            marked = decode_next(self.read_marker(partition))
            self.nexts[partition] = marked if marked is not None else self.assumed.get(partition)
        return self.nexts[partition]

    def start_at(self, partition: int, offset: int) -> None:
        """A partition with no marker starts at ``offset`` (the group's commit, or the log start)."""
        self.assumed[partition] = offset
        self.nexts[partition] = offset

    def verdict(self, partition: int, offset: int) -> Verdict:
        expected = self.next_of(partition)
        assert expected is not None, "start_at first"
        if offset == expected:
            return Verdict.APPLY
        return Verdict.SKIP if offset < expected else Verdict.HOLD

    def applied(self, partition: int, offset: int) -> None:
        """``offset`` was handled (applied, or dead-lettered): ``next`` moves past it."""
        self.nexts[partition] = offset + 1
        self.changed.add(partition)
        self.rewinding.pop(partition, None)

    def rewind_due(self, partition: int, seen: int) -> Rewind | None:
        """A repair of the gap before ``next`` (a read, or a seek back) if none was tried within
        ``retry_s`` (records fetched before a seek still come after it: they must not make the
        stage seek for each)."""
        to = self.nexts[partition]
        assert to is not None
        now = self.clock()
        asked = self.rewinding.get(partition)
        if asked is not None and asked[0] == to and now - asked[1] < self.retry_s:
            return None
        self.rewinding[partition] = (to, now)
        return Rewind(partition, to, seen)

    def overdue(self, held: set[int]) -> list[Rewind]:
        """Seeks back that brought nothing within ``retry_s``, to ask again (the timer's part:
        no record may come at all, or a record fetched before the seek may have moved Faust's
        read offset past the gap again). Partitions no longer held are forgotten."""
        now = self.clock()
        out = []
        for partition, (to, asked) in list(self.rewinding.items()):
            if partition not in held:
                del self.rewinding[partition]
            elif now - asked >= self.retry_s:
                self.rewinding[partition] = (to, now)
                out.append(Rewind(partition, to, -1))
        return out

    def markers(self) -> dict[int, bytes]:
        """The markers that moved, to write with the states (then they count as written)."""
        out = {p: encode_next(n) for p in sorted(self.changed) if (n := self.nexts.get(p)) is not None}
        self.changed.clear()
        return out


@dataclass
class CommitWatch:
    """Notices a partition whose commits stopped although the stage applied records past them.

    ``observe`` is fed, every few seconds, the group's committed offset of each partition this
    worker holds and the stage's ``next``; it returns the partitions to seek back to their
    committed offset: those whose committed offset has not moved for ``stall_s`` while ``next``
    is past it. After a heal the partition gets ``stall_s`` again before the next one."""

    stall_s: float = 45.0
    clock: Callable[[], float] = time.monotonic
    since: dict[Any, tuple[int, float]] = field(default_factory=dict)  # partition -> (committed, unchanged since)

    def observe(self, committed: dict[Any, int], nexts: dict[Any, int]) -> list[tuple[Any, int, int]]:
        """(partition, committed, next) of each stalled partition (a partition: any hashable,
        such as a (topic, number) pair)."""
        now = self.clock()
        stalled = []
        for partition, offset in committed.items():
            seen = self.since.get(partition)
            if seen is None or seen[0] != offset:
                self.since[partition] = (offset, now)
                continue
            expected = nexts.get(partition)
            if expected is not None and expected > offset and now - seen[1] >= self.stall_s:
                stalled.append((partition, offset, expected))
                self.since[partition] = (offset, now)
        for partition in set(self.since) - set(committed):  # no longer held
            del self.since[partition]
        return stalled


class Stuck(Enum):
    SEEK = "seek"  # the first remedy: fetch again from the committed offset
    EXIT = "exit"  # the seek did not help: the consumer is stuck for good; a restart clears it


@dataclass
class ProgressWatch:
    """Notices a partition this worker holds whose records wait and nothing moves: records
    behind the end, the committed offset unchanged for ``stuck_s`` while the stage is idle.
    The consumer stopped fetching it (aiokafka can stay alive and consume nothing after a
    broker restart or a rebalance, with no public signal: aio-libs/aiokafka#1154).

    ``observe`` is fed, every few seconds, each held partition's committed and end offsets; it
    returns the partitions to seek back to their committed offset (``Stuck.SEEK``), and those
    still stuck ``stuck_s`` after that seek (``Stuck.EXIT``: the worker exits with code 75, its
    supervisor starts it again, and the new consumer joins afresh; nothing is lost, the records
    come again and are skipped or applied by the applied-offset markers)."""

    stuck_s: float = 180.0
    clock: Callable[[], float] = time.monotonic
    since: dict[Any, tuple[int, float, bool]] = field(default_factory=dict)  # partition -> (committed, since, sought)

    def observe(self, offsets: dict[Any, tuple[int, int]]) -> list[tuple[Any, Stuck, int]]:
        """(partition, remedy, committed offset) of each stuck partition; ``offsets``: each held
        partition -> (committed, end). Partitions not held any more are forgotten."""
        now = self.clock()
        out = []
        for partition, (committed, end) in offsets.items():
            seen = self.since.get(partition)
            if seen is None or seen[0] != committed or end <= committed:
                self.since[partition] = (committed, now, False)
                continue
            _, since, sought = seen
            if now - since < self.stuck_s:
                continue
            out.append((partition, Stuck.EXIT if sought else Stuck.SEEK, committed))
            self.since[partition] = (committed, now, True)
        for partition in set(self.since) - set(offsets):
            del self.since[partition]
        return out

    def say(self, remedy: Stuck, topic: str, partition: int, at: int, end: int) -> str:
        """Log a remedy of a stuck partition (committed at ``at``, records up to ``end``); the
        kind of its repair note (``STUCK_SEEK``, ``STUCK_RESTART``)."""
        if remedy is Stuck.SEEK:
            log.warning("%s[%d]: %d record(s) wait and the commit has stayed at %d for %.0f s; seeking back to %d",
                        topic, partition, end - at, at, self.stuck_s, at)
            return "STUCK_SEEK"
        log.error("%s[%d]: still stuck at %d after the seek back; the worker restarts", topic, partition, at)
        return "STUCK_RESTART"

    def idle(self) -> None:
        """The stage was busy (a long batch): nothing counts as stuck meanwhile; start again."""
        now = self.clock()
        self.since = {p: (c, now, sought) for p, (c, _, sought) in self.since.items()}
