"""The worker process: topics ensured, the app built, the metrics endpoint, a drain on stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError

from streams.app import StreamsApp, create_app, policy_status_record
from streams.kafka.admin import check_topics, cluster, ensure_faust_topics, ensure_topics
from streams.kafka.security import ClientSecurity, SecurityConfigError
from streams.runtime.faust_compat import DrainingWorker, leader_topic_name
from streams.runtime.metrics import serve_metrics
from streams.settings import Settings

log = logging.getLogger("zhucan.worker")


def settle_heap(young_threshold: int) -> None:
    """Move the start-up heap (modules, Faust, the clients: ~100,000 objects that live as long
    as the worker) to the permanent generation, and collect the young generation every
    ``young_threshold`` allocations instead of CPython's 700 (the older ones after 20
    collections of the younger instead of 10). A fetch of 4,000 records allocates a few hundred
    thousand short-lived objects: with the defaults many lived through two young collections,
    and a full collection, scanning the whole heap and freeing nothing, ran every few seconds
    during a province's batch (50-190 ms each). Measured with `zhucan bench` (300,000 events,
    one worker, twice each): 111-119 µs of worker CPU per event instead of 128-135."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, 20, 20)


class ZhucanWorker(DrainingWorker):
    """Drains before stopping: on SIGTERM/SIGINT the intake finishes and commits the fetch in
    hand and stops, no new message is handed to an agent, the ones being handled finish (their
    table writes while the tables still run), the producer is flushed, and only then does
    Faust's own shutdown begin. Messages fetched but not handled are not acked and come again
    after a restart (at-least-once)."""

    def __init__(self, built: StreamsApp, **kwargs: Any) -> None:
        super().__init__(built.faust, **kwargs)
        self.built = built

    async def drain(self) -> None:
        app, built = self.app, self.built
        ctx = built.ctx
        app.flow_control.suspend()
        log.info("stopping: draining %d message(s) in flight", ctx.in_flight)
        if built.intake is not None:
            try:  # finishes and commits the fetch in hand, then fetches no more
                await asyncio.wait_for(built.intake.stop(), 20)
            except Exception as exc:  # stopping anyway; what was not committed comes again
                log.warning("intake stop failed: %s", exc)
        deadline = time.monotonic() + 20
        while ctx.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if built.queries is not None:
            await built.queries.stop()
        try:  # this worker holds no policies any more (zhucan policy status)
            await asyncio.wait_for(built.ctx.send([policy_status_record(built.ctx.settings, built.ctx.book,
                                                                        stopping=True)]), 5)
        except Exception as exc:
            log.warning("could not withdraw this worker's policy ids: %s", exc)
        try:
            await asyncio.wait_for(app.producer.flush(), 15)
        except Exception as exc:  # stopping anyway; what was not acked comes again
            log.warning("producer flush on stop failed: %s", exc)
        try:
            await asyncio.wait_for(built.ctx.commands.reader.close(), 5)  # the gap reader (runtime/reader.py)
        except Exception as exc:  # stopping anyway
            log.warning("closing the gap reader failed: %s", exc)


def private_data_dir(path: Path) -> None:
    """The worker's data directory (RocksDB: every person's state) is its owner's alone: created
    0700, and what the worker writes is 0600 (umask 077). One that others can read or enter is
    refused, with the command that fixes it (issue #20)."""
    os.umask(0o077)
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SecurityConfigError(
            f"the data directory {path} is readable by others (mode {mode:o}); it holds every person's state. "
            f"Fix it with `chmod -R go-rwx {path}` (or set ZHUCAN_DATA_DIR to a private directory), then start again")


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT."""
    private_data_dir(settings.data_dir)
    weak = settings.weak_secret()
    if weak and ClientSecurity.from_settings(settings.kafka, settings.kafka_bootstrap_servers).protocol != "PLAINTEXT":
        # a secured cluster holds real people: keys from a public or guessable secret would let
        # anyone recompute a person's token from an ID number
        development = " (ZHUCAN_KEY_SECRET is the development secret)" if settings.using_dev_secret else ""
        raise SecurityConfigError(
            f"the cluster is secured but ZHUCAN_KEY_SECRET is not worth the name: {weak}{development}. Set it to "
            f"at least 32 random bytes, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`, kept "
            f"like a password (docs/operations.md, Security), before the worker starts")
    settings.warn_if_dev_secret()
    cid, brokers = cluster(settings)
    rf, min_isr = settings.replication(brokers)
    if settings.replication_factor is None and brokers < 3:
        # describe_cluster lists the brokers that answer: on a cluster with brokers down, the
        # default would under-replicate any topic created now.
        (log.info if brokers == 1 else log.warning)(
            "%d broker(s) answer and ZHUCAN_REPLICATION_FACTOR is not set: topics created now get replication "
            "factor %d (set it in production: docs/operations.md, Running in production)", brokers, rf)
    settings = settings.model_copy(update={"replication_factor": rf, "min_insync_replicas": min_isr})
    ensure_topics(settings)
    log.info("cluster %s: %d broker(s) answer; topics with replication factor %d, min.insync.replicas %d",
             cid, brokers, rf, min_isr)
    try:
        checks = check_topics(settings)
    except KafkaError as exc:  # a broker down: the worker runs; `zhucan topics check` says more later
        log.warning("could not check the topics against the spec: %s", exc)
        checks = []
    for check in checks:  # a topic that differs is never silently accepted: said at every start
        if check.problems:
            log.warning("topic %s differs from the spec: %s (zhucan topics check)", check.name,
                        "; ".join(check.problems))
    built = create_app(settings, cluster=cid)
    ensure_faust_topics(settings, [leader_topic_name(settings.streams_app_id)])  # the app declares none itself

    @built.faust.task
    async def heap_settled() -> None:
        """Once the worker runs (see settle_heap)."""
        settle_heap(settings.tuning.gc_young_threshold)

    if settings.metrics_port >= 0:
        try:
            serve_metrics(built.ctx.metrics, settings.metrics_host, settings.metrics_port)
        except OSError as exc:  # e.g. a second worker on the same host: it runs, without an endpoint
            log.warning("metrics endpoint off: cannot listen on %s:%d (%s); set ZHUCAN_METRICS_PORT",
                        settings.metrics_host, settings.metrics_port, exc)
    worker: Any = ZhucanWorker(built, loglevel=loglevel)
    worker.execute_from_commandline()
