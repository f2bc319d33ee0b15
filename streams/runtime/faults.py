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
- ``mute:P:O``: from offset O on, no record of partition P is handed to the person stage or
  acknowledged, for the life of the process (a consumer alive that fetches nothing: the progress
  watch must seek back, then exit with code 75 for a restart);
- ``die_sent:TOPIC:N``: the worker process dies (exit 137) once, right after the broker
  acknowledged the Nth unit of work whose records include one for the topic named ``TOPIC``
  (an attribute of ``Topics``, such as ``instructions``) and before that unit's state is
  written: a restart must apply the command again and publish nothing new (the same ids);
- ``die_scan:P:N``: the worker process dies (exit 137, as a SIGKILL leaves it) once partition P's
  scan of an operator's order has committed N people (N a multiple of the scan's 1,000): the
  order must complete after a restart, with no version twice.

- ``fail_send:TOPIC:N``: the Nth send of a unit of work whose records include one for the topic
  named ``TOPIC`` fails once, before anything is sent, as a send fails while a leader moves
  (what a rolling restart of the brokers did): the take must be done again, never acknowledged
  without its effects;
- ``drop:P:O``: the record at offset O of partition P is not handed to the person stage but is
  acknowledged, once (an acknowledgement without the work, which an agent's crash gives): the
  commit passes a record never applied, and the commit watch must see the commit ahead of the
  partition's applied-offset marker and seek back to it.

- ``no_ledger``: the worker keeps no ledger (no ``ledger.v1`` lines, no totals, no build), as the
  version before the ledger did: a later start without it must build the ledger from the states.

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
    die_sent: dict[str, int] = field(default_factory=dict)  # topic attribute -> the unit to die after
    mute: dict[int, int] = field(default_factory=dict)  # partition -> the first offset never handed over
    fail_send: dict[str, int] = field(default_factory=dict)  # topic attribute -> the send that fails
    drop: set[tuple[int, int]] = field(default_factory=set)
    no_ledger: bool = False
    _sent_units: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Faults:
        faults = cls()
        for item in filter(None, (part.strip() for part in text.split(","))):
            if item == "no_ledger":
                faults.no_ledger = True
                continue
            try:
                kind, partition, offset = item.split(":")
                if kind in ("die_sent", "fail_send"):
                    getattr(faults, kind)[partition] = int(offset)
                    continue
                where = (int(partition), int(offset))
            except ValueError:
                raise FaultSpecError(f"ZHUCAN_FAULTS item {item!r}: expected KIND:PARTITION:OFFSET "
                                     f"(die_sent:TOPIC:N, fail_send:TOPIC:N, or no_ledger)") from None
            if kind == "mute":
                faults.mute[where[0]] = where[1]
                continue
            if kind not in ("lose", "unack", "die_scan", "drop"):
                raise FaultSpecError(f"ZHUCAN_FAULTS item {item!r}: the kinds are lose, unack, drop, mute, die_scan, "
                                     f"die_sent and fail_send")
            getattr(faults, kind).add(where)
        return faults

    def __bool__(self) -> bool:
        return bool(self.lose or self.unack or self.die_scan or self.die_sent or self.mute or self.no_ledger
                    or self.fail_send or self.drop)

    def scan_committed(self, partition: int, people: int) -> None:
        """Die here if ``die_scan`` names this partition and count (the scan's commit is done)."""
        if (partition, people) in self.die_scan:
            log.warning("FAULT: the worker dies after partition %d's scan committed %d people", partition, people)
            logging.shutdown()
            os._exit(137)

    @staticmethod
    def _due(wanted: dict[str, int], counts: dict[str, int], outs: list[Any], topics: dict[str, str]) -> str | None:
        """Count a send of ``outs`` for each topic attribute of ``wanted`` (attribute -> N) whose
        topic it includes; the first whose Nth it is, if any."""
        due = None
        for attr, n in wanted.items():
            if any(out.topic == topics[attr] for out in outs):
                counts[attr] = counts.get(attr, 0) + 1
                if counts[attr] == n and due is None:
                    due = attr
        return due

    def sent(self, topics: dict[str, str]) -> Callable[[list[Any]], None]:
        """The unit hook of ``die_sent`` (``topics``: attribute -> the topic's name)."""
        def after_send(outs: list[Any]) -> None:
            attr = self._due(self.die_sent, self._sent_units, outs, topics)
            if attr is not None:
                log.warning("FAULT: the worker dies after a unit's records for %s were acknowledged, "
                            "before its state is written", attr)
                logging.shutdown()
                os._exit(137)
        return after_send

    def failing(self, send: Any, topics: dict[str, str]) -> Any:
        """``send`` (the worker's emit) with ``fail_send``: the Nth send whose records include one
        for the named topic raises, once, before anything is sent."""
        from aiokafka.errors import KafkaTimeoutError

        sends: dict[str, int] = {}

        async def failing_send(outs: list[Any], wait: bool = False) -> None:
            attr = self._due(self.fail_send, sends, outs, topics)
            if attr is not None:
                del self.fail_send[attr]
                log.warning("FAULT: the send of a unit's %d record(s) for %s fails", len(outs), attr)
                raise KafkaTimeoutError(f"injected: a send for {attr} failed")
            await send(outs, wait=wait)
        return failing_send

    def lost(self, partition: int, offset: int) -> bool:
        """True once for the record to lose: it is not handed over, and its ack is dropped (with
        ``drop``: it is not handed over, and its ack goes through)."""
        if (partition, offset) in self.drop:
            self.drop.discard((partition, offset))
            log.warning("FAULT: record %d of partition %d is acknowledged and never handed to the person stage",
                        offset, partition)
            return True
        if partition in self.mute and offset >= self.mute[partition]:
            self.unack.add((partition, offset))
            return True
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
