"""Creating and checking topics, and asking the cluster who it is (kafka-python's admin client).

Every topic of the list (``streams/kafka/topics.py``) is created with ``settings.partitions``
partitions, the replication factor and ``min.insync.replicas`` of ``Settings.replication``
(default: min(3, brokers) and one less), and its cleanup policy. A topic that exists with other
settings is never silently accepted: ``check_topics`` reports it (``zhucan topics check``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kafka.admin import (
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)
from kafka.errors import (
    AuthorizationError,
    KafkaError,
    SaslAuthenticationFailedError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    UnknownBrokerIdError,
    UnknownTopicOrPartitionError,
    UnsupportedSaslMechanismError,
)
from kafka.structs import TopicPartition

from streams.kafka.security import kafka_python_config
from streams.settings import Settings

log = logging.getLogger("zhucan.topics")
T = TypeVar("T")


REFUSALS = (AuthorizationError, SaslAuthenticationFailedError, UnsupportedSaslMechanismError)


def admin_client(bootstrap: str, timeout_s: float = 30.0) -> KafkaAdminClient:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return KafkaAdminClient(**kafka_python_config(bootstrap, client_id="zhucan-admin", request_timeout_ms=15000))
        except KafkaError as exc:
            if isinstance(exc, REFUSALS):
                raise
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka at {bootstrap} does not answer: {exc}") from exc
            time.sleep(0.5)


def group_offsets(bootstrap: str, group: str, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """The committed offsets of ``group`` on ``tps`` ((topic, partition) pairs; those it has)."""
    admin = admin_client(bootstrap)
    try:
        found = admin.list_group_offsets({group: [TopicPartition(t, p) for t, p in tps]}).get(group, {})
    finally:
        admin.close()
    return {(tp.topic, tp.partition): int(meta.offset) for tp, meta in found.items()
            if meta is not None and meta.offset >= 0}


def retrying(call: Callable[[], T], what: str, timeout_s: float = 120.0) -> T:
    """``call()``, retried while Kafka errors (a broker of the bootstrap list down, a leader moving)
    for up to ``timeout_s``: a worker started while a node is down waits instead of exiting."""
    deadline = time.monotonic() + timeout_s
    delay = 0.5
    while True:
        try:
            return call()
        except KafkaError as exc:
            # a refusal (no ACL, bad credentials) is an answer, not an outage: say it at once
            if time.monotonic() > deadline or isinstance(exc, REFUSALS):
                raise
            log.warning("%s failed (%s: %s); retrying", what, type(exc).__name__, exc)
            time.sleep(delay)
            delay = min(5.0, delay * 2)


def brokers(admin: KafkaAdminClient) -> int:
    return len(retrying(admin.describe_cluster, "describe cluster").get("brokers") or []) or 1


def replication(settings: Settings, admin: KafkaAdminClient) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for this cluster."""
    return settings.replication(brokers(admin))


def topic_configs(settings: Settings, min_insync: int) -> dict[str, dict[str, str]]:
    """Name -> config of every topic zhucan creates (streams/kafka/topics.py)."""
    return {name: {**cfg, "min.insync.replicas": str(min_insync)} for name, cfg in settings.topics.configs().items()}


def ensure_topics(settings: Settings, partitions: int | None = None) -> list[str]:
    """Create every topic that is missing; returns the names created."""
    n = partitions or settings.partitions
    return _create_missing(settings, lambda min_isr: {name: (n, cfg) for name, cfg in topic_configs(settings, min_isr).items()})


def ensure_faust_topics(settings: Settings, names: list[str]) -> list[str]:
    """Faust's own topics (the leader assignor's: one partition), replicated and with
    min.insync.replicas like zhucan's; the app never declares a topic itself (streams/app.py)."""
    return _create_missing(settings, lambda min_isr: {name: (1, {"cleanup.policy": "delete",
                                                                 "min.insync.replicas": str(min_isr)})
                                                      for name in names})


def _create_missing(settings: Settings,
                    wanted_of: Callable[[int], dict[str, tuple[int, dict[str, str]]]]) -> list[str]:
    held = [admin_client(settings.kafka_bootstrap_servers)]  # the client in use: a retry may replace it
    try:
        rf, min_isr = replication(settings, held[0])
        specs = wanted_of(min_isr)
        existing = retrying(lambda: present_topics(held[0], specs), "describe topics")
        wanted = [NewTopic(name, n, rf, topic_configs=cfg) for name, (n, cfg) in specs.items() if name not in existing]
        created: list[str] = []
        for topic in wanted:
            def create(topic: NewTopic = topic) -> bool:
                try:
                    held[0].create_topics([topic])
                    return True
                except TopicAlreadyExistsError:  # (a retry after a create that went through)
                    return False
                except UnknownBrokerIdError:
                    # right after a node restarts, the controller the metadata names may not be
                    # known yet (seen in the replication tests). kafka-python's admin client keeps
                    # the controller it first asked for, so retrying with it failed for the whole
                    # two minutes (a full suite of 2026-12-07): the retry gets a new client
                    held[0].close()
                    held[0] = admin_client(settings.kafka_bootstrap_servers)
                    raise

            if retrying(create, f"create topic {topic.name}"):
                created.append(topic.name)
        if created:
            log.info("created %d topics (replication factor %d, min.insync.replicas %d): %s", len(created), rf,
                     min_isr, ", ".join(created))
        _wait_for_metadata(held[0], [t.name for t in wanted])
        return created
    finally:
        held[0].close()


@dataclass
class TopicCheck:
    name: str
    exists: bool
    partitions: int = 0
    replication_factor: int = 0  # the smallest over the partitions
    min_isr_seen: int = 0  # the smallest in-sync replica set over the partitions, now
    configs: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_topics(settings: Settings) -> list[TopicCheck]:
    """Each topic of the list against its spec: partitions, replication factor, in-sync replicas,
    and every config the spec sets (cleanup policy, retention by time and size,
    min.insync.replicas). ``problems`` is empty when it matches."""
    admin = admin_client(settings.kafka_bootstrap_servers)
    try:
        rf, min_isr = replication(settings, admin)
        wanted = topic_configs(settings, min_isr)
        existing = present_topics(admin, wanted)
        present = [name for name in wanted if name in existing]
        described = {t["name"]: t for t in admin.describe_topics(present)} if present else {}
        configs: dict[str, Any] = {}
        if present:
            resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in present]
            configs = admin.describe_configs(resources, config_filter="all").get("topic", {})
        out: list[TopicCheck] = []
        for name, cfg in wanted.items():
            if name not in existing:
                out.append(TopicCheck(name, False, problems=["missing (zhucan topics create makes it)"]))
                continue
            parts = described[name]["partitions"]
            check = TopicCheck(
                name, True, partitions=len(parts),
                replication_factor=min(len(p["replica_nodes"]) for p in parts),
                min_isr_seen=min(len(p["isr_nodes"]) for p in parts),
                configs={k: str(configs.get(name, {}).get(k, {}).get("value")) for k in cfg},
            )
            if check.partitions != settings.partitions:
                check.problems.append(f"{check.partitions} partitions, the spec says {settings.partitions}")
            if check.replication_factor != rf:
                check.problems.append(f"replication factor {check.replication_factor}, the spec says {rf}")
            if check.min_isr_seen < min_isr:
                check.problems.append(f"only {check.min_isr_seen} replica(s) in sync somewhere, fewer than "
                                      f"min.insync.replicas {min_isr}: writes there are refused")
            for key, expected in cfg.items():  # every config the spec sets (issue #20: retention.bytes was missed)
                if check.configs[key] != expected:
                    check.problems.append(f"{key}={check.configs[key]}, the spec says {expected}")
            out.append(check)
        return out
    finally:
        admin.close()


def raise_partitions(settings: Settings) -> tuple[list[str], list[str]]:
    """Give every topic with fewer partitions than ``settings.partitions`` that many, where safe:
    an unkeyed topic, or a keyed one that holds no data. Returns (raised, refused with why)."""
    specs = {settings.topics.name(s): s for s in settings.topics.specs}
    admin = admin_client(settings.kafka_bootstrap_servers)
    try:
        present = present_topics(admin, specs)  # once, not per topic
        existing = [name for name in specs if name in present]
        raised, refused = [], []
        for t in admin.describe_topics(existing):
            name, count = t["name"], len(t["partitions"])
            if count >= settings.partitions:
                continue
            if specs[name].keyed and _holds_data(admin, name, count):
                refused.append(f"{name}: keyed and holds data; {count} -> {settings.partitions} partitions would "
                               "move keys to other partitions (a person's order, compaction). Create a new "
                               "deployment (ZHUCAN_TOPIC_PREFIX) and replay into it instead")
                continue
            admin.create_partitions({name: NewPartitions(total_count=settings.partitions)})
            raised.append(f"{name}: {count} -> {settings.partitions} partitions")
        return raised, refused
    finally:
        admin.close()


def _holds_data(admin: KafkaAdminClient, name: str, partitions: int) -> bool:
    specs = {TopicPartition(name, p): OffsetSpec.LATEST for p in range(partitions)}
    return any(o.offset > 0 for o in admin.list_partition_offsets(specs).values())


_ABSENT = (UnknownTopicOrPartitionError.errno, TopicAuthorizationFailedError.errno)


def present_topics(admin: KafkaAdminClient, names: Iterable[str]) -> set[str]:
    """Which of ``names`` the cluster has, as ``list_topics`` lists them (a topic this client may
    not describe is not listed), from one metadata request naming them: never the whole
    cluster's, whose decoding in kafka-python cost a worker's start about 0.14 s of CPU per
    request, three or more at a start, on a broker holding 2,500 topics (a cluster shared with
    other systems holds as many)."""
    wanted = sorted(set(names))
    if not wanted:
        return set()
    return {t["name"] for t in admin.describe_topics(wanted) if t["error_code"] not in _ABSENT}


def _wait_for_metadata(admin: KafkaAdminClient, names: list[str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    pending = set(names)
    while pending and time.monotonic() < deadline:
        pending -= present_topics(admin, pending)
        if pending:
            time.sleep(0.2)


def cluster(settings: Settings) -> tuple[str, int]:
    """(cluster id, number of brokers that answer). The worker keeps its local state per cluster
    id, so a wiped or different cluster never meets a table copy made from another one's changelog."""
    admin = admin_client(settings.kafka_bootstrap_servers)
    try:
        info = retrying(admin.describe_cluster, "describe cluster")
        return str(info.get("cluster_id") or "unknown"), len(info.get("brokers") or []) or 1
    finally:
        admin.close()
