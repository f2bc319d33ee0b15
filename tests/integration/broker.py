"""Which Kafka the tests use: KAFKA_BOOTSTRAP_SERVERS, else testcontainers (Docker), else a local broker.

A missing broker is a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-not-found]

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def provide_broker() -> Iterator[tuple[str, str]]:
    """Yield ``(bootstrap, how)``."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        yield env, "KAFKA_BOOTSTRAP_SERVERS"
        return
    if docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as kafka:
            yield kafka.get_bootstrap_server(), "testcontainers"
        return
    from connectors.dev.localkafka import LocalKafka, free_port

    home = Path(tempfile.mkdtemp(prefix="zhucan-test-kafka-"))
    broker = LocalKafka(home=home, port=free_port(), controller_port=free_port())
    broker.start()
    try:
        yield broker.bootstrap, f"local broker in {home}"
    finally:
        broker.stop(wipe=True)
