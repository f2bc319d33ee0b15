"""Operators' commands on ``control.v1`` and waiting for the worker to finish them."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

from connectors.kafka_io import make_producer, read_to_end
from schemas.codec import Codec
from streams.settings import Settings


def send_control(settings: Settings, command: str, region: str, year: int, issued_at: dt.datetime,
                 command_id: str | None = None) -> str:
    command_id = command_id or f"{command.lower()}-{region}-{year}-{uuid.uuid4().hex[:8]}"
    value = Codec().encode("ControlCommand", {
        "command_id": command_id, "command": command, "region_code": region, "insurance_year": year,
        "issued_at": issued_at,
    }, topic=settings.topics.control)
    producer = make_producer(settings.kafka_bootstrap_servers)
    try:
        producer.send(settings.topics.control, key=command_id.encode(), value=value)
        producer.flush()
    finally:
        producer.close()
    return command_id


def control_progress(settings: Settings, command_id: str, timeout_s: float = 5.0) -> dict[int, dict]:
    """What each partition reported for ``command_id`` (from ``zhucan.control-progress``)."""
    out: dict[int, dict] = {}
    for rec in read_to_end(settings.kafka_bootstrap_servers, settings.topics.control_progress, timeout_s):
        doc = json.loads(rec.value)
        if doc.get("command_id") == command_id and doc.get("done"):
            out[int(doc["partition"])] = doc
    return out


def wait_for_control(settings: Settings, command_id: str, timeout_s: float = 120.0, parts: int | None = None) -> bool:
    """Wait until every partition of the person topic (or ``parts`` of them: a SETTLE, run once,
    reports once) has finished ``command_id``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(control_progress(settings, command_id)) >= (parts or settings.partitions):
            return True
        time.sleep(0.5)
    return False
