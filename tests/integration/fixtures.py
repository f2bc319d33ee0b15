"""Real-Kafka fixtures: a session broker, and per test a fresh prefix, topics, group and worker."""

from __future__ import annotations

import datetime as dt
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from connectors.dev.workers import start_worker, stop_worker
from connectors.kafka_io import make_producer, read_topic
from schemas.codec import Codec
from streams.domain.ids import person_key
from streams.kafka.admin import ensure_topics
from streams.settings import Settings

TEST_SECRET = "integration-test-secret"


class Stack:
    """One isolated deployment on the shared broker: its own topic prefix, app id and worker."""

    def __init__(self, bootstrap: str, workdir: Path) -> None:
        run = uuid.uuid4().hex[:8]
        self.settings = Settings(
            kafka_bootstrap_servers=bootstrap, topic_prefix=f"t{run}.", app_id=f"zhucan-test-{run}",
            partitions=2, key_secret=TEST_SECRET, data_dir=workdir / "data", metrics_port=0,
        )
        self.topics = self.settings.topics
        self.workdir = workdir
        self.codec = Codec()
        self.log_path = workdir / "worker.log"
        self.worker: subprocess.Popen[bytes] | None = None
        self.producer = make_producer(bootstrap)
        ensure_topics(self.settings)

    # -- worker ---------------------------------------------------------------
    def start_worker(self, **extra_env: str) -> None:
        self.worker = start_worker(self.settings, self.log_path, extra_env)

    def stop_worker(self) -> None:
        if self.worker is not None:
            stop_worker(self.worker)
            self.worker = None

    def worker_log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    # -- producing ------------------------------------------------------------
    def send_identity(self, ev: dict[str, Any]) -> None:
        self.producer.send(self.topics.identity[ev["source"]], key=ev["event_id"].encode(),
                           value=self.codec.encode("IdentityEvent", ev))
        self.producer.flush()

    def send_raw(self, topic: str, value: bytes, key: bytes = b"raw") -> None:
        self.producer.send(topic, key=key, value=value)
        self.producer.flush()

    def send_payment(self, ack: dict[str, Any]) -> None:
        self.producer.send(self.topics.payment_status, key=ack["ack_id"].encode(),
                           value=self.codec.encode("PaymentStatus", ack))
        self.producer.flush()

    # -- reading --------------------------------------------------------------
    def key(self, id_number: str) -> str:
        return person_key(id_number, TEST_SECRET.encode())

    def read(self, topic: str, record: str, *, until=None, timeout_s: float = 60.0, idle_s: float | None = None):
        """Decoded ``(key, value, headers)`` tuples of a topic, from the beginning."""
        def alive() -> None:
            if self.worker is not None and self.worker.poll() is not None:
                tail = "\n".join(self.worker_log().splitlines()[-40:])
                raise AssertionError(f"the worker exited with code {self.worker.returncode}:\n{tail}")

        def decoded(rs):
            alive()
            return [(r.key.decode() if r.key else None, self.codec.decode(r.value, expect=record)[1], r.headers) for r in rs]

        cond = (lambda rs: until(decoded(rs))) if until else None
        return decoded(read_topic(self.settings.kafka_bootstrap_servers, topic, timeout_s=timeout_s, until=cond,
                                  idle_s=idle_s))

    def fees_for(self, id_number: str, *, at_least: int = 1, timeout_s: float = 60.0, settle_s: float = 2.0):
        """Fee standards of one person: wait for ``at_least``, then a short quiet time for extras."""
        key = self.key(id_number)
        self.read(self.topics.fee_standard, "FeeStandard", timeout_s=timeout_s,
                  until=lambda recs: sum(1 for k, _, _ in recs if k == key) >= at_least)
        time.sleep(settle_s)
        recs = self.read(self.topics.fee_standard, "FeeStandard", timeout_s=10, idle_s=1.0)
        return [v for k, v, _ in recs if k == key]

    def cli_env(self, monkeypatch) -> None:
        """Point an in-process ``zhucan`` command at this deployment."""
        for name, value in {"KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap_servers,
                            "ZHUCAN_TOPIC_PREFIX": self.settings.topic_prefix,
                            "ZHUCAN_PARTITIONS": str(self.settings.partitions),
                            "ZHUCAN_KEY_SECRET": TEST_SECRET}.items():
            monkeypatch.setenv(name, value)

    def send_control(self, command: str, region: str, year: int, as_of: dt.date) -> str:
        from connectors.ops.control import send_control, wait_for_control

        issued = dt.datetime.combine(as_of, dt.time(12), tzinfo=dt.UTC)
        command_id = send_control(self.settings, command, region, year, issued)
        assert wait_for_control(self.settings, command_id, timeout_s=60), f"{command} {command_id} not finished"
        return command_id

    def reviews(self, at_least: int = 1, timeout_s: float = 60.0):
        return [v for _, v, _ in self.read(self.topics.review, "ReviewCase", timeout_s=timeout_s,
                                           until=lambda rs: len(rs) >= at_least)]

    def close(self) -> None:
        self.stop_worker()
        self.producer.close()
