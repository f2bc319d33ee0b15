"""The intake stage: a fetch of department records -> rejections, dead letters, and batch
records of person commands (one per target partition of ``zhucan.person-commands``).

Nothing raises: a record whose handling fails is dead-lettered and the fetch goes on. The
loop that fetches and commits is ``streams/runtime/intake_loop.py``."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from schemas.exceptions import DecodeError
from streams.domain.enums import RejectionReason
from streams.domain.identity import InvalidIdentity, check_identity
from streams.domain.ids import mask_id, normalize_id, opaque_key, person_key, scrub
from streams.runtime import speedups, wire
from streams.runtime.context import StageContext
from streams.runtime.emit import Out
from streams.runtime.unit import UnitOfWork

log = logging.getLogger("zhucan.worker")
BATCH_KEY = "~batch~"  # record keys of batch records (the commands inside carry person keys)


class IntakeStage:
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.names = ctx.topics
        # The common record (valid, current schema) in one call to C, where it is built; any
        # other record, and every rejection, by the Python below (streams/runtime/speedups.py).
        self.commands = speedups.IdentityCommands.of(ctx.codec, ctx.departments)

    def rejection(self, *, event_id: str, source: str, raw_id: str, reasons: list[RejectionReason],
                  detail: str, key: str) -> list[Out]:
        """The Rejection on ``identity.rejected.v1`` (operators) and on the department's own
        ``identity.rejected.<source>.v1`` (the only one the department may read)."""
        record = {"event_id": event_id, "source": source, "id_number": raw_id, "reasons": [r.value for r in reasons],
                  "detail": scrub(detail), "received_at": dt.datetime.now(dt.UTC)}
        for reason in reasons:
            self.ctx.metrics.inc("zhucan_rejections_total", reason=reason.value)
        # the department's event id may hold an ID number (e.g. "<ID>-20241201"): masked (issue #20)
        log.info("rejected event %s from %s (id %s): %s", scrub(event_id), source, mask_id(raw_id),
                 ",".join(r.value for r in reasons))
        topics = [self.names.rejected, self.names.rejected_of[source]]
        return [Out(topic, key.encode(), self.ctx.codec.encode("Rejection", record, topic=topic)) for topic in topics]

    def intake(self, records: Sequence[Any], unit: UnitOfWork[Any, Any]) -> None:
        """``records`` are consumer records (topic, partition, offset, key, value, timestamp in ms);
        what they produce goes to ``unit``."""
        outs: list[Out] = []
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        oldest: dict[int, int] = {}
        counts: Counter[str] = Counter()
        for msg in records:
            try:
                forward = self.one(msg, outs, counts)
            except Exception as exc:  # a bug must not drop the record: keep it for replay
                log.exception("intake failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
                outs.append(self.ctx.dead_letter(msg, type(exc).__name__, scrub(str(exc))))
                continue
            if forward is not None:
                partition = self.ctx.partition_of(forward[0])
                by_partition.setdefault(partition, []).append(forward)
                ts = msg.timestamp
                oldest[partition] = min(oldest.get(partition, ts), ts)
        max_bytes = self.ctx.settings.tuning.batch_record_bytes
        for partition, items in by_partition.items():
            # A batch keeps its oldest department timestamp: latency is measured from the event.
            for chunk in wire.pack_chunks(items, max_bytes):
                outs.append(Out(self.names.person_commands, f"{BATCH_KEY}{partition}".encode(), chunk,
                                partition=partition, timestamp_ms=oldest[partition]))
        for source, n in counts.items():
            self.ctx.metrics.inc("zhucan_events_in_total", n, source=source)
        unit.send(outs)

    def one(self, msg: Any, outs: list[Out], counts: Counter[str]) -> tuple[bytes, bytes] | None:
        """One department record: rejected or dead-lettered into ``outs``, or returned as (person key, command)."""
        source = self.names.source_of(msg.topic)
        if source is None:  # subscribed to a topic no department owns: a deployment error, not a record's
            outs.append(self.ctx.dead_letter(msg, "UNKNOWN_TOPIC", f"topic {msg.topic} is no department's topic"))
            return None
        if self.commands is not None:
            common = self.commands.command(msg.value, source)
            if common is not None:
                counts[source] += 1
                return person_key(common[0], self.ctx.secret).encode(), common[1]
        try:
            _, raw = self.ctx.codec.decode(msg.value, expect="IdentityEvent")
        except DecodeError as exc:
            outs.append(self.ctx.dead_letter(msg, exc.reason, str(exc)))
            coord = f"{msg.topic}:{msg.partition}:{msg.offset}"
            outs.extend(self.rejection(event_id=coord, source=source, raw_id="", reasons=[RejectionReason.SCHEMA],
                                       detail=f"undecodable record at {coord}: {exc}",
                                       key=opaque_key(coord, self.ctx.secret)))
            return None
        counts[source] += 1
        if raw["source"] != source:
            outs.extend(self.rejection(
                event_id=raw["event_id"], source=source, raw_id=raw["id_number"], reasons=[RejectionReason.SCHEMA],
                detail=f"source {raw['source']} does not match topic {msg.topic} ({source})",
                key=self.key_for(raw["id_number"]),
            ))
            return None
        try:
            ident = check_identity(raw, self.ctx.departments, speedups.normalize_id)
        except InvalidIdentity as exc:
            outs.extend(self.rejection(event_id=raw["event_id"], source=source, raw_id=raw["id_number"],
                                       reasons=list(exc.invalid.reasons), detail=exc.invalid.detail,
                                       key=self.key_for(raw["id_number"])))
            return None
        return person_key(ident.id_number, self.ctx.secret).encode(), wire.pack_identity(ident)

    def key_for(self, raw_id: str) -> str:
        id18, _ = normalize_id(raw_id)
        return person_key(id18, self.ctx.secret) if id18 else opaque_key(raw_id, self.ctx.secret)
