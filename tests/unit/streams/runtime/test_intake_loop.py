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
