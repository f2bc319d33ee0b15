"""`zhucan dlq list|show|replay`: the dead-letter topic for operators.

Each dead letter keeps the original key and bytes, and headers naming the origin
topic, partition and offset and the error. Replay sends the original record back to
its origin topic (after a fix: a policy added, a bug fixed) and notes the replay on
``zhucan.dead-letter-replays`` keyed by the dead letter's own coordinate, so replaying
twice sends nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from connectors.kafka_io import make_producer, read_to_end
from schemas.codec import Codec
from schemas.exceptions import SchemaError
from streams.domain.ids import mask_id, scrub
from streams.runtime import wire as batch
from streams.settings import Settings


@dataclass
class DeadLetter:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @property
    def coordinate(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def origin(self) -> str:
        h = self.headers
        return f"{h.get('zhucan.origin.topic', '?')}[{h.get('zhucan.origin.partition', '?')}]@{h.get('zhucan.origin.offset', '?')}"

    def as_dict(self) -> dict[str, Any]:
        return {"dlq": self.coordinate, "at": dt.datetime.fromtimestamp(self.timestamp_ms / 1000, dt.UTC).isoformat(),
                "origin_topic": self.headers.get("zhucan.origin.topic"),
                "origin_partition": int(self.headers.get("zhucan.origin.partition", -1)),
                "origin_offset": int(self.headers.get("zhucan.origin.offset", -1)),
                "error_class": self.headers.get("zhucan.error.class"),
                "error": self.headers.get("zhucan.error.message"), "bytes": len(self.value)}


def dead_letters(settings: Settings) -> list[DeadLetter]:
    out = []
    for rec in read_to_end(settings.kafka_bootstrap_servers, settings.topics.dead_letter):
        headers = {k: v.decode("utf-8", "replace") for k, v in (rec.headers or [])}
        out.append(DeadLetter(rec.partition, rec.offset, rec.timestamp, rec.key, rec.value or b"", headers))
    return out


def replayed(settings: Settings) -> dict[str, dict[str, Any]]:
    """Dead-letter coordinates already replayed, with when and where to."""
    done = {}
    for rec in read_to_end(settings.kafka_bootstrap_servers, settings.topics.dead_letter_replays):
        done[rec.key.decode()] = json.loads(rec.value)
    return done


_DIGIT_RUN = re.compile(r"[0-9]{12,}[0-9Xx]?")


def mask_digit_runs(text: str) -> str:
    """Every run of 12 or more digits masked (first 6 and last 4 kept): an ID number hidden in
    an event id, a name or a reference is masked however it is framed (issue #20)."""
    return _DIGIT_RUN.sub(lambda m: mask_id(m.group()), text)


def _framing(value: bytes) -> str:
    if value[:2] == b"\xc3\x01":
        return "Avro single-object framing"
    if value[:1] == b"\x00" and len(value) > 5:
        return "Confluent wire framing"
    if value[:3] == batch.IDENTITY:
        return "the intake's internal form"
    return "no known framing (its bytes are not shown: they may hold personal data)"


def describe(letter: DeadLetter) -> str:
    """A readable view of one dead letter; ID numbers masked."""
    lines = [f"dead letter {letter.coordinate}  from {letter.origin}"]
    for k, v in sorted(letter.headers.items()):
        lines.append(f"  {k}: {scrub(v)}")
    lines.append(f"  key: {scrub(letter.key.decode('utf-8', 'replace')) if letter.key else '(none)'}")
    # no raw bytes of the value: a record sent by mistake (JSON, text) shows its ID numbers in hex
    lines.append(f"  value: {len(letter.value)} bytes, {_framing(letter.value)}")
    try:
        if letter.value[:3] == batch.IDENTITY:  # a person-stage command in the intake's internal form
            name, value = "IdentityEvent (internal form)", batch.unpack_identity(letter.value)._asdict()
        else:
            name, value = Codec().decode(letter.value)
        shown = {k: (mask_id(v) if k == "id_number" else v) for k, v in value.items()}
        text = json.dumps(shown, ensure_ascii=False, default=str)
        lines.append(f"  decodes now as {name}: {mask_digit_runs(text)}")
    except SchemaError as exc:
        lines.append(f"  still undecodable: {exc}")
    return "\n".join(lines)


@dataclass
class Replay:
    sent: list[str]  # coordinates written back to their origin (and noted as replayed)
    skipped: list[str]  # already replayed, or with no origin
    failed: list[tuple[str, str]]  # (coordinate, why): the broker refused or did not acknowledge


def replay(settings: Settings, letters: list[DeadLetter], dry_run: bool = False) -> Replay:
    """Send dead letters back to their origin, each acknowledged by the broker before it is noted
    as replayed; one the broker refuses (e.g. an operator may not write a department's topic)
    is reported as failed and stays replayable (issue #20)."""
    done = replayed(settings)
    out = Replay([], [], [])
    producer = None if dry_run else make_producer(settings.kafka_bootstrap_servers)
    try:
        for letter in letters:
            if letter.coordinate in done:
                out.skipped.append(letter.coordinate)
                continue
            origin = letter.headers.get("zhucan.origin.topic")
            if not origin:
                out.skipped.append(letter.coordinate)
                continue
            if producer is not None:
                try:
                    producer.send(origin, key=letter.key, value=letter.value,
                                  headers=[("zhucan.replayed-from", f"dlq:{letter.coordinate}".encode())]).get(timeout=30)
                    producer.send(settings.topics.dead_letter_replays, key=letter.coordinate.encode(), value=json.dumps({
                        "origin": letter.origin, "at": dt.datetime.now(dt.UTC).isoformat()}).encode()).get(timeout=30)
                except Exception as exc:  # refused or not acknowledged: not replayed
                    out.failed.append((letter.coordinate, f"{type(exc).__name__}: {scrub(str(exc))}"))
                    continue
            out.sent.append(letter.coordinate)
    finally:
        if producer is not None:
            producer.close()
    return out
