"""Worker processes for the demo, the benchmark and the tests: `zhucan worker` with a deployment's settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from streams.settings import Settings


def start_worker(settings: Settings, log_path: Path, extra_env: dict[str, str] | None = None,
                 python_args: Sequence[str] = (), worker_args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """Start ``zhucan worker`` for ``settings`` in its own session, logging to ``log_path``."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
           "ZHUCAN_TOPIC_PREFIX": settings.topic_prefix, "ZHUCAN_APP_ID": settings.app_id,
           "ZHUCAN_PARTITIONS": str(settings.partitions), "ZHUCAN_DATA_DIR": str(settings.data_dir),
           "ZHUCAN_KEY_SECRET": settings.key_secret.get_secret_value(),
           "ZHUCAN_METRICS_PORT": str(settings.metrics_port), **(extra_env or {})}
    if settings.instance_id is not None:
        env["ZHUCAN_INSTANCE_ID"] = settings.instance_id
    if settings.policy_dir is not None:
        env.setdefault("ZHUCAN_POLICY_DIR", str(settings.policy_dir))
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # a worker refuses a data dir others can read
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([sys.executable, *python_args, "-m", "connectors.ops.cli", "worker", *worker_args], env=env,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    return proc


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM (the worker drains, then stops); SIGKILL only after ``timeout``."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
