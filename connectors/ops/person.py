"""`zhucan person ID`: one person, from the state of the worker that holds them.

The person key gives the partition; the streams group's assignment gives the member that holds
it, and that member's line of ``zhucan.worker-policies`` (its client id) where it answers
(``streams/runtime/query.py``). If it cannot be reached (stopped, moving, no worker at all), the
person's lines of ``ledger.v1`` are shown instead: the ledger, without the timeline.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from kafka.admin import KafkaAdminClient

from connectors.kafka_io import read_to_end
from connectors.ops.revision import WorkerPolicies, worker_policies
from schemas.codec import Codec
from schemas.exceptions import DecodeError
from streams.domain.ids import person_key
from streams.kafka.security import kafka_python_config
from streams.runtime.partitioning import partition_for
from streams.runtime.query import query_token
from streams.settings import Settings


@dataclass
class Found:
    source: str  # "worker <id>" or "ledger.v1"
    person: dict[str, Any] | None  # the worker's view (streams/domain/view.py), or None
    ledger: list[dict[str, Any]] = field(default_factory=list)  # ledger.v1 lines (the fallback)
    tried: list[str] = field(default_factory=list)  # why each worker asked did not answer


def owners(settings: Settings, partition: int) -> list[str]:
    """The client ids of the streams group's members that hold ``partition`` of the person topic."""
    admin = KafkaAdminClient(**kafka_python_config(settings.kafka_bootstrap_servers), client_id="zhucan-person")
    try:
        described = admin.describe_groups([settings.streams_app_id]).get(settings.streams_app_id, {})
    finally:
        admin.close()
    out = []
    for member in described.get("members") or []:
        assignment = member.get("member_assignment") or {}
        for tp in assignment.get("assigned_partitions") or []:
            if tp.get("topic") == settings.topics.person_commands and partition in (tp.get("partitions") or []):
                out.append(member.get("client_id", ""))
    return out


def ask(worker: WorkerPolicies, key: str, token: str, timeout_s: float = 10.0) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{worker.query_url}/person/{key}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (the worker's own URL)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def ledger_lines(settings: Settings, key: str, partition: int) -> list[dict[str, Any]]:
    """The person's lines of ``ledger.v1`` (in the person's partition), the latest per year."""
    codec, latest = Codec(), {}
    prefix = f"{key}|".encode()
    for rec in read_to_end(settings.kafka_bootstrap_servers, settings.topics.ledger, only={partition}):
        if rec.key and rec.key.startswith(prefix) and rec.value:
            try:
                latest[rec.key] = codec.decode(rec.value, expect="LedgerEntry")[1]
            except DecodeError:
                continue
    return sorted(latest.values(), key=lambda e: e["insurance_year"])


def find(settings: Settings, id18: str) -> Found:
    key = person_key(id18, settings.secret_bytes)
    partition = partition_for(key.encode(), settings.partitions)
    token = query_token(settings.secret_bytes)
    workers = [w for w in worker_policies(settings) if w.query_url]
    held_by = owners(settings, partition)
    tried = []
    # the owner by the group's assignment first; the others after (a rebalance may have moved it)
    for worker in sorted(workers, key=lambda w: w.client_id not in held_by):
        try:
            status, doc = ask(worker, key, token)
        except (OSError, ValueError) as exc:
            tried.append(f"{worker.worker}: {exc}")
            continue
        if status == 200:
            return Found(f"worker {worker.worker}", doc["person"])
        if status == 404:
            return Found(f"worker {worker.worker}", None, tried=[f"{worker.worker}: no state for this person"])
        tried.append(f"{worker.worker}: {status} {doc.get('error', '')}")
    if not workers:
        tried.append("no running worker says where it answers (zhucan.worker-policies)")
    return Found("ledger.v1", None, ledger_lines(settings, key, partition), tried)
