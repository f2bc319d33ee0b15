"""One unit of work, the rule every stage keeps: **effects acknowledged, then state.**

A unit collects the records to send (``send``) and the changes to write (``change``: person
states and markers, or a fetch's offsets), and the counters of what it published. ``commit``
sends the records, waits until the broker has acknowledged every one, and only then writes
the changes and adds the counters: a state (or an offset) that says "done" never exists
without its effects on the broker. If the send fails nothing is written, and the work is done
again from the input (with the same message ids).

The person stage's units write states to the person table and its changelog; the control
scan's, the same every 1,000 people; the intake loop's commit the fetch's offsets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from streams.runtime.emit import Out
from streams.runtime.metrics import Metrics

# (counter name, its label names, their values) -> how many, added to the metrics at commit
Counts = Counter[tuple[str, tuple[str, ...], tuple[Any, ...]]]
K = TypeVar("K")
V = TypeVar("V")
Send = Callable[..., Awaitable[None]]  # Emitter.emit(outs, wait=True)
Write = Callable[[dict[K, V]], Awaitable[None]]


class UnitOfWork(Generic[K, V]):
    def __init__(self, send: Send, write: Write[K, V], metrics: Metrics | None = None,
                 after_send: Callable[[list[Out]], None] | None = None) -> None:
        self._send = send
        self._after_send = after_send  # tests on real Kafka only (ZHUCAN_FAULTS die_sent)
        self._write = write
        self._metrics = metrics
        self.outs: list[Out] = []
        self.changes: dict[K, V] = {}
        self.counts: Counts = Counter()
        self.timed = 0  # effects published whose record time to publication is the latency metric
        # run at the start of each commit: what a stage keeps beside the changes folds into them
        # (the person stage's ledger totals, ``streams/runtime/ledger.py``)
        self.before_commit: list[Callable[[UnitOfWork[K, V]], None]] = []

    def send(self, outs: list[Out]) -> None:
        self.outs += outs

    def change(self, key: K, value: V) -> None:
        self.changes[key] = value

    async def commit(self) -> None:
        """Send, wait for the broker's acknowledgements, then write the changes and count."""
        for fold in self.before_commit:
            fold(self)
        sent, self.outs = self.outs, []
        await self._send(sent, wait=True)
        if self._after_send is not None:
            self._after_send(sent)
        changes, self.changes = self.changes, {}
        if changes:
            await self._write(changes)
        counts, self.counts = self.counts, Counter()
        if self._metrics is not None:
            for (name, labels, values), n in counts.items():
                self._metrics.inc(name, n, **{label: str(value) for label, value in zip(labels, values, strict=True)})
