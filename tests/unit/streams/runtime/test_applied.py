"""The offset guards (issue #26): which command records the person stage applies, skips or
holds, when it seeks back, and when the commit watch heals a partition."""

from __future__ import annotations

from streams.runtime.applied import AppliedOffsets, CommitWatch, Verdict, decode_next, marker_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def guard(markers: dict[int, bytes] | None = None, clock: Clock | None = None) -> AppliedOffsets:
    stored = markers or {}
    return AppliedOffsets(lambda p: stored.get(p), retry_s=2.0, clock=clock or Clock())


def test_the_marker_key_and_value_are_plain_bytes():
    assert marker_key(3) == b"~applied~3"
    assert decode_next(b"2666") == 2666 and decode_next(None) is None


def test_records_before_the_marker_are_skipped_the_next_applied_a_later_one_held():
    g = guard({2: b"2666"})
    assert g.verdict(2, 2665) is Verdict.SKIP
    assert g.verdict(2, 2667) is Verdict.HOLD  # 2666 missing: the skip
    assert g.verdict(2, 2666) is Verdict.APPLY
    g.applied(2, 2666)
    assert g.verdict(2, 2667) is Verdict.APPLY
    assert g.markers() == {2: b"2667"}
    assert g.markers() == {}  # written once


def test_without_a_marker_the_partition_starts_where_it_is_told():
    g = guard()
    assert g.next_of(0) is None
    g.start_at(0, 100)
    assert g.verdict(0, 99) is Verdict.SKIP and g.verdict(0, 101) is Verdict.HOLD
    g.begin()  # a new batch keeps the start until a marker is written
    assert g.next_of(0) == 100


def test_a_new_batch_reads_the_marker_again():
    stored = {1: b"10"}
    g = AppliedOffsets(lambda p: stored.get(p))
    assert g.next_of(1) == 10
    stored[1] = b"50"  # restored from the changelog after a rebalance
    g.begin()
    assert g.verdict(1, 49) is Verdict.SKIP and g.verdict(1, 50) is Verdict.APPLY


def test_a_seek_back_is_asked_once_per_retry_period_for_the_same_gap():
    clock = Clock()
    g = guard({0: b"5"}, clock)
    g.next_of(0)
    first = g.rewind_due(0, seen=9)
    assert first is not None and (first.partition, first.to, first.seen) == (0, 5, 9)
    assert g.rewind_due(0, seen=10) is None  # records fetched before the seek still arrive
    clock.now = 2.5
    assert g.rewind_due(0, seen=11) is not None  # they kept coming: seek again
    g.applied(0, 5)
    assert g.rewind_due(0, seen=12) is not None  # a new gap, at 6


def test_the_commit_watch_heals_a_partition_stuck_while_records_past_it_were_applied():
    clock = Clock()
    w = CommitWatch(stall_s=45, clock=clock)
    assert w.observe({2: 2666}, {2: 2669}) == []
    clock.now = 30
    assert w.observe({2: 2666}, {2: 8000}) == []
    clock.now = 46
    assert w.observe({2: 2666}, {2: 8173}) == [(2, 2666, 8173)]
    clock.now = 50
    assert w.observe({2: 2666}, {2: 8173}) == []  # healed: another stall_s before the next heal


def test_the_commit_watch_leaves_moving_idle_and_released_partitions_alone():
    clock = Clock()
    w = CommitWatch(stall_s=45, clock=clock)
    w.observe({0: 10, 1: 7}, {0: 10, 1: 9})
    clock.now = 100
    assert w.observe({0: 10, 1: 8}, {0: 10, 1: 9}) == []  # 0 idle (nothing past it), 1 moved
    clock.now = 200
    assert w.observe({1: 8}, {1: 9}) == [(1, 8, 9)]
    assert 0 not in w.since  # no longer held: forgotten


def test_a_seek_back_that_brought_nothing_is_asked_again_by_the_timer():
    clock = Clock()
    g = guard({0: b"2", 1: b"9"}, clock)
    g.next_of(0), g.next_of(1)
    g.rewind_due(0, seen=3)
    g.rewind_due(1, seen=12)
    assert g.overdue({0, 1}) == []  # asked just now
    clock.now = 2.0
    assert [(r.partition, r.to) for r in g.overdue({0})] == [(0, 2)]  # 1 went to another worker
    assert 1 not in g.rewinding
    assert g.overdue({0}) == []  # the timer's own ask counts
    g.applied(0, 2)
    clock.now = 10.0
    assert g.overdue({0}) == []  # the record came
