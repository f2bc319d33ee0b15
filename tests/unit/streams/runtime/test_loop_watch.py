"""The event loop's watch (streams/runtime/metrics.py): how long one piece of work held the
worker's loop, which the intake's consumer needs for its heartbeats."""

from __future__ import annotations

import asyncio
import logging
import time

from streams.runtime.metrics import Metrics, watch_loop


async def test_a_hold_of_the_loop_is_measured_and_a_long_one_said(caplog):
    metrics = Metrics()
    watch = asyncio.ensure_future(watch_loop(metrics, probe_s=0.02, warn_s=0.2))
    await asyncio.sleep(0.05)  # the watch runs; short holds only
    short = metrics.total("zhucan_event_loop_held_seconds_max")
    assert 0 <= short < 0.2
    with caplog.at_level(logging.WARNING, logger="zhucan.metrics"):
        time.sleep(0.3)  # one piece of work holds the loop (as a take of many batch records did)
        await asyncio.sleep(0.05)
    watch.cancel()
    held = metrics.total("zhucan_event_loop_held_seconds_max")
    assert 0.25 <= held < 0.6
    assert "the event loop was held 0.3 s" in caplog.text
    assert "zhucan_event_loop_held_seconds_max" in metrics.render()


def test_high_keeps_the_highest():
    metrics = Metrics()
    assert metrics.high("m", 1.0) and not metrics.high("m", 0.5) and metrics.high("m", 2.0)
    assert metrics.total("m") == 2.0
