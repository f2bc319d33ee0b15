"""Policy revisions from the operator's side: which policies the running workers hold
(``zhucan policy status``), what a REDECIDE with other policy files would do (``zhucan policy
diff``, and ``zhucan budget --what-if`` on the same answers), and which policy decided which
standards (``zhucan policy history``).

The preview is computed by the workers on their live person states (``streams/handlers.py``
``preview``): the candidate files travel to them on ``zhucan.policy-candidates``, and each
partition answers on ``zhucan.policy-previews`` with totals and masked rows. No person data
leaves the ACL'd topics.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.kafka_io import iter_topic, make_producer, read_to_end
from schemas.codec import Codec
from schemas.exceptions import DecodeError
from streams.domain.commands import PreviewRevision
from streams.domain.policy.spec import PolicyBook
from streams.domain.regions import chain, contains
from streams.policies import load_book, read_texts
from streams.runtime import wire
from streams.settings import Settings

STALE_AFTER = 3  # a worker not heard from in this many of its own periods is taken as gone


class RevisionError(RuntimeError):
    """A revision the operator asked for cannot go ahead; the message says why."""


@dataclass
class WorkerPolicies:
    worker: str
    app_id: str
    policy_ids: list[str]
    at_ms: int
    client_id: str = ""  # its consumer client id in the streams group
    query_url: str = ""  # where it answers person queries (``zhucan person``)


def worker_policies(settings: Settings, now_ms: int | None = None) -> list[WorkerPolicies]:
    """The running workers of this deployment and the policy ids each holds (zhucan.worker-policies:
    a worker says so at start and every 30 s, and withdraws when it stops)."""
    latest: dict[bytes, dict[str, Any] | None] = {}
    for rec in read_to_end(settings.kafka_bootstrap_servers, settings.topics.worker_policies, timeout_s=30):
        latest[rec.key] = json.loads(rec.value) if rec.value else None
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    out = []
    for doc in latest.values():
        if doc is None or doc.get("app_id") != settings.app_id:
            continue
        if now_ms - int(doc["at_ms"]) > STALE_AFTER * float(doc.get("every_s", 30)) * 1000:
            continue
        out.append(WorkerPolicies(doc["worker"], doc["app_id"], list(doc["policy_ids"]), int(doc["at_ms"]),
                                  doc.get("client_id", ""), doc.get("query_url", "")))
    return sorted(out, key=lambda w: w.worker)


def one_book(settings: Settings, workers: list[WorkerPolicies] | None = None) -> list[str]:
    """The policy ids every running worker holds (``workers``: as read already); RevisionError
    when none runs or they disagree, naming the ids that differ."""
    workers = worker_policies(settings) if workers is None else workers
    if not workers:
        raise RevisionError("no worker of this deployment is running (zhucan.worker-policies): start one first")
    books = {tuple(w.policy_ids) for w in workers}
    if len(books) > 1:
        everyone = set.intersection(*(set(w.policy_ids) for w in workers))
        lines = [f"  {w.worker}: {', '.join(sorted(set(w.policy_ids) - everyone)) or '(only the shared ones)'}"
                 for w in workers]
        raise RevisionError("the running workers hold different policies; load the same directory on every "
                            "host and restart them. Ids not held by all:\n" + "\n".join(lines))
    return list(workers[0].policy_ids)


def covered(policy_ids: list[str], region: str, year: int) -> bool:
    """Whether a policy of ``policy_ids`` covers ``region`` in ``year`` (the region or one above it)."""
    codes = set(chain(region))
    return any(pid.split("@")[0] in {f"{code}-{year}" for code in codes} for pid in policy_ids)


@dataclass
class Preview:
    preview_id: str
    targets: list[tuple[str, int]]
    live: list[str] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)
    scanned: int = 0
    changed: int = 0
    by_class: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    raised: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    budget_old: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    budget_new: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    people: list[list[Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"preview_id": self.preview_id, "targets": self.targets, "live": self.live,
                "candidates": self.candidates, "scanned": self.scanned, "changed": self.changed,
                "by_class": {c: {"person_years": v[0], "old_fen": v[1], "new_fen": v[2], "change_fen": v[2] - v[1]}
                             for c, v in sorted(self.by_class.items())},
                "frozen_raised": {c: {"person_years": v[0], "difference_fen": v[1]} for c, v in sorted(self.raised.items())},
                "budget_old": _budget(self.budget_old), "budget_new": _budget(self.budget_new),
                "people": [dict(zip(PEOPLE_FIELDS, row, strict=True)) for row in self.people],
                "errors": self.errors}


PEOPLE_FIELDS = ("id", "year", "county", "old_category", "old_subsidy_fen", "new_category", "new_subsidy_fen",
                 "frozen", "raised_fen")


def _budget(rows: dict[tuple[str, str], list[int]]) -> list[dict[str, Any]]:
    return [{"category": c, "funding_source": f, "persons": v[0], "subsidy_fen": v[1]}
            for (c, f), v in sorted(rows.items())]


def targets_of(directory: Path | PolicyBook, region: str | None, year: int | None) -> list[tuple[str, int]]:
    """The region-years a preview of ``directory`` (or its book, loaded) covers: each file's,
    narrowed by ``region`` and ``year``; or exactly (``region``, ``year``) when both are given."""
    if region and year:
        return [(region, year)]
    book = directory if isinstance(directory, PolicyBook) else load_book(directory)
    keys = sorted({(p.region_code, p.year) for p in book})
    found = [(r, y) for r, y in keys if (not year or y == year) and (not region or contains(region, r)
                                                                      or contains(r, region))]
    targets = sorted({((region if region and contains(r, region) else r), y) for r, y in found})
    # a region inside another target of the same year is already covered by it (its people once)
    return [(r, y) for r, y in targets if not any(r2 != r and y2 == y and contains(r2, r) for r2, y2 in targets)]


def request_preview(settings: Settings, directory: Path, region: str | None, year: int | None,
                    people: bool = False, timeout_s: float = 300.0) -> Preview:
    """Validate ``directory``, check the workers hold one book, send the candidate files to the
    workers and gather every partition's answer."""
    try:
        candidates = load_book(directory, settings.registry)  # a file that fails validation is refused here
    except Exception as exc:
        raise RevisionError(f"the candidate policies in {directory} are not valid:\n{exc}") from exc
    live = one_book(settings)
    targets = targets_of(candidates, region, year)
    if not targets:
        raise RevisionError(f"{directory} has no policy for region {region or 'any'} year {year or 'any'}")
    candidate_ids = [p.policy_id for p in candidates]
    for r, y in targets:
        if not covered(live, r, y) and not covered(candidate_ids, r, y):
            raise RevisionError(f"no policy covers region {r} in {y}, live or in {directory}")
    request = PreviewRevision(f"preview-{uuid.uuid4().hex[:12]}", tuple(targets),
                              tuple((Path(name).name, text) for name, text in read_texts(directory)), people)
    producer = make_producer(settings.kafka_bootstrap_servers)
    try:
        producer.send(settings.topics.policy_candidates, key=request.preview_id.encode(),
                      value=wire.pack_preview(request)[len(wire.PREVIEW):])
        producer.flush()
    finally:
        producer.close()
    return gather(settings, request.preview_id, targets, timeout_s)


def gather(settings: Settings, preview_id: str, targets: list[tuple[str, int]], timeout_s: float) -> Preview:
    """Every partition's answer to ``preview_id`` (zhucan.policy-previews), summed."""
    key = preview_id.encode()
    records: list[dict[str, Any]] = []
    done: dict[int, dict[str, Any]] = {}
    # one pass over the answers topic, from its start, until every partition has answered
    for batch in iter_topic(settings.kafka_bootstrap_servers, settings.topics.policy_previews, timeout_s=timeout_s):
        for doc in (json.loads(r.value) for r in batch if r.key == key):
            records.append(doc)
            if doc.get("done"):
                done[doc["partition"]] = doc
        if len(done) >= settings.partitions:
            break
    else:
        raise RevisionError(f"the workers did not finish preview {preview_id} in {timeout_s:.0f}s "
                            f"({len(done)} of {settings.partitions} partitions answered); are they running?")
    out = Preview(preview_id, targets)
    chunks: set[tuple[int, int]] = set()
    for d in records:  # a redelivered request answers twice: each partition's chunk counted once
        if d.get("done"):
            continue
        if (d["partition"], d["chunk"]) not in chunks:
            chunks.add((d["partition"], d["chunk"]))
            out.people += d["people"]
    for d in done.values():
        out.live = d.get("live", out.live)
        out.candidates = d.get("candidates", out.candidates)
        if d.get("error"):
            out.errors.append(f"partition {d['partition']}: {d['error']}")
            continue
        out.scanned += d["scanned"]
        out.changed += d["changed"]
        for c, n, old, new in d["by_class"]:
            row = out.by_class[c]
            row[0], row[1], row[2] = row[0] + n, row[1] + old, row[2] + new
        for c, n, fen in d["raised"]:
            row = out.raised[c]
            row[0], row[1] = row[0] + n, row[1] + fen
        for name, budget in (("budget_old", out.budget_old), ("budget_new", out.budget_new)):
            for c, f, n, fen in d[name]:
                row = budget[(c, f)]
                row[0], row[1] = row[0] + n, row[1] + fen
    out.people.sort(key=lambda row: (row[1], row[2], row[0]))
    if out.errors:
        raise RevisionError("the workers refused the candidate policies:\n" + "\n".join(sorted(set(out.errors))))
    return out


@dataclass
class HistoryRow:
    policy_id: str
    first: dt.datetime
    last: dt.datetime
    person_years: int


def history(settings: Settings, region: str, year: int) -> list[HistoryRow]:
    """Each policy id that decided standards of ``region`` in ``year`` (fee-standard.v1): when first
    and last seen, and how many person-years it decided (a version of theirs carries it)."""
    codec = Codec()
    seen: dict[str, list[Any]] = {}
    slots: dict[str, set[tuple[bytes, int]]] = defaultdict(set)
    for rec in read_to_end(settings.kafka_bootstrap_servers, settings.topics.fee_standard):
        try:
            _, fee = codec.decode(rec.value, expect="FeeStandard")
        except DecodeError:
            continue
        if fee["insurance_year"] != year or not contains(region, fee["region_code"]):
            continue
        at = fee["issued_at"]
        row = seen.setdefault(fee["policy_id"], [at, at])
        row[0], row[1] = min(row[0], at), max(row[1], at)
        slots[fee["policy_id"]].add((rec.key or b"", year))
    return sorted((HistoryRow(pid, first, last, len(slots[pid])) for pid, (first, last) in seen.items()),
                  key=lambda r: r.first)
