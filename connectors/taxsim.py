"""`zhucan tax-sim`: a stand-in for the tax bureau that answers fee standards with payment status.

It consumes ``fee-standard.v1`` (its own consumer group) and, per person and year,
answers the latest version with a deterministic choice drawn from the person key:
ALREADY_PAID (paid in full before the standard arrived), PAID / ZERO_DECLARED,
REJECTED, or no answer at all (a person who does not enrol). Ack ids derive from the
standard's message id, so a replay sends the same acks and the broker ignores them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer

from connectors.kafka_io import make_producer
from schemas.codec import Codec
from schemas.exceptions import DecodeError
from streams.domain.enums import PaymentState
from streams.domain.messages import FeeStandardIssued
from streams.kafka.security import kafka_python_config
from streams.settings import Settings

log = logging.getLogger("zhucan.tax-sim")


@dataclass(frozen=True)
class TaxBehaviour:
    pay_share: float = 0.9  # answers PAID (or ZERO_DECLARED when nothing is payable)
    reject_share: float = 0.0  # answers REJECTED
    already_paid_share: float = 0.0  # answers ALREADY_PAID with the full premium (paid before the standard)
    delay_s: float = 0.0  # wait this long after the last version of a person-year before answering
    seed: str = "zhucan"

    def __post_init__(self) -> None:
        total = self.pay_share + self.reject_share + self.already_paid_share
        if min(self.pay_share, self.reject_share, self.already_paid_share) < 0 or total > 1.0 + 1e-9:
            raise ValueError(f"shares must be >= 0 and add up to at most 1 (they add up to {total:.2f})")

    def answer(self, key: str, fee: FeeStandardIssued) -> dict[str, Any] | None:
        """The acknowledgement for one fee standard, or None for a person who does not enrol."""
        if fee.payment_mode == "WITHDRAWN":
            return None
        digest = hashlib.sha256(f"{self.seed}|{key}|{fee.insurance_year}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        if u < self.already_paid_share:
            status, amount = PaymentState.ALREADY_PAID, fee.premium_fen
        elif u < self.already_paid_share + self.pay_share:
            status = PaymentState.ZERO_DECLARED if fee.payable_fen == 0 else PaymentState.PAID
            amount = fee.payable_fen
        elif u < self.already_paid_share + self.pay_share + self.reject_share:
            status, amount = PaymentState.REJECTED, 0
        else:
            return None
        return {
            "ack_id": f"sim-{fee.message_id}", "id_number": fee.id_number,
            "insurance_year": fee.insurance_year, "fee_version": fee.version, "status": status.value,
            "amount_fen": amount, "tax_reference": f"SIM-{digest[8:12].hex().upper()}",
            "acted_at": dt.datetime.now(tz=dt.UTC),
        }


def run_tax_sim(settings: Settings, behaviour: TaxBehaviour, *, group: str = "tax-sim",
                idle_exit_s: float | None = None, max_seconds: float | None = None) -> dict[str, int]:
    """Answer fee standards until idle for ``idle_exit_s`` (or forever); returns counts by status."""
    codec = Codec()
    topics = settings.topics
    consumer = KafkaConsumer(topics.fee_standard, **kafka_python_config(settings.kafka_bootstrap_servers),
                             group_id=f"{settings.topic_prefix}{group}", enable_auto_commit=False,
                             auto_offset_reset="earliest", client_id="zhucan-tax-sim")
    producer = make_producer(settings.kafka_bootstrap_servers, client_id="zhucan-tax-sim")
    pending: dict[tuple[str, int], tuple[float, FeeStandardIssued]] = {}
    counts: dict[str, int] = {}
    started = last_activity = time.monotonic()
    try:
        while True:
            polled = consumer.poll(timeout_ms=300)
            for records in polled.values():
                for rec in records:
                    last_activity = time.monotonic()
                    try:
                        fee = FeeStandardIssued.from_record(codec.decode(rec.value, expect="FeeStandard")[1])
                    except DecodeError as exc:
                        log.warning("skipping undecodable fee standard at offset %d: %s", rec.offset, exc)
                        continue
                    slot = (rec.key.decode() if rec.key else fee.message_id, fee.insurance_year)
                    if slot not in pending or fee.version >= pending[slot][1].version:
                        pending[slot] = (time.monotonic(), fee)
            now = time.monotonic()
            due = [slot for slot, (seen, _) in pending.items() if now - seen >= behaviour.delay_s]
            for slot in due:
                _, fee = pending.pop(slot)
                ack = behaviour.answer(slot[0], fee)
                status = ack["status"] if ack else "NO_ANSWER"
                counts[status] = counts.get(status, 0) + 1
                if ack is not None:
                    producer.send(topics.payment_status, key=slot[0].encode(),
                                  value=codec.encode("PaymentStatus", ack, topic=topics.payment_status))
            if due:
                producer.flush()
                consumer.commit()
                last_activity = time.monotonic()
                log.info("tax-sim answered %d person-years so far: %s", sum(counts.values()),
                         ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
            if idle_exit_s is not None and not pending and time.monotonic() - last_activity > idle_exit_s:
                break
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                break
    finally:
        producer.close()
        consumer.close()
    return counts
