"""`zhucan bench`: throughput, latency, memory and state size of the worker on real Kafka.

A synthetic province (several regions, ~15% of people held by two departments, ~2%
invalid records, ~1% redeliveries) is produced to fresh topics, then measured:

- ``ceiling_eps``: a plain kafka-python client consuming the same identity records and
  producing as many, with no processing (the raw ceiling of this machine and broker);
- ``throughput_eps``: the worker(s), already running, on a batch produced at once (as when
  a window opens), from the first identity event in to the last fee standard out;
- ``p50_ms``/``p99_ms``: event-to-fee-standard latency at a steady offered rate;
- ``rss_mb``: the worker's peak resident memory; ``state_bytes_per_person``: the person
  table's changelog bytes per person;
- ``worker_cpu_us_per_event``: the workers' CPU time during the batch per event (to compare
  two versions of the code on a shared machine, where throughput swings with the neighbours).

No timed assertion anywhere: the numbers are reported, not judged, here.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError

from connectors.dev.sample import certified_day, identity_event, make_id, raised_policies, utc
from connectors.dev.workers import start_worker, stop_worker
from connectors.kafka_io import make_producer, read_to_end
from schemas import native
from schemas.codec import Codec
from streams.domain.ids import person_key
from streams.kafka.admin import admin_client, ensure_topics, replication
from streams.kafka.lag import LagMonitor
from streams.kafka.security import kafka_python_config
from streams.policies import load_book
from streams.runtime.partitioning import partition_for
from streams.settings import Settings

# the synthetic province's counties (each certified on its region's certified_day of the book)
REGIONS = ["410102", "410305", "411402", "371002", "370102", "510402", "500101"]
SINGLE = [("CIVIL_AFFAIRS", "MINIMUM_LIVING"), ("CIVIL_AFFAIRS", "EXTREME_POVERTY"),
          ("RURAL_REVITALIZATION", "MONITORED_RELAPSE_RISK")]
SECOND = ("RURAL_REVITALIZATION", "MONITORED_RELAPSE_RISK")


@dataclass
class BenchResult:
    events: int
    people: int
    partitions: int
    workers: int
    seconds: float
    throughput_eps: float
    ceiling_eps: float
    ceiling_share: float
    fee_standards: int
    p50_ms: float
    p99_ms: float
    latency_rate_eps: int
    rss_mb: float
    state_bytes_per_person: float
    machine: str
    members: int = 1  # workers in the groups when the batch was done (partitions shared among them)
    duplicated_versions: int = 0  # (person, year, version) published more than once (a re-send, at-least-once)
    conflicting_versions: int = 0  # (person, year, version) published with different content: must be 0
    people_without_standard: int = 0  # people with a valid record but no fee standard: must be 0
    people_without_standard_after_stop: int = 0  # the same, counted again once the workers stopped: must be 0
    # the second ceiling: librdkafka (confluent-kafka) consuming and producing the same records
    ceiling_librdkafka_eps: float | None = None
    ceiling_librdkafka_share: float | None = None
    mode: str = "live"  # live: produced while the workers run; backlog: produced before they start
    static_members: bool = False  # each worker with its own instance id (ZHUCAN_INSTANCE_ID, static membership)
    # CPU time (user + system) of all workers from their start until the batch is done, per
    # identity event: what the work costs (startup included: nothing done before the clock
    # escapes), much less sensitive than throughput to what else runs on a shared machine
    worker_cpu_us_per_event: float = 0.0
    # of that CPU, what the workers had used before the batch's first record was produced (live
    # mode: their start-up, joining the groups, recovering the tables; None in backlog mode, where
    # they start on the batch): a fixed cost per worker start, which a smaller batch shares among
    # fewer events
    worker_cpu_before_batch_s: float | None = None
    # not in it: what the workers used, idle, from the first look that saw every group at the end
    # until the bench was sure (the quiet spell, the count on the whole topic; ``caught_up``)
    worker_cpu_confirming_s: float | None = None
    # with --revision: the workers' preview of a revision of every region-year, and the REDECIDEs
    # with it live (the workers restarted first), over the batch's people
    revision_preview_s: float | None = None
    revision_redecide_s: float | None = None
    revision_changed: int | None = None
    # after the batch: `zhucan coverage` and `zhucan settle` as an operator runs them (a process
    # each, timed from outside: wall seconds and peak memory), reading the ledger's totals
    reports: dict[str, dict[str, float]] = field(default_factory=dict)
    # with --kill: one worker SIGKILLed a third of the way through the batch and started again at
    # once on its own data directory. The longest wait: over the fee-standard partitions that
    # still had people to decide, the longest time without a fee standard from the kill on
    # (``kill_waits``). Caught up: from the restart to the batch's last fee standard.
    kill_longest_wait_s: float | None = None
    kill_waits_s: dict[int, float] | None = None
    kill_caught_up_s: float | None = None
    # the run's topics (named with this prefix) and groups (this app id and its suffixes):
    # deleted at the end unless --keep-topics
    topic_prefix: str = ""
    app_id: str = ""
    topics_kept: bool = False
    # the latency run: the client that offered its events (librdkafka where it can run, else
    # kafka-python), and the cores in use while they were offered: the whole machine's busy cores
    # (every process on it, the broker too where it runs here), the workers', this bench's own
    latency_client: str = ""
    latency_machine_cores: float | None = None
    latency_workers_cores: float | None = None
    latency_bench_cores: float | None = None
    # the synthetic province's certification days (0: each region's people on one day) and the
    # share of newcomers given the remembered decisions of an earlier person of the same facts
    # (the workers' zhucan_person_newcomers_total; streams/domain/newcomers.py)
    spread_days: int = 0
    newcomers_remembered: float | None = None
    # and of second identities of people held as newcomers are (zhucan_person_second_identities_total)
    second_identities_remembered: float | None = None
    # the client that produced the batch (librdkafka where it can run, else kafka-python;
    # ``--batch-client``): in live mode it shares the cores the workers are measured on
    batch_client: str = ""
    # the share of the machine's CPU time its hypervisor stole (ran other guests) from the batch's
    # start until it was done: on this project's shared virtual machine the same code took 56.3 µs
    # per event in a run with 0.2% stolen and 77.0 in one with 12% (2026-12-07, docs/performance.md),
    # so a figure is read with it
    steal_share: float | None = None
    # the workers' CPU per event as the number of records kafka-python's ceiling (one process
    # consuming and producing the same records, in the same run) moves with that much CPU: the
    # same code took 40-77 µs per event in one morning as the machine's speed changed (its
    # ceiling 21,500-37,000 records/s, little steal), and 1.3-1.9 of these (2026-12-07,
    # docs/performance.md). A reading to compare hours by; the ceiling is measured after the batch
    worker_cpu_in_ceiling_records: float | None = None


def in_ceiling_records(cpu_us_per_event: float, ceiling_eps: float) -> float | None:
    """``cpu_us_per_event`` as records the ceiling moves with that much CPU (the ceiling is one
    process, busy on one core), or None without a ceiling."""
    return round(cpu_us_per_event * ceiling_eps / 1e6, 2) if ceiling_eps > 0 and cpu_us_per_event > 0 else None


def measure_report(settings: Settings, args: Sequence[str]) -> dict[str, float]:
    """One ``zhucan`` command of an operator, run as its own process: wall seconds and peak RSS
    (the kernel's, from wait4: the whole process, interpreter and imports included)."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
           "ZHUCAN_TOPIC_PREFIX": settings.topic_prefix, "ZHUCAN_APP_ID": settings.app_id,
           "ZHUCAN_PARTITIONS": str(settings.partitions), "ZHUCAN_KEY_SECRET": settings.key_secret.get_secret_value()}
    # Started by a small launcher: a child forked from this process (which holds the batch) would
    # count this process's pages in its peak until it execs.
    launcher = ("import resource, subprocess, sys, time; t = time.monotonic(); "
                "rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL); "
                "print(time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)")
    done = subprocess.run([sys.executable, "-c", launcher, sys.executable, "-m", "connectors.ops.cli", *args], env=env,
                          capture_output=True, text=True, check=False)
    seconds, peak_kb, rc = done.stdout.split()
    if int(rc) != 0:
        raise RuntimeError(f"zhucan {' '.join(args)} failed ({rc}): {done.stderr[-500:]}")
    return {"seconds": round(float(seconds), 2), "peak_mb": round(int(peak_kb) / 1024, 1)}


def synthetic_events(n_events: int, seed: int = 7,
                     spread_days: int = 0) -> tuple[list[tuple[str, bytes, bytes]], int, set[str]]:
    """(topic-source, key, value) for ``n_events`` identity records, the number of people, and the
    ID numbers of the people with at least one valid record of a subsidised class (who must get
    a fee standard; Chongqing's notice, for one, does not subsidise 监测对象). Each region's people
    are certified on one day (a monthly file's), or with ``spread_days`` on any of the days up to
    that many before it (a first roster's, certified over the years)."""
    rng = random.Random(seed)
    dates = random.Random(seed + 1)  # (its own: the default province stays the one it was)
    codec = Codec()
    book = load_book()
    days = {region: certified_day(book, region) for region in REGIONS}
    out: list[tuple[str, bytes, bytes]] = []
    valid: set[str] = set()
    people = 0
    seq = 0
    while len(out) < n_events:
        region = REGIONS[people % len(REGIONS)]
        effective = days[region] - dt.timedelta(days=dates.randrange(spread_days)) if spread_days else days[region]
        seq += 1
        born = dt.date(1940, 1, 1) + dt.timedelta(days=seq // 1000 % 25000)
        id_number = make_id(region, born, seq % 1000)
        people += 1
        holdings = [rng.choice(SINGLE)]
        if rng.random() < 0.15:
            holdings.append(SECOND if holdings[0][0] == "CIVIL_AFFAIRS" else ("CIVIL_AFFAIRS", "MINIMUM_LIVING"))
        for source, category in holdings:
            ev = identity_event(event_id=f"b-{seq}-{category}", source=source, id_number=id_number, name="测试",
                                category=category, region=region, effective=effective, occurred=utc(2024, 8, 1))
            if rng.random() < 0.02:  # an invalid record: a wrong check character
                ev["id_number"] = id_number[:17] + ("0" if id_number[17] != "0" else "1")
            elif len(out) < n_events and category in book.lookup(region, book.years(region)[0]).spec.subsidies:
                valid.add(id_number)  # a valid record of a class the region subsidises
            value = codec.encode("IdentityEvent", ev)
            out.append((source, ev["event_id"].encode(), value))
            if rng.random() < 0.01:  # a redelivery
                out.append((source, ev["event_id"].encode(), value))
    return out[:n_events], people, valid


def _produce(settings: Settings, records: list[tuple[str, bytes, bytes]], client: str = "librdkafka") -> tuple[float, str]:
    """Produce the batch to the department topics, every record acknowledged (acks=all): the
    seconds it took and the client that did it. librdkafka (confluent-kafka) where it can run,
    else kafka-python, whose Python sender took about 0.9 of the two measured cores for 23 s on
    300,000 records (12,849/s): in live mode, where the workers share those cores, it bounded the
    figure (docs/performance.md)."""
    ck = librdkafka() if client == "librdkafka" else None
    if ck is None:
        producer = make_producer(settings.kafka_bootstrap_servers, linger_ms=20, batch_size=512 * 1024,
                                 compression_type=None)
        started = time.monotonic()
        for source, key, value in records:
            producer.send(settings.topics.identity[source], key=key, value=value)
        producer.flush()
        elapsed = time.monotonic() - started
        producer.close()
        return elapsed, "kafka-python"
    failed: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(str(err))
    c = rdkafka_producer(ck, settings.kafka_bootstrap_servers, {"linger.ms": 20, "batch.size": 512 * 1024,
                                                                 "client.id": "zhucan-bench-batch"})
    topics = settings.topics.identity
    started = time.monotonic()
    for source, key, value in records:
        while True:
            try:
                c.produce(topics[source], value=value, key=key, on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let it drain
                c.poll(0.05)
    left = c.flush(120)
    elapsed = time.monotonic() - started
    if left or failed:
        raise RuntimeError(f"the batch's producer could not deliver {left + len(failed)} of {len(records)} records "
                           f"(first error: {failed[0] if failed else 'none; still queued after 120 s'})")
    return elapsed, "librdkafka"


def scratch_topics(settings: Settings, names: Sequence[str]) -> None:
    """Create the bench's own topics ``names`` (``settings.partitions`` each), replicated as
    zhucan's own topics are: on a cluster what is measured on them pays for replication too."""
    admin = admin_client(settings.kafka_bootstrap_servers)
    try:
        rf, min_isr = replication(settings, admin)
        admin.create_topics([NewTopic(name, settings.partitions, rf, topic_configs={"min.insync.replicas": str(min_isr)})
                             for name in names])
    finally:
        admin.close()


def librdkafka() -> Any | None:
    """confluent-kafka, where it can run: installed, and the cluster is not secured (the bench's
    librdkafka measures are for the local broker). None otherwise."""
    if os.environ.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper() != "PLAINTEXT":
        return None
    try:
        import confluent_kafka
    except ImportError:
        return None
    return confluent_kafka


def rdkafka_producer(ck: Any, bootstrap: str, extra: dict[str, Any]) -> Any:
    """A librdkafka producer (``ck``: confluent_kafka, from ``librdkafka()``) with acks=all and
    idempotence on, set explicitly, as ``make_producer``'s kafka-python one; ``extra`` adds to them."""
    return ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, **extra})


def measure_ceiling(settings: Settings, n: int) -> float:
    """Consume the identity topics and produce as many records, no processing: records/s."""
    scratch = settings.topics.prefix + "zhucan.bench-ceiling"
    scratch_topics(settings, [scratch])
    consumer = KafkaConsumer(*settings.topics.identity.values(), **kafka_python_config(settings.kafka_bootstrap_servers),
                             group_id=f"{settings.app_id}-ceiling", auto_offset_reset="earliest",
                             enable_auto_commit=False, max_poll_records=5000, fetch_max_bytes=64 * 1024 * 1024)
    producer = make_producer(settings.kafka_bootstrap_servers, linger_ms=20, batch_size=512 * 1024)
    seen = 0
    started = None
    deadline = time.monotonic() + 600
    while seen < n and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            if started is None:
                started = time.monotonic()
            for rec in records:
                producer.send(scratch, key=rec.key, value=rec.value)
            seen += len(records)
    producer.flush()
    elapsed = time.monotonic() - (started or time.monotonic())
    consumer.close()
    producer.close()
    return seen / elapsed if elapsed > 0 else 0.0


def measure_ceiling_librdkafka(settings: Settings, n: int) -> float | None:
    """The same as ``measure_ceiling`` with librdkafka (confluent-kafka): the identity topics
    consumed and as many records produced, no processing; records/s. None where it cannot run
    (confluent-kafka not installed, or a secured cluster: the bench's second ceiling is for the
    local broker)."""
    ck = librdkafka()
    if ck is None:
        return None
    scratch = settings.topics.prefix + "zhucan.bench-ceiling-librdkafka"
    scratch_topics(settings, [scratch])
    consumer = ck.Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": f"{settings.app_id}-ceiling-c",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    producer = rdkafka_producer(ck, settings.kafka_bootstrap_servers, {"linger.ms": 20, "batch.size": 512 * 1024})
    consumer.subscribe(list(settings.topics.identity.values()))
    seen, started = 0, None
    deadline = time.monotonic() + 600
    try:
        while seen < n and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=10_000, timeout=0.5)
            for msg in batch:
                if msg.error():
                    continue
                if started is None:
                    started = time.monotonic()
                while True:
                    try:
                        producer.produce(scratch, value=msg.value(), key=msg.key())
                        break
                    except BufferError:  # the local queue is full: let it drain
                        producer.poll(0.05)
                seen += 1
            producer.poll(0)
        producer.flush(60)
    finally:
        consumer.close()
    elapsed = time.monotonic() - (started or time.monotonic())
    return seen / elapsed if elapsed > 0 else 0.0


def batch_clock(mode: str, workers_started_ms: int, produce_started_ms: int | None,
                first_fetch_ms: Sequence[int | None]) -> int:
    """When the batch's clock starts (epoch ms): at the first department record any worker took
    in, or earlier, never later. Live: the bench starts producing before any record can be taken
    in (the earlier of the two). Backlog: the earliest first fetch any worker reports
    (``zhucan_intake_first_fetch_ms``), whenever its group became stable; where none reports
    it, the workers' start (earlier than any fetch)."""
    fetched = [t for t in first_fetch_ms if t]
    if mode == "live" and produce_started_ms is not None:
        return min([produce_started_ms, *fetched])
    return min(fetched) if fetched else workers_started_ms


def kill_waits(fees: Sequence[tuple[int, int]], kill_ms: int) -> dict[int, float]:
    """Per partition of fee-standard.v1 (``fees``: (partition, record timestamp ms: the worker's produce time, same host) of every fee
    standard), the longest time in seconds without one from ``kill_ms`` on: the kill to the
    partition's first after it, and every gap after that up to its last. A partition with none
    after the kill had nothing left to decide then, and waited for nothing (left out)."""
    by: dict[int, list[int]] = {}
    for partition, ts in fees:
        if ts >= kill_ms:
            by.setdefault(partition, []).append(ts)
    out: dict[int, float] = {}
    for partition, stamps in by.items():
        stamps.sort()
        gaps = [stamps[0] - kill_ms, *(b - a for a, b in zip(stamps, stamps[1:], strict=False))]
        out[partition] = round(max(gaps) / 1000, 2)
    return out


def _worker_metrics(ports: Sequence[int]) -> list[str | None]:
    """Each worker's metrics, as its endpoint serves them (None: it did not answer)."""
    import urllib.request

    out: list[str | None] = []
    for port in ports:
        try:
            out.append(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
        except OSError:
            out.append(None)
    return out


def _first_fetch_ms(metrics: Sequence[str | None]) -> list[int | None]:
    """Each worker's ``zhucan_intake_first_fetch_ms`` (None: not said)."""
    found = [re.search(r"^zhucan_intake_first_fetch_ms (\d+)$", text, re.M) if text else None for text in metrics]
    return [int(m.group(1)) if m else None for m in found]


def _remembered_share(metrics: Sequence[str | None], metric: str) -> float | None:
    """The share the workers gave remembered decisions (None: no worker said), by ``metric``:
    of newcomers (``zhucan_person_newcomers_total``) or of second identities
    (``zhucan_person_second_identities_total``)."""
    counts = {"decided": 0.0, "remembered": 0.0}
    for text in metrics:
        for how, value in re.findall(rf'^{metric}\{{how="(\w+)"\}} ([\d.e+]+)$', text or "", re.M):
            counts[how] = counts.get(how, 0.0) + float(value)
    total = counts["decided"] + counts["remembered"]
    return round(counts["remembered"] / total, 3) if total else None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _missing(settings: Settings, valid: set[str]) -> tuple[int, list[tuple[bytes, int, bytes]]]:
    """People with a valid record and no fee standard, counted on the whole topic; and its records."""
    fees = _fee_records(settings)
    secret = settings.key_secret.get_secret_value().encode()
    have = {k for k, _, _ in fees}
    return sum(1 for i in valid if person_key(i, secret).encode() not in have), fees


def _fee_counter(settings: Settings) -> tuple[Callable[[], int], Callable[[], None]]:
    """How many fee standards the topic holds (its end offsets), asked as often as needed over one
    client; and how to close it."""
    consumer = KafkaConsumer(**kafka_python_config(settings.kafka_bootstrap_servers), group_id=None,
                             client_id="zhucan-bench-count")
    parts = [TopicPartition(settings.topics.fee_standard, p)
             for p in consumer.partitions_for_topic(settings.topics.fee_standard) or []]
    return lambda: sum(consumer.end_offsets(parts).values()), consumer.close


def _kill_one(settings: Settings, procs: list[subprocess.Popen[bytes]], workdir: Path, ports: list[int],
              at_fees: int, static: bool, say: Callable[[str], None]) -> tuple[int, int, float]:
    """Once ``at_fees`` fee standards are out, SIGKILL the last worker and start it again at once
    on its own data directory (as a supervisor would); (kill ms, restart ms, the CPU seconds the
    killed process had used, which the batch's CPU must still count)."""
    count, close = _fee_counter(settings)
    try:
        deadline = time.monotonic() + 300
        while count() < at_fees and time.monotonic() < deadline:
            time.sleep(0.2)
        victim = len(procs) - 1
        used = _cpu_seconds([procs[victim].pid])
        kill_ms = int(time.time() * 1000)
        os.killpg(procs[victim].pid, signal.SIGKILL)
        procs[victim].wait(10)
        say(f"worker {victim} killed (SIGKILL) at {count():,} fee standards; starting it again on its data...")
    finally:
        close()
    restart_ms = int(time.time() * 1000)
    procs[victim] = start_worker(_worker_settings(settings, workdir, victim, ports[victim], static),
                                 workdir / f"worker{victim}.log", worker_args=["--loglevel", "warning"])
    return kill_ms, restart_ms, used


def _fee_records(settings: Settings) -> list[tuple[bytes, int, bytes]]:
    return [(r.key, r.timestamp, r.value) for r in read_to_end(settings.kafka_bootstrap_servers,
                                                                 settings.topics.fee_standard)]


def _state_bytes_per_person(settings: Settings) -> float:
    latest: dict[bytes, int] = {}
    for r in read_to_end(settings.kafka_bootstrap_servers, settings.topics.person_changelog):
        if r.key and not r.key.startswith(b"~"):
            latest[r.key] = len(r.value or b"")
    return sum(latest.values()) / len(latest) if latest else 0.0


def interpreter() -> str:
    """Which Python ran the bench and its workers (they run on ``sys.executable``): its version,
    path and whether it calls a shared libpython. The build matters as much as a lever of the
    code: Debian's python3.11 (PGO and LTO, libpython linked in) took 12-13% less worker CPU per
    event than this machine's pyenv build (--enable-shared, no --enable-optimizations) on the same
    code (docs/performance.md). Then whether the C fast paths ran (``schemas/native.py``: the
    workers inherit ZHUCAN_NATIVE)."""
    try:  # what this process has mapped (sysconfig's Py_ENABLE_SHARED says how the package was configured)
        shared = "shared" if "libpython" in Path("/proc/self/maps").read_text() else "linked in"
    except OSError:
        shared = "unknown"
    return f"Python {sys.version.split()[0]} ({sys.executable}, libpython {shared}); {native.status()}"


def remove_run(bootstrap: str, topic_prefix: str, group_prefix: str, who: str = "bench") -> tuple[int, int]:
    """Delete a bench run's topics (those named with ``topic_prefix``, and Faust's own, named with
    the app id ``group_prefix``) and its consumer groups (``group_prefix`` and its ``-`` suffixes):
    each run creates about forty topics, and a broker that keeps every run's holds thousands,
    whose metadata every client then parses (5,700 on this project's machine on 2026-12-06).
    (topics, groups) deleted; a failure is said (prefixed ``[who]``), never raised (the figures stand)."""
    ours = lambda name: name.startswith(topic_prefix) or name.startswith(f"{group_prefix}-")  # noqa: E731
    try:
        admin = admin_client(bootstrap)
    except KafkaError as exc:
        print(f"[{who}] could not delete this run's topics ({exc}); they are left", file=sys.stderr)
        return 0, 0
    try:
        topics = sorted(t for t in admin.list_topics() if ours(t))
        if topics:
            admin.delete_topics(topics, timeout_ms=30_000, raise_errors=False)
        groups = sorted(g["group_id"] for g in admin.list_groups()
                        if g["group_id"] == group_prefix or g["group_id"].startswith(f"{group_prefix}-"))
        if groups:
            admin.delete_groups(groups)
        return len(topics), len(groups)
    except KafkaError as exc:
        print(f"[{who}] deleting this run's topics failed ({exc}); some are left", file=sys.stderr)
        return 0, 0
    finally:
        admin.close()


def _profiler() -> str:
    """``ZHUCAN_BENCH_PROFILE``: empty (none), ``py-spy`` or ``perf`` (sampled during the batch), else cProfile."""
    return os.environ.get("ZHUCAN_BENCH_PROFILE", "").strip().lower()


def _start_workers(settings: Settings, n: int, workdir: Path, ports: list[int] | None = None,
                   static: bool = False) -> list[subprocess.Popen[bytes]]:
    """``n`` workers; each one's metrics port is appended to ``ports`` (the clock reads them)."""
    procs = []
    cprofile = _profiler() not in ("", "0", "py-spy", "perf")
    for i in range(n):
        profile = ["-m", "cProfile", "-o", str(workdir / f"worker{i}.prof")] if cprofile else []
        port = _free_port()
        if ports is not None:
            ports.append(port)
        procs.append(start_worker(_worker_settings(settings, workdir, i, port, static),
                                  workdir / f"worker{i}.log", python_args=profile, worker_args=["--loglevel", "warning"]))
    return procs


def _worker_settings(settings: Settings, workdir: Path, i: int, port: int, static: bool) -> Settings:
    """Worker ``i``'s settings: its own data directory and metrics port; with ``static`` (static
    group membership) its own instance id, the same when it is started again."""
    update: dict[str, Any] = {"data_dir": workdir / f"w{i}", "metrics_port": port}
    if static:
        update["instance_id"] = f"{settings.app_id}-w{i}"
    return settings.model_copy(update=update)


def measure_revision(settings: Settings, procs: list[subprocess.Popen[bytes]], workdir: Path,
                     say: Callable[[str], None]) -> tuple[list[subprocess.Popen[bytes]], float, float, int]:
    """A revision of every region-year over the batch's people: the workers' preview of it, then
    the workers restarted with it and a REDECIDE of each region-year. Returns the new workers,
    the preview's and the REDECIDE's seconds, and the person-years the preview said would change."""
    from connectors.ops.control import send_control, wait_for_control
    from connectors.ops.revision import one_book, request_preview, targets_of

    revised = raised_policies(workdir / "revised-policies")
    deadline = time.monotonic() + 60
    while True:  # the workers say which policies they hold once they run
        try:
            one_book(settings)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
    started = time.monotonic()
    preview = request_preview(settings, revised, None, None, timeout_s=1800)
    preview_s = time.monotonic() - started
    say(f"preview of the revision: {preview.changed:,} person-years would change ({preview_s:.1f}s)")
    for p in procs:
        stop_worker(p)
    live = settings.model_copy(update={"policy_dir": revised})
    procs = _start_workers(live, len(procs), workdir)
    _wait_members(settings, procs, len(procs))
    started = time.monotonic()
    issued = dt.datetime.now(dt.UTC)
    commands = [send_control(settings, "REDECIDE", region, year, issued) for region, year in targets_of(revised, None, None)]
    for command_id in commands:
        if not wait_for_control(settings, command_id, timeout_s=1800):
            raise RuntimeError(f"REDECIDE {command_id} did not finish")
    redecide_s = time.monotonic() - started
    say(f"REDECIDE of {len(commands)} region-years done in {redecide_s:.1f}s")
    return procs, round(preview_s, 2), round(redecide_s, 2), preview.changed


def _start_spies(procs: list[subprocess.Popen[bytes]], workdir: Path) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """The profiler ``ZHUCAN_BENCH_PROFILE`` names sampling each worker until stopped: py-spy's
    collapsed Python stacks (100 Hz, without pausing it), or perf's samples of the native code
    (499 Hz: the interpreter, the C extensions, libc, the kernel)."""
    kind = _profiler()
    if kind not in ("py-spy", "perf"):
        return []
    exe = (shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")) if kind == "py-spy" \
        else (shutil.which("perf") or "perf")
    if not Path(exe).exists():
        print(f"[bench] {kind} is not installed ({'pip install py-spy' if kind == 'py-spy' else 'linux-perf'}): "
              "no profile", file=sys.stderr)
        return []
    spies = []
    for i, proc in enumerate(procs):
        out = workdir / (f"worker{i}.collapsed" if kind == "py-spy" else f"worker{i}.perf.data")
        argv = ([exe, "record", "--pid", str(proc.pid), "--rate", "100", "--nonblocking", "--format", "raw",
                 "--output", str(out)] if kind == "py-spy"
                else [exe, "record", "-F", "499", "-p", str(proc.pid), "-o", str(out)])
        spies.append((subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out))
    return spies


def _stop_spies(spies: list[tuple[subprocess.Popen[bytes], Path]]) -> list[Path]:
    written = []
    for spy, out in spies:
        spy.send_signal(signal.SIGINT)  # py-spy and perf write their output on SIGINT
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()
        if not out.exists():
            continue
        if out.suffix == ".data":  # perf's: its report by shared object and symbol
            summary = out.with_name(out.name.replace(".perf.data", ".perf.txt"))
            report = subprocess.run([spy.args[0], "report", "-i", str(out), "--stdio", "--no-children", "-g", "none",
                                     "--sort", "dso,sym"], capture_output=True, text=True, check=False).stdout
            summary.write_text(summarize_perf(report), encoding="utf-8")
        else:
            summary = out.with_suffix(".top.txt")
            summary.write_text(summarize_collapsed(out.read_text(encoding="utf-8")), encoding="utf-8")
        written.append(summary)
    return written


_PERF_LINE = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.+?)\s*$")


def _native_part(dso: str) -> str:
    """What a shared object of perf's report is part of."""
    if dso.startswith("libpython") or re.fullmatch(r"python3(\.\d+)?", dso):  # (a static build: the executable)
        return "the interpreter (CPython)"
    if dso.startswith(("libc.so", "libc-", "ld-linux", "libm.so")):
        return "libc (memory, copies)"
    if dso.startswith("[kernel") or dso in ("[vdso]", "[unknown]"):
        return "the kernel (system calls, network, page faults)"
    return "extensions and libraries (C, C++, Rust)"


def summarize_perf(report: str, top: int = 30) -> str:
    """perf's report (``--sort dso,sym``) of a worker as shares of its CPU: by part (the
    interpreter running Python, the compiled extensions, libc, the kernel), by shared object,
    and the hottest symbols."""
    rows = []
    for line in report.splitlines():
        m = _PERF_LINE.match(line)
        if m:
            rows.append((float(m[1]), m[2], m[4]))
    if not rows:
        return "no samples\n"
    total = sum(share for share, _, _ in rows)
    parts: Counter[str] = Counter()
    dsos: Counter[str] = Counter()
    for share, dso, _ in rows:
        parts[_native_part(dso)] += share
        dsos[dso] += share
    out = ["by part:"] + [f"{n / total:7.1%}  {part}" for part, n in parts.most_common()]
    out += ["", "by shared object:"] + [f"{n / total:7.1%}  {dso}" for dso, n in dsos.most_common(top)]
    out += ["", "symbols:"] + [f"{share / total:7.1%}  {sym} ({dso})" for share, dso, sym in
                               sorted(rows, key=lambda r: -r[0])[:top]]
    return "\n".join(out) + "\n"


def summarize_collapsed(text: str, top: int = 30) -> str:
    """The functions holding the most samples of py-spy's collapsed stacks: by themselves (self)
    and with what they call (inclusive), each as a share of all samples."""
    total = 0
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r" \((.*?):\d+\)$", r" (\1)", f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    if not total:
        return "no samples\n"
    lines = [f"{total} samples", "", "self:"]
    lines += [f"{n / total:7.1%}  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"{n / total:7.1%}  {f}" for f, n in incl.most_common(top + 15)]
    return "\n".join(lines) + "\n"


def _cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU seconds used so far by the processes ``pids`` (0 where unreadable)."""
    total = 0
    for pid in pids:
        try:  # fields after the command name, which may hold spaces: utime and stime are the 12th and 13th
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _wait_members(settings: Settings, procs: list[subprocess.Popen[bytes]], members: int,
                  timeout_s: float = 120.0, settle_s: float = 2.0) -> int:
    """Wait until both groups of the workers (the intake's and the Faust app's) are Stable with
    ``members`` members each (partitions assigned); the epoch ms when that was first seen."""
    monitor = LagMonitor(settings.kafka_bootstrap_servers)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a worker exited with code {p.returncode}")
            try:
                infos = monitor.admin.describe_groups(settings.worker_groups)
            except KafkaError as exc:  # e.g. no group coordinator yet on a broker just started
                if not exc.retriable:
                    raise
                time.sleep(0.5)
                continue
            if all(infos.get(g, {}).get("group_state") == "Stable" and len(infos[g].get("members") or []) == members
                   for g in settings.worker_groups):
                stable_ms = int(time.time() * 1000)
                time.sleep(settle_s)  # let the members start fetching
                return stable_ms
            time.sleep(0.2)
        raise TimeoutError(f"the worker groups did not become stable with {members} members")
    finally:
        monitor.close()


def _wait_caught_up(settings: Settings, procs: list[subprocess.Popen[bytes]], valid: set[str],
                    timeout_s: float) -> tuple[int, list[tuple[bytes, int, bytes]], float]:
    """Until the batch is done (``caught_up``, on the workers' groups and the fee-standard topic):
    (people still without a standard, the fee records, the workers' CPU seconds when done)."""
    monitor = LagMonitor(settings.kafka_bootstrap_servers, allowed_lag=0, window=2)

    def committed_to_end() -> bool:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"a worker exited with code {p.returncode}")
        monitor.sample(settings.worker_groups)
        reports = monitor.report(settings.worker_groups, ages=False)  # offsets only: no peek at the records
        return all(r.partitions and r.total_lag == 0 for r in reports)

    try:
        return caught_up(committed_to_end, lambda: _missing(settings, valid),
                         lambda: _cpu_seconds([p.pid for p in procs]), timeout_s)
    finally:
        monitor.close()


def caught_up(committed_to_end: Callable[[], bool],
              missing: Callable[[], tuple[int, list[tuple[bytes, int, bytes]]]],
              cpu: Callable[[], float], timeout_s: float, *, quiet_s: float = 3.0, every_s: float = 0.25,
              clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> tuple[int, list[tuple[bytes, int, bytes]], float]:
    """The batch is done when every group has committed to the end of every partition, has stayed
    so for ``quiet_s``, and every valid person then has a fee standard, counted on the whole topic
    (``missing``). Returns (0, the fee records, the workers' CPU seconds at the first look of that
    quiet spell), or after ``timeout_s`` the people still without one.

    The CPU is read at the look that first saw every group at the end, not when the bench is sure:
    a group commits an input only once its effects were acknowledged (``streams/runtime/unit.py``),
    so the work was all done then, and what the workers use while the bench waits out the quiet
    spell and reads the whole topic (about 0.06 of a core each, idle: their fetches and timers,
    5-10 s) is not the batch's. A spell broken by new lag, or ended with people still missing,
    takes its CPU reading again from the next spell."""
    deadline = clock() + timeout_s
    quiet_since: float | None = None
    cpu_then = 0.0
    left, fees = -1, []
    while clock() < deadline:
        cpu_now = cpu()  # before the look: the work it sees done was done by then
        if committed_to_end():
            if quiet_since is None:
                quiet_since, cpu_then = clock(), cpu_now
            elif clock() - quiet_since >= quiet_s:
                left, fees = missing()
                if not left:
                    return 0, fees, cpu_then
                quiet_since = None  # committed to the end, yet people wait: not done
        else:
            quiet_since = None
        sleep(every_s)
    if fees:
        return left, fees, cpu()
    raise TimeoutError(f"the worker did not catch up in {timeout_s:.0f}s")


def latency_events(settings: Settings, total: int) -> list[tuple[str, bytes, bytes, bytes]]:
    """The latency run's ``total`` new people, built before its clock: (topic, key, value, the
    person key its fee standard will carry). Building them (a UUID, an ID number, the Avro record,
    the HMAC key) inside the paced loop took about a quarter of the bench's samples there, on the
    cores the workers were measured on."""
    codec = Codec()
    secret = settings.key_secret.get_secret_value().encode()
    region = REGIONS[0]
    effective = certified_day(load_book(), region)
    topic = settings.topics.identity["CIVIL_AFFAIRS"]
    events = []
    for i in range(total):
        id_number = make_id(region, dt.date(1960, 1, 1) + dt.timedelta(days=i // 1000), i % 1000)
        ev = identity_event(event_id=f"lat-{uuid.uuid4().hex}", source="CIVIL_AFFAIRS", id_number=id_number,
                            name="延迟", category="MINIMUM_LIVING", region=region, effective=effective,
                            occurred=utc(2024, 8, 1))
        events.append((topic, ev["event_id"].encode(), codec.encode("IdentityEvent", ev),
                       person_key(id_number, secret).encode()))
    return events


class _Pacer:
    """The latency run's producer, one record per send (no linger): librdkafka (confluent-kafka)
    where it can run, else kafka-python, whose Python sender took about half a core at 1,000
    records/s on the measured cores (the bench 0.57 cores in one run; 0.09-0.12 with librdkafka).
    ``client`` names the one used."""

    def __init__(self, settings: Settings, client: str) -> None:
        ck = librdkafka() if client == "librdkafka" else None
        self.client = "librdkafka" if ck is not None else "kafka-python"
        if ck is not None:
            self._c = rdkafka_producer(ck, settings.kafka_bootstrap_servers,
                                       {"linger.ms": 0, "client.id": "zhucan-bench-latency"})
        else:
            self._p = make_producer(settings.kafka_bootstrap_servers, linger_ms=0)

    def warm(self, settings: Settings, topic: str) -> None:
        """Connect, learn ``topic``'s partitions and get the producer id before the clock: one
        record to a topic of the bench's own, flushed. Unwarmed, librdkafka held the first events
        until it had them: the first of them were 600-650 ms late, counted as the workers'."""
        scratch = settings.topics.prefix + "zhucan.bench-latency-warmup"
        scratch_topics(settings, [scratch])
        if self.client == "librdkafka":
            self._c.list_topics(topic, timeout=30)
            self._c.produce(scratch, value=b"warm-up")
            if self._c.flush(30):
                raise RuntimeError("the latency run's producer could not reach the cluster in 30 s")
        else:
            self._p.partitions_for(topic)
            self._p.send(scratch, value=b"warm-up").get(timeout=30)

    def send(self, topic: str, key: bytes, value: bytes, timestamp_ms: int) -> None:
        if self.client == "librdkafka":
            self._c.produce(topic, value=value, key=key, timestamp=timestamp_ms)
            self._c.poll(0)  # serve the delivery reports as they come
        else:
            self._p.send(topic, key=key, value=value, timestamp_ms=timestamp_ms)

    def close(self) -> None:
        if self.client == "librdkafka":
            if self._c.flush(60):
                raise RuntimeError("the latency run's producer could not deliver every record in 60 s")
        else:
            self._p.flush()
            self._p.close()


def machine_jiffies() -> tuple[int, int]:
    """(busy, all) CPU time of every core of this machine so far, in clock ticks (``/proc/stat``'s
    first line; idle and iowait are not busy). (0, 0) where there is no /proc."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    everything = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    return everything - fields[3] - (fields[4] if len(fields) > 4 else 0), everything


def stolen_jiffies() -> tuple[int, int]:
    """(steal, all) CPU time of every core of this machine so far, in clock ticks (``/proc/stat``'s
    first line: steal is the time a hypervisor ran something else while this machine wanted the
    core). (0, 0) where there is no /proc or no steal field."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7], sum(fields[:8])) if len(fields) >= 8 else (0, 0)


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The share of the machine's CPU time stolen between two ``stolen_jiffies``."""
    stolen, everything = after[0] - before[0], after[1] - before[1]
    return round(stolen / everything, 4) if everything > 0 else None


def busy_cores(before: tuple[int, int], after: tuple[int, int], cores: int) -> float | None:
    """How many of the machine's ``cores`` were busy, on average, between two ``machine_jiffies``."""
    busy, everything = after[0] - before[0], after[1] - before[1]
    return round(cores * busy / everything, 2) if everything > 0 else None


@dataclass
class LatencyRun:
    latencies: list[float]  # ms, sorted
    client: str  # the producer that offered the events
    # cores in use while the events were offered: the whole machine (every process: the broker
    # too, where it runs here), the workers, and this bench itself
    machine_cores: float | None
    workers_cores: float
    bench_cores: float


def measure_latency(settings: Settings, rate: int, seconds: float, timeline: Path | None = None,
                    worker_pids: Sequence[int] = (), client: str = "librdkafka") -> LatencyRun:
    """Offer ``rate`` new people per second for ``seconds``; event-to-fee latencies in ms, and
    the cores in use meanwhile (a p99 on a machine whose cores are all busy is a queue for them).

    Fee standards are read from where the topic ended before the first event was offered,
    so the figure does not depend on how large the batch before it was. With ``timeline``,
    each event's send time (ms since the first) and latency are written there as CSV, to
    see whether slow events come together (a stall) or spread out."""
    reader = KafkaConsumer(**kafka_python_config(settings.kafka_bootstrap_servers), enable_auto_commit=False,
                           group_id=None, client_id="zhucan-bench-latency")
    parts = [TopicPartition(settings.topics.fee_standard, p)
             for p in sorted(reader.partitions_for_topic(settings.topics.fee_standard) or [])]
    reader.assign(parts)
    reader.seek_to_end(*parts)
    for tp in parts:
        reader.position(tp)  # resolve the end offsets now, before anything is offered
    events = latency_events(settings, int(rate * seconds))
    gc.collect()
    pacer = _Pacer(settings, client)
    pacer.warm(settings, events[0][0] if events else settings.topics.identity["CIVIL_AFFAIRS"])
    sent: dict[bytes, int] = {}
    machine0, workers0, bench0 = machine_jiffies(), _cpu_seconds(worker_pids), _cpu_seconds([os.getpid()])
    started = time.monotonic()
    for i, (topic, key, value, person) in enumerate(events):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now_ms = int(time.time() * 1000)
        pacer.send(topic, key, value, now_ms)
        sent[person] = now_ms
    pacer.close()
    offered_s = max(time.monotonic() - started, 1e-3)
    machine = busy_cores(machine0, machine_jiffies(), os.cpu_count() or 1)
    workers_cores = round((_cpu_seconds(worker_pids) - workers0) / offered_s, 2)
    bench_cores = round((_cpu_seconds([os.getpid()]) - bench0) / offered_s, 2)
    deadline = time.monotonic() + 60
    latencies: dict[bytes, float] = {}
    try:
        while len(latencies) < len(sent) and time.monotonic() < deadline:
            for records in reader.poll(timeout_ms=500).values():
                for r in records:
                    if r.key in sent and r.key not in latencies:
                        latencies[r.key] = r.timestamp - sent[r.key]
    finally:
        reader.close()
    if timeline is not None:
        first = min(sent.values(), default=0)
        rows = sorted((sent[k] - first, lat) for k, lat in latencies.items())
        timeline.write_text("sent_ms,latency_ms\n" + "".join(f"{s},{lat:.0f}\n" for s, lat in rows))
    return LatencyRun(sorted(latencies.values()), pacer.client, machine, workers_cores, bench_cores)


def run_bench(settings: Settings, n_events: int, workers: int = 1, rate: int = 1000, latency_s: float = 10.0,
              workdir: Path | None = None, backlog: bool = False, revision: bool = False,
              kill: bool = False, static: bool = False, keep_topics: bool = False,
              latency_client: str = "librdkafka", spread_days: int = 0,
              batch_client: str = "librdkafka") -> BenchResult:
    """Measure the worker(s) on ``n_events``. By default the workers are running and the batch is
    produced at once by ``batch_client`` (librdkafka where it can run: the producer shares the
    machine, and kafka-python's rate bounded the figure); with
    ``backlog`` the batch is on the topics first and the clock starts when the workers' groups
    are stable (the departments' producers are elsewhere, as in a deployment). The run's topics
    and groups are deleted at the end unless ``keep_topics``."""
    run = uuid.uuid4().hex[:6]
    settings = settings.model_copy(update={"topic_prefix": f"bench{run}.", "app_id": f"zhucan-bench-{run}",
                                           "metrics_port": 0})
    workdir = workdir or Path(f".zhucan-data/bench-{run}")
    workdir.mkdir(parents=True, exist_ok=True)
    say = lambda msg: print(f"[bench] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    ensure_topics(settings)
    say(f"generating {n_events:,} identity events...")
    records, people, valid = synthetic_events(n_events, spread_days=spread_days)
    if backlog:
        say(f"producing the batch to {settings.topic_prefix}identity.*.v1 ({people:,} people) before any worker runs...")
        produce_s, batch_client = _produce(settings, records, batch_client)
        say(f"produced in {produce_s:.1f}s ({n_events / produce_s:,.0f}/s, {batch_client}); "
            f"starting {workers} worker(s)...")
    ports: list[int] = []
    workers_started_ms = int(time.time() * 1000)
    procs = _start_workers(settings, workers, workdir, ports, static)
    produce_started_ms: int | None = None
    cpu_before_s: float | None = None
    stolen_before = stolen_jiffies()  # (backlog mode: from the workers' start)
    try:
        spies: list[tuple[subprocess.Popen[bytes], Path]] = []
        if backlog:
            spies = _start_spies(procs, workdir)
            say("the workers start on the backlog (the clock starts at the first record any of them takes in)...")
        else:
            say(f"started {workers} worker(s); waiting until their groups are stable...")
            _wait_members(settings, procs, workers)
            say(f"producing the batch to {settings.topic_prefix}identity.*.v1 ({people:,} people)...")
            spies = _start_spies(procs, workdir)
            cpu_before_s = _cpu_seconds([p.pid for p in procs])
            stolen_before = stolen_jiffies()
            produce_started_ms = int(time.time() * 1000)
            produce_s, batch_client = _produce(settings, records, batch_client)
            say(f"produced in {produce_s:.1f}s ({n_events / produce_s:,.0f}/s, {batch_client}); "
                "waiting for the worker(s)...")
        killed: tuple[int, int, float] | None = None
        if kill:  # a third of the way through the batch
            killed = _kill_one(settings, procs, workdir, ports, len(valid) // 3, static, say)
        # done: every group committed to the end, and every valid person has a standard
        missing, fees, cpu_s = _wait_caught_up(settings, procs, valid, timeout_s=max(300.0, n_events / 200))
        stolen = steal_share(stolen_before, stolen_jiffies())
        # cpu_s: each worker's, from its start (nothing before the clock escapes) until done
        confirming_s = _cpu_seconds([p.pid for p in procs]) - cpu_s  # while the bench made sure
        cpu_s += killed[2] if killed is not None else 0.0  # and the killed process's, up to its kill
        metrics = _worker_metrics(ports)  # read once: the clock's first fetches, the newcomers remembered
        remembered = _remembered_share(metrics, "zhucan_person_newcomers_total")
        seconds_remembered = _remembered_share(metrics, "zhucan_person_second_identities_total")
        for path in _stop_spies(spies):
            say(f"profile of the batch: {path}")
        started_ms = batch_clock("backlog" if backlog else "live", workers_started_ms, produce_started_ms,
                                 _first_fetch_ms(metrics))
        last = max(t for _, t, _ in fees)
        waits: dict[int, float] | None = None
        if killed is not None:
            waits = kill_waits([(partition_for(k, settings.partitions), t) for k, t, _ in fees], killed[0])
            say(f"after the kill: longest wait {max(waits.values(), default=0.0)}s per partition {waits}; "
                f"caught up {(last - killed[1]) / 1000:.1f}s after the restart")
        codec = Codec()
        contents: dict[tuple[bytes, int, int], set[tuple[Any, ...]]] = {}
        versions = []
        for k, _, v in fees:
            f = codec.decode(v, expect="FeeStandard")[1]
            versions.append((k, f["insurance_year"], f["version"]))
            contents.setdefault(versions[-1], set()).add(
                (f["message_id"], f["category"], f["premium_fen"], f["subsidy_fen"], f["payable_fen"], f["payment_mode"]))
        duplicates = len(versions) - len(set(versions))
        conflicts = sum(1 for c in contents.values() if len(c) > 1)
        monitor = LagMonitor(settings.kafka_bootstrap_servers)
        monitor.sample(settings.worker_groups)
        members = min(g.members for g in monitor.report(settings.worker_groups))
        monitor.close()
        seconds = max((last - started_ms) / 1000, 1e-3)  # first identity event in -> last fee standard out
        say(f"batch done: {len(fees):,} fee standards in {seconds:.1f}s; latency at {rate}/s for {latency_s:.0f}s...")
        n_fees = len(fees)
        del records, fees, versions, contents  # a province's worth of objects: the paced
        gc.collect()  # producer below must not stall on this process's garbage collector
        reports = {}
        for name, args in (("coverage", ["coverage", "--json"]), ("settle", ["settle", "--json"])):
            reports[name] = measure_report(settings, args)
            say(f"`zhucan {' '.join(args)}` after the batch: {reports[name]['seconds']}s, "
                f"peak {reports[name]['peak_mb']} MB")
        lat = measure_latency(settings, rate, latency_s, timeline=workdir / "latency.csv",
                              worker_pids=[p.pid for p in procs], client=latency_client)
        latencies = lat.latencies
        rss = max(_peak_rss_mb(p.pid) for p in procs)
        revised: tuple[float, float, int] | None = None
        if revision:
            procs, *measured = measure_revision(settings, procs, workdir, say)
            revised = (measured[0], measured[1], measured[2])
    finally:
        for p in procs:
            stop_worker(p)
    missing_after, _ = _missing(settings, valid)  # counted again, the workers stopped
    say("measuring the raw ceilings on the same records (kafka-python, then librdkafka)...")
    ceiling = measure_ceiling(settings, n_events)
    ceiling_c = measure_ceiling_librdkafka(settings, n_events)
    state = _state_bytes_per_person(settings)
    throughput = n_events / seconds
    if not keep_topics:
        n_topics, n_groups = remove_run(settings.kafka_bootstrap_servers, settings.topic_prefix, settings.app_id)
        say(f"deleted this run's {n_topics} topics and {n_groups} consumer groups (--keep-topics keeps them)")

    cpu_us = round(cpu_s / n_events * 1e6, 1)  # from each worker's start until done, per event

    def pct(q: float) -> float:
        if not latencies:
            return float("nan")
        return float(latencies[min(len(latencies) - 1, int(q * len(latencies)))])

    return BenchResult(
        events=n_events, people=people, partitions=settings.partitions, workers=workers, seconds=round(seconds, 2),
        throughput_eps=round(throughput, 1), ceiling_eps=round(ceiling, 1),
        ceiling_share=round(throughput / ceiling, 3) if ceiling else 0.0, fee_standards=n_fees,
        p50_ms=round(pct(0.50), 1), p99_ms=round(pct(0.99), 1), latency_rate_eps=rate, rss_mb=round(rss, 1),
        state_bytes_per_person=round(state, 1),
        machine=f"{os.cpu_count()} cores, {os.uname().machine}, {interpreter()}",
        members=members, duplicated_versions=duplicates, conflicting_versions=conflicts,
        people_without_standard=missing, people_without_standard_after_stop=missing_after,
        ceiling_librdkafka_eps=round(ceiling_c, 1) if ceiling_c is not None else None,
        ceiling_librdkafka_share=round(throughput / ceiling_c, 4) if ceiling_c else None,
        mode="backlog" if backlog else "live", static_members=static,
        topic_prefix=settings.topic_prefix, app_id=settings.app_id, topics_kept=keep_topics,
        worker_cpu_us_per_event=cpu_us,
        worker_cpu_before_batch_s=round(cpu_before_s, 2) if cpu_before_s is not None else None,
        worker_cpu_confirming_s=round(confirming_s, 2),
        revision_preview_s=revised[0] if revised else None, revision_redecide_s=revised[1] if revised else None,
        revision_changed=revised[2] if revised else None, reports=reports,
        kill_longest_wait_s=max(waits.values(), default=0.0) if waits is not None else None, kill_waits_s=waits,
        kill_caught_up_s=round((last - killed[1]) / 1000, 2) if killed is not None else None,
        latency_client=lat.client, latency_machine_cores=lat.machine_cores,
        latency_workers_cores=lat.workers_cores, latency_bench_cores=lat.bench_cores,
        spread_days=spread_days, newcomers_remembered=remembered, batch_client=batch_client,
        second_identities_remembered=seconds_remembered, steal_share=stolen,
        worker_cpu_in_ceiling_records=in_ceiling_records(cpu_us, ceiling),
    )


def print_result(r: BenchResult) -> None:
    rows = [("identity events", f"{r.events:,}"), ("people", f"{r.people:,}"), ("workers / partitions", f"{r.workers} / {r.partitions}"),
            ("batch seconds", f"{r.seconds}"), ("throughput (events/s)", f"{r.throughput_eps:,.0f}"),
            ("raw ceiling (records/s)", f"{r.ceiling_eps:,.0f}"), ("share of ceiling", f"{r.ceiling_share:.1%}"),
            ("librdkafka ceiling", "not measured (confluent-kafka missing, or a secured cluster)"
             if r.ceiling_librdkafka_eps is None else f"{r.ceiling_librdkafka_eps:,.0f} records/s, share "
             f"{r.ceiling_librdkafka_share:.1%}"),
            ("worker CPU per event (µs)", f"{r.worker_cpu_us_per_event}" + (
                "" if r.worker_cpu_before_batch_s is None else
                f" ({r.worker_cpu_before_batch_s} s of it before the batch: start-up, groups, tables)") + (
                "" if r.worker_cpu_confirming_s is None else
                f"; not in it, {r.worker_cpu_confirming_s} s idle while the bench made sure it was done")),
            ("worker CPU per event, in ceiling records", "not measured" if r.worker_cpu_in_ceiling_records is None
             else f"{r.worker_cpu_in_ceiling_records} (records the kafka-python ceiling moves with that CPU: "
                  "compares runs in hours the machine ran at other speeds)"),
            ("steal during the batch", "not known (no /proc/stat)" if r.steal_share is None else
             f"{r.steal_share:.1%} of the machine's CPU time (its hypervisor ran other guests: more, more CPU "
             "per event)"),
            ("newcomers remembered", "not said" if r.newcomers_remembered is None else
             f"{r.newcomers_remembered:.1%} (certified over {max(r.spread_days, 1)} day(s) per region)"),
            ("second identities remembered", "not said" if r.second_identities_remembered is None else
             f"{r.second_identities_remembered:.1%} (of people held as newcomers are)"),
            ("fee standards out", f"{r.fee_standards:,}"), (f"p50 / p99 at {r.latency_rate_eps}/s (ms)", f"{r.p50_ms} / {r.p99_ms}"),
            ("cores busy during it", f"{r.latency_machine_cores} of {os.cpu_count()} (workers {r.latency_workers_cores}, "
                                     f"this bench {r.latency_bench_cores}; offered by {r.latency_client})"),
            ("worker peak RSS (MB)", f"{r.rss_mb}"), ("state bytes per person", f"{r.state_bytes_per_person}"),
            ("mode", r.mode + (", static members" if r.static_members else "") + f"; batch produced by {r.batch_client}"), ("group members", f"{r.members}"),
            ("versions re-sent / conflicting", f"{r.duplicated_versions} / {r.conflicting_versions}"),
            ("people without a standard", f"{r.people_without_standard} (again once stopped: "
                                           f"{r.people_without_standard_after_stop})"),
            ("machine", r.machine)]
    for name, measured in r.reports.items():
        rows.append((f"zhucan {name} (s / peak MB)", f"{measured['seconds']} / {measured['peak_mb']}"))
    if r.kill_longest_wait_s is not None:
        rows += [("kill: longest wait (s)", f"{r.kill_longest_wait_s} (per partition {r.kill_waits_s})"),
                 ("kill: caught up after restart (s)", f"{r.kill_caught_up_s}")]
    if r.revision_preview_s is not None:
        rows += [("revision: preview (s)", f"{r.revision_preview_s}"),
                 ("revision: REDECIDE (s)", f"{r.revision_redecide_s}"),
                 ("revision: person-years changed", f"{r.revision_changed:,}")]
    for k, v in rows:
        print(f"{k:<28} {v}")


def bench_main(settings: Settings, n_events: int, json_path: str | None, workers: int, rate: int, latency_s: float,
               backlog: bool = False, revision: bool = False, kill: bool = False, static: bool = False,
               keep_topics: bool = False, latency_client: str = "librdkafka", spread_days: int = 0,
               batch_client: str = "librdkafka") -> int:
    if kill and (backlog or workers < 2):
        print("zhucan bench --kill: needs --workers 2 or more, in live mode (another worker takes over or waits)",
              file=sys.stderr)
        return 2
    result = run_bench(settings, n_events, workers=workers, rate=rate, latency_s=latency_s, backlog=backlog,
                       revision=revision, kill=kill, static=static, keep_topics=keep_topics,
                       latency_client=latency_client, spread_days=spread_days, batch_client=batch_client)
    print_result(result)
    if json_path:
        Path(json_path).write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    return 0
