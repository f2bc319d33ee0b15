"""Creating topics and asking the cluster who it is, through kafka-python's admin client."""

from __future__ import annotations

import logging
import time

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.settings import Settings

log = logging.getLogger("zhucan.topics")


def admin_client(bootstrap: str, timeout_s: float = 30.0) -> KafkaAdminClient:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="zhucan-admin", request_timeout_ms=15000)
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka at {bootstrap} does not answer: {exc}") from exc
            time.sleep(0.5)


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Name -> config of every contract and internal topic zhucan creates (streams/kafka/topics.py)."""
    return settings.topics.configs()


def ensure_topics(settings: Settings, partitions: int | None = None) -> list[str]:
    """Create every contract and internal topic that is missing; returns the names created."""
    n = partitions or settings.partitions
    admin = admin_client(settings.kafka_bootstrap_servers)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name, n, 1, topic_configs=cfg)
            for name, cfg in topic_configs(settings).items()
            if name not in existing
        ]
        created: list[str] = []
        for topic in wanted:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        if created:
            log.info("created %d topics: %s", len(created), ", ".join(created))
        _wait_for_metadata(admin, [t.name for t in wanted])
        return created
    finally:
        admin.close()


def _wait_for_metadata(admin: KafkaAdminClient, names: list[str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    pending = set(names)
    while pending and time.monotonic() < deadline:
        pending -= set(admin.list_topics())
        if pending:
            time.sleep(0.2)


def cluster_id(settings: Settings) -> str:
    """The Kafka cluster's id: the worker keeps its local state per cluster, so a wiped or
    different broker never meets a table copy made from another one's changelog."""
    admin = admin_client(settings.kafka_bootstrap_servers)
    try:
        return str(admin.describe_cluster().get("cluster_id") or "unknown")
    finally:
        admin.close()
