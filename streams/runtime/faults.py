"""Faults injected on purpose, for the tests on real Kafka only (``ZHUCAN_FAULTS``; empty in
every deployment, and the worker says so in its log when it is not).

Each fault reproduces, once, on a chosen record of ``zhucan.person-commands``, what Faust did in
issue #26, so that the guards of ``streams/runtime/applied.py`` can be shown to work on a real
broker whatever the recovery's timing:

- ``lose:P:O``: the record at offset O of partition P is not handed to the person stage and
  never acknowledged (what the restarted worker did with offsets 2666 and 2667): the stage must
  notice the gap at the next record, read the missing records and apply them first;
- ``unack:P:O``: the record is applied but its acknowledgement is lost once, so Faust's commit
  stops at it for good: the commit watch must notice and seek back;
- ``die_scan:P:N``: the worker process dies (exit 137, as a SIGKILL leaves it) once partition P's
  scan of an operator's order has committed N people (N a multiple of the scan's 1,000): the
  order must complete after a restart, with no version twice.

Several faults are separated by commas. Each fires once per worker process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("zhucan.worker")


class FaultSpecError(ValueError):
    pass


@dataclass
class Faults:
    lose: set[tuple[int, int]] = field(default_factory=set)
    unack: set[tuple[int, int]] = field(default_factory=set)
    die_scan: set[tuple[int, int]] = field(default_factory=set)

    @classmethod
    def parse(cls, text: str) -> Faults:
        faults = cls()
        for item in filter(None, (part.strip() for part in text.split(","))):
            try:
                kind, partition, offset = item.split(":")
                where = (int(partition), int(offset))
            except ValueError:
                raise FaultSpecError(f"ZHUCAN_FAULTS item {item!r}: expected KIND:PARTITION:OFFSET") from None
            if kind not in ("lose", "unack", "die_scan"):
                raise FaultSpecError(f"ZHUCAN_FAULTS item {item!r}: the kinds are lose, unack and die_scan")
            getattr(faults, kind).add(where)
        return faults

    def __bool__(self) -> bool:
        return bool(self.lose or self.unack or self.die_scan)

    def scan_committed(self, partition: int, people: int) -> None:
        """Die here if ``die_scan`` names this partition and count (the scan's commit is done)."""
        if (partition, people) in self.die_scan:
            log.warning("FAULT: the worker dies after partition %d's scan committed %d people", partition, people)
            logging.shutdown()
            os._exit(137)

    def lost(self, partition: int, offset: int) -> bool:
        """True once for the record to lose: it is not handed over, and its ack is dropped."""
        if (partition, offset) not in self.lose:
            return False
        self.lose.discard((partition, offset))
        self.unack.add((partition, offset))
        log.warning("FAULT: record %d of partition %d is lost before the person stage", offset, partition)
        return True

    def install(self, consumer: Any, topic: str) -> None:
        """Wrap the Faust consumer's ``ack`` (public, called once per record the stream is done
        with): an ack named in ``unack`` is dropped once, as if it had never happened."""
        ack: Callable[[Any], bool] = consumer.ack

        def faulty_ack(message: Any) -> bool:
            where = (message.partition, message.offset)
            if message.topic == topic and where in self.unack:
                self.unack.discard(where)
                message.acked = True  # Faust looks no further at this message
                log.warning("FAULT: the acknowledgement of record %d of partition %d is lost", where[1], where[0])
                return False
            return ack(message)

        consumer.ack = faulty_ack
