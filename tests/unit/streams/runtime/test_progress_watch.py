"""The progress watch (streams/runtime/applied.py ProgressWatch): a held partition with records
waiting and a commit that does not move is sought back once, then the worker exits for a restart."""

from __future__ import annotations

from streams.runtime.applied import ProgressWatch, Stuck


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_partition_with_records_waiting_and_no_progress_is_sought_then_given_up():
    clock = Clock()
    watch = ProgressWatch(stuck_s=60, clock=clock)
    assert watch.observe({0: (10, 50), 1: (5, 5)}) == []
    clock.now = 59
    assert watch.observe({0: (10, 50), 1: (5, 5)}) == []
    clock.now = 60
    assert watch.observe({0: (10, 50), 1: (5, 5)}) == [(0, Stuck.SEEK, 10)]  # 1 is at its end: idle, not stuck
    clock.now = 119
    assert watch.observe({0: (10, 50)}) == []
    clock.now = 120
    assert watch.observe({0: (10, 60)}) == [(0, Stuck.EXIT, 10)]


def test_progress_or_catching_up_or_a_busy_stage_resets_the_clock():
    clock = Clock()
    watch = ProgressWatch(stuck_s=60, clock=clock)
    watch.observe({0: (10, 50)})
    clock.now = 50
    assert watch.observe({0: (11, 50)}) == []  # it moved
    clock.now = 100
    assert watch.observe({0: (11, 50)}) == []  # 50 s since it moved
    watch.idle()  # a long batch ran meanwhile
    clock.now = 140
    assert watch.observe({0: (11, 50)}) == []
    clock.now = 160
    assert watch.observe({0: (11, 50)}) == [(0, Stuck.SEEK, 11)]
    clock.now = 170
    assert watch.observe({0: (50, 50)}) == []  # caught up after the seek
    clock.now = 400
    assert watch.observe({0: (50, 50)}) == [] and watch.observe({}) == [] and watch.since == {}
