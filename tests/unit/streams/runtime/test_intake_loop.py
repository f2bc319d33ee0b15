"""The intake loop goes on after a fetch whose handling raised: fetched again, nothing lost.

Before, an exception out of ``handle`` that was not a failed send or commit (a bug) ended the
loop's task with nobody awaiting it: the departments' topics went unread, silently, until the
progress watch restarted the worker. The consumer here is a stand-in that hands out fetches and
honours ``seek``; the stage's context is the worker's own (``create_app``, table in memory)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from aiokafka import TopicPartition

from streams.app import create_app
from streams.policies import load_book
from streams.runtime.intake_loop import IntakeService
from streams.settings import Settings, Tuning


class Consumer:
    """``getmany`` hands out the topic's records from the position; ``seek`` moves it back."""

    def __init__(self, tp: TopicPartition, n: int) -> None:
        self.tp = tp
        self.records = [SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=i, key=b"k", value=b"v",
                                        timestamp=0) for i in range(n)]
        self.position = 0
        self.commits: list[int] = []
        self.seeks: list[int] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[SimpleNamespace]]:
        if self.position >= len(self.records):
            await asyncio.sleep(0.01)
            return {}
        fetched = self.records[self.position:self.position + max_records]
        self.position += len(fetched)
        return {self.tp: fetched}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append(offset)
        self.position = offset

    def assignment(self) -> set[TopicPartition]:
        return {self.tp}

    async def commit(self, offsets: dict[TopicPartition, object]) -> None:
        self.commits.append(offsets[self.tp].offset)  # type: ignore[attr-defined]


async def test_a_fetch_whose_handling_raised_is_fetched_again_and_the_loop_goes_on(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap_servers="localhost:1", key_secret="loop-test-" * 4, data_dir=tmp_path,
                        app_id="loop", store="memory://", tuning=Tuning(retry_s=0.01))
    app = create_app(settings, load_book(settings.policy_dir, settings.registry))

    async def acked(outs: list[object], wait: bool = False) -> None:
        return None

    app.ctx.send = acked
    tp = TopicPartition(settings.topics.identity["CIVIL_AFFAIRS"], 0)
    consumer = Consumer(tp, 10)
    handled: list[list[int]] = []

    def route(records: list[SimpleNamespace], unit: object) -> None:
        handled.append([r.offset for r in records])
        if len(handled) == 1:
            raise RuntimeError("a bug in the intake")

    intake = IntakeService(app.ctx, route)
    intake.consumer = consumer  # type: ignore[assignment]
    intake.checked.add(tp)  # a department's topic: no start to adopt
    task = asyncio.ensure_future(intake._run())
    for _ in range(500):
        if consumer.commits:
            break
        await asyncio.sleep(0.01)
    intake._stopping = True
    await asyncio.wait_for(task, 5)
    assert handled[0] == handled[1] == list(range(10))  # the same records, again
    assert consumer.seeks == [0] and consumer.commits == [10]
    assert app.ctx.metrics.total("zhucan_intake_retries_total") == 1


def test_a_fetch_of_several_partitions_is_handled_in_the_order_it_was_written() -> None:
    """A fetch that waited for a few records holds up to 50 ms of several partitions: a department's
    UPDATED sent after its CERTIFIED, keyed to another partition, must not be decided first (tax
    would get a version the certification then replaces). Each partition's own order is kept, even
    where its timestamps go back (a producer sets them)."""
    from streams.runtime.intake_loop import in_written_order

    def rec(partition: int, offset: int, timestamp: int) -> SimpleNamespace:
        return SimpleNamespace(topic="identity", partition=partition, offset=offset, timestamp=timestamp)

    p0, p1 = TopicPartition("identity", 0), TopicPartition("identity", 1)
    certified, updated = rec(1, 7, 1_000), rec(0, 3, 1_020)
    late_clock = rec(0, 4, 990)  # written after offset 3 of its partition, by a clock behind
    fetched = {p0: [updated, late_clock, rec(0, 5, 1_050)], p1: [certified, rec(1, 8, 1_030)]}
    order = [(r.partition, r.offset) for r in in_written_order(fetched)]
    assert order == [(1, 7), (0, 3), (0, 4), (1, 8), (0, 5)]
    assert order.index((1, 7)) < order.index((0, 3))  # the certification before its correction
    for partition in (0, 1):  # each partition in its own order
        offsets = [o for p, o in order if p == partition]
        assert offsets == sorted(offsets)
    assert in_written_order({p1: fetched[p1]}) == fetched[p1]


async def test_an_idle_intake_fetches_once_a_second_and_answers_at_the_first_byte(tmp_path: Path) -> None:
    """Issue #25: an idle worker fetched every ``intake_fetch_wait_ms`` (50 ms), 20 fetches a
    second over its partitions. After a fetch that brings nothing, the next fetches wait
    ``intake_idle_wait_ms`` on the broker and are answered at the first byte; the first fetch
    that brings records puts the batch's wait and bytes back."""
    settings = Settings(kafka_bootstrap_servers="localhost:1", key_secret="loop-test-" * 4, data_dir=tmp_path,
                        app_id="loop", store="memory://", tuning=Tuning(retry_s=0.01))
    app = create_app(settings, load_book(settings.policy_dir, settings.registry))
    t = settings.tuning
    tp = TopicPartition(settings.topics.identity["CIVIL_AFFAIRS"], 0)
    record = SimpleNamespace(topic=tp.topic, partition=0, offset=0, key=b"k", value=b"v", timestamp=0)
    answers: list[dict[TopicPartition, list[SimpleNamespace]]] = [{}, {}, {tp: [record]}, {}, {}]
    fetcher = SimpleNamespace(_fetch_min_bytes=t.intake_fetch_min_bytes, _fetch_max_wait_ms=t.intake_fetch_wait_ms)
    asked: list[tuple[int, int, int]] = []  # (getmany's timeout, the fetcher's bytes and wait then)
    intake = IntakeService(app.ctx, lambda records, unit: None)

    class Quiet:
        _fetcher = fetcher

        async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[SimpleNamespace]]:
            asked.append((timeout_ms, fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms))
            if len(asked) == len(answers):
                intake._stopping = True
            return answers[len(asked) - 1]

        async def commit(self, offsets: dict[TopicPartition, object]) -> None:
            return None

    async def acked(outs: list[object], wait: bool = False) -> None:
        return None

    app.ctx.send = acked
    intake.consumer = Quiet()  # type: ignore[assignment]
    intake.checked.add(tp)
    await asyncio.wait_for(intake._run(), 5)
    batch = (t.intake_fetch_wait_ms, t.intake_fetch_min_bytes, t.intake_fetch_wait_ms)
    quiet = (t.intake_idle_wait_ms, 1, t.intake_idle_wait_ms)
    assert asked == [batch, quiet, quiet, batch, quiet]
    assert t.intake_idle_wait_ms == 1000 and t.intake_fetch_wait_ms == 50

