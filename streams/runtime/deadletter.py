"""Dead letters: a record (or one command of a batch record) that could not be handled, kept
with its origin for ``zhucan dlq`` to show and replay. The stream goes on."""

from __future__ import annotations

import logging
import time
from typing import Any

from streams.domain.ids import scrub
from streams.runtime.emit import Out
from streams.runtime.metrics import Metrics

log = logging.getLogger("zhucan.worker")


def dead_letter(topic: str, msg: Any, error_class: str, message: str, metrics: Metrics,
                inner: tuple[bytes, bytes] | None = None) -> Out:
    """The dead-letter record of ``msg`` (any consumer record: topic, partition, offset, key,
    value), or with ``inner`` of one command inside it. ID numbers in the message are masked."""
    key, value = inner if inner is not None else (msg.key, msg.value)
    headers = [
        ("zhucan.origin.topic", msg.topic.encode()),
        ("zhucan.origin.partition", str(msg.partition).encode()),
        ("zhucan.origin.offset", str(msg.offset).encode()),
        ("zhucan.error.class", error_class.encode()),
        ("zhucan.error.message", scrub(message)[:1000].encode()),
        ("zhucan.failed.at", str(int(time.time() * 1000)).encode()),
    ]
    metrics.inc("zhucan_dead_letters_total", error_class=error_class)
    log.warning("dead-lettered %s[%d]@%d: %s: %s", msg.topic, msg.partition, msg.offset, error_class, scrub(message)[:200])
    return Out(topic, key, value or b"", headers=headers)
