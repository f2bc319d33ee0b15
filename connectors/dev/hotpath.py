"""The hot path in process (``zhucan bench --in-process``): the intake and the person stage on the
bench's synthetic province, with no broker.

The worker's own stages are built by ``create_app`` (the person table in memory, every send to
the broker answered at once and dropped); the intake takes the department records in fetches of
the worker's size (``Tuning.intake_max_records``), as the intake loop does, and the person stage
takes the batch records it made as many at a time as its agent does (``Tuning.person_take``). What it measures is the CPU per event of zhucan's own code (decoding,
validation, the decision, the state, the records written), without the Kafka clients, the
broker and RocksDB: the quick way to compare two versions of the hot path (docs/decisions.md)
before the bench on real Kafka, whose figure is the one that counts.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.dev.bench import synthetic_events
from streams.app import create_app
from streams.policies import load_book
from streams.runtime.emit import Out
from streams.runtime.unit import UnitOfWork
from streams.settings import Settings
from streams.worker import settle_heap


@dataclass
class Record:
    """What aiokafka hands the intake, and Faust the person agent (its ``message``; tests build them too)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int = 0
    headers: tuple[Any, ...] = ()


@dataclass
class Event:
    message: Record
    key: bytes | None
    value: bytes


async def _dropped(outs: list[Out], wait: bool = False) -> None:
    """The broker's acknowledgement, at once."""


async def _never_committed(partition: int) -> int | None:
    return None


async def _from_zero(partition: int) -> int:
    return 0


def measure(n_events: int, spread_days: int = 0) -> dict[str, float]:
    """µs of CPU per identity event in the intake and in the person stage; the batch records the
    intake made, the fee standards the person stage sent and the share of newcomers given
    remembered decisions (``spread_days``: ``synthetic_events``'s)."""
    logging.getLogger("zhucan").setLevel(logging.WARNING)  # the review cases' log lines are not the work
    collector = gc.get_threshold()
    try:
        return _measure(n_events, spread_days)
    finally:  # the process's collector as it was (the measure froze its heap, as a worker does)
        gc.unfreeze()
        gc.set_threshold(*collector)


def _measure(n_events: int, spread_days: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="zhucan-hotpath-") as tmp:
        settings = Settings(kafka_bootstrap_servers="localhost:1", key_secret="in-process-" * 4,
                            data_dir=Path(tmp), app_id="hotpath", store="memory://")
        app = create_app(settings, load_book(settings.policy_dir, settings.registry))
        app.faust.finalize()
        fee_standards = 0

        async def sent(outs: list[Out], wait: bool = False) -> None:  # acknowledged at once, counted, dropped
            nonlocal fee_standards
            fee_standards += sum(1 for o in outs if o.topic == app.ctx.topics.fee_standard)

        app.ctx.send = sent
        app.ctx.commands.committed = _never_committed  # type: ignore[method-assign]
        app.ctx.commands.log_start = _from_zero  # type: ignore[method-assign]
        records, _, _ = synthetic_events(n_events, spread_days=spread_days)
        topics = app.ctx.topics
        src = [Record(topics.identity[source], 0, i, key, value) for i, (source, key, value) in enumerate(records)]
        fetch, take = settings.tuning.intake_max_records, settings.tuning.person_take
        # the worker's heap settings (``settle_heap``): its start-up heap frozen, young collections
        # every ``gc_young_threshold`` allocations. The department records built above are frozen
        # with it, as a worker never holds a province's records: without it every full collection
        # scanned them, and the figure carried a collector cost the worker does not pay
        settle_heap(settings.tuning.gc_young_threshold)
        started = time.process_time()
        batches: list[Out] = []
        for i in range(0, len(src), fetch):
            unit: UnitOfWork[Any, Any] = UnitOfWork(_dropped, _written)
            app.inputs.handle(src[i:i + fetch], unit)
            batches += [o for o in unit.outs if o.topic == topics.person_commands]
        intake_s = time.process_time() - started
        offsets: dict[int, int] = {}
        events = []
        for o in batches:
            p = o.partition or 0
            offsets[p] = offsets.get(p, -1) + 1
            events.append(Event(Record(topics.person_commands, p, offsets[p], o.key, o.value), o.key, o.value))
        n_batches = len(batches)
        del src, batches
        settle_heap(settings.tuning.gc_young_threshold)  # the batch records too (a worker fetches them)

        async def person() -> None:
            for i in range(0, len(events), take):
                await app.person.take(events[i:i + take])  # type: ignore[arg-type]

        loop = asyncio.new_event_loop()
        try:
            started = time.process_time()
            loop.run_until_complete(person())
            person_s = time.process_time() - started
        finally:
            loop.close()
    return {"events": n_events, "intake_us_per_event": round(intake_s / n_events * 1e6, 1),
            "person_us_per_event": round(person_s / n_events * 1e6, 1), "batch_records": n_batches,
            "fee_standards": fee_standards, "newcomers_remembered": _share(app.ctx.newcomers),
            "second_identities_remembered": _share(app.ctx.newcomers, second=True)}


def _share(newcomers: Any, second: bool = False) -> float:
    hits, misses = (newcomers.second_hits, newcomers.second_misses) if second else (newcomers.hits, newcomers.misses)
    return round(hits / (hits + misses), 3) if hits + misses else 0.0


async def _written(changes: dict[Any, Any]) -> None:
    """The intake's offsets: nothing to commit here."""
