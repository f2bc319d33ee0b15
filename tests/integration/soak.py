"""Kill workers at random points of a batch, restart them on their own data, then recount.

Issue #26: a worker restarted after SIGKILL (with its recovery resuming the stream partitions
before they were sought to the committed offsets) skipped two person commands and stopped
committing that partition for good. This harness is what finds such a thing: it gives one
deployment a batch, SIGKILLs one of its workers at a random moment again and again (each
restarted on its own data directory), then checks two things against a clean run of the same
records on a fresh deployment (one worker, never killed):

- every person-year ends on the standard the clean run gives (category and money of the
  highest version, recounted from the beginning of fee-standard.v1), and no person is missing;
- every partition of every group of the killed deployment has its commits at the end
  (``uncommitted``: nothing is left behind a stuck commit).

It is a module, not a test, so that a one-node and a three-node test, and a longer run by hand
(``ZHUCAN_SOAK_KILLS``, ``ZHUCAN_SOAK_EVENTS``), share it.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kafka import TopicPartition
from kafka.admin import OffsetSpec

from connectors.dev.bench import synthetic_events
from connectors.dev.workers import start_worker
from schemas.codec import Codec
from streams.domain.identity import Identity, validate_identity
from streams.domain.ids import person_key
from streams.domain.messages import FeeStandardIssued
from streams.domain.person import PersonState
from streams.kafka.admin import admin_client
from streams.policies import load_book
from streams.settings import Settings
from tests.integration.fixtures import TEST_SECRET, Stack, assert_whole

Final = dict[tuple[str, int], tuple[str, int, int]]  # (person key, year) -> (category, subsidy, payable)


@dataclass
class SoakResult:
    kills: int
    final: Final
    uncommitted: dict[str, int] = field(default_factory=dict)  # "group topic[partition]" -> records behind
    logs: list[Path] = field(default_factory=list)
    restarted: int = 0  # workers that exited with code 75 (a stuck consumer) and were started again


def final_standards(stack: Stack, expected_ids: set[str], timeout_s: float = 300.0) -> Final:
    """The highest version of each person-year's standard, once every expected person has one."""
    assert_whole(stack, expected_ids, timeout_s=timeout_s)
    best: dict[tuple[str, int], tuple[int, tuple[str, int, int]]] = {}
    for key, fee, _ in stack.read(stack.topics.fee_standard, "FeeStandard", timeout_s=60, idle_s=3.0):
        k = (key, fee["insurance_year"])
        what = (fee["category"], fee["subsidy_fen"], fee["payable_fen"])
        if k not in best or fee["version"] > best[k][0]:
            best[k] = (fee["version"], what)
    return {k: v for k, (_, v) in best.items()}


def uncommitted(settings: Settings) -> dict[str, int]:
    """Per group and partition it consumes, how far its committed offset is behind the end
    (only those behind; a partition never committed counts whole)."""
    admin = admin_client(settings.kafka_bootstrap_servers)
    try:
        behind: dict[str, int] = {}
        offsets = admin.list_group_offsets({g: None for g in settings.worker_groups})
        topics = {*settings.topics.identity.values(), settings.topics.person_commands}
        described = admin.describe_topics(sorted(topics))
        tps = [TopicPartition(t["name"], p["partition_index"]) for t in described for p in t["partitions"]]
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
        for group, committed in offsets.items():
            for tp in tps:
                if (group == settings.app_id) != (tp.topic != settings.topics.person_commands):
                    continue  # the intake group reads the identity topics, the streams group the commands
                meta = committed.get(tp)
                at = int(meta.offset) if meta is not None and meta.offset >= 0 else 0
                end = int(ends[tp].offset)
                if at < end:
                    behind[f"{group} {tp.topic}[{tp.partition}]"] = end - at
        return behind
    finally:
        admin.close()


def wait_committed(settings: Settings, timeout_s: float) -> dict[str, int]:
    """Until every group has committed to the end of every partition, or the deadline: what is still behind."""
    deadline = time.monotonic() + timeout_s
    behind = uncommitted(settings)
    while behind and time.monotonic() < deadline:
        time.sleep(1.0)
        behind = uncommitted(settings)
    return behind


# Small intake fetches: many more, smaller records of zhucan.person-commands, so that a rebalance's
# seek is more likely to meet one being handed over (the race of issue #26); and a commit watch
# that heals a stuck commit in seconds rather than a minute, for the suite's time.
DENSE = {"ZHUCAN_TUNING__INTAKE_MAX_RECORDS": "25", "ZHUCAN_TUNING__COMMIT_STALL_S": "10",
         "ZHUCAN_TUNING__COMMIT_WATCH_S": "3", "ZHUCAN_TUNING__PROGRESS_STUCK_S": "40"}
RESTART = 75  # a worker that exits with this code asks its supervisor to start it again (streams/app.py)


def soak(stack: Stack, n_events: int, kills: int, workers: int = 2, seed: int = 26,
         quiet_s: tuple[float, float] = (0.5, 4.5), commit_timeout_s: float = 120.0,
         worker_env: dict[str, str] | None = None) -> tuple[SoakResult, set[str]]:
    """Feed ``n_events`` records at an even rate while, ``kills`` times, one of the ``workers``
    (chosen at random) is SIGKILLed after a random ``quiet_s`` and started again on its own data
    directory: every kill lands while records are flowing and being decided."""
    env = DENSE if worker_env is None else worker_env
    rng = random.Random(seed)
    records, _, valid = synthetic_events(n_events, seed=seed)
    base = stack.settings.data_dir
    settings = [stack.settings.model_copy(update={"data_dir": base / f"w{i}"}) for i in range(workers)]
    logs = [stack.workdir / f"worker{i}.log" for i in range(workers)]
    procs = [start_worker(s, log, env) for s, log in zip(settings, logs, strict=True)]
    pauses = [rng.uniform(*quiet_s) for _ in range(kills)]
    rate = len(records) / max(1.0, sum(pauses) + 2.0 * kills)  # restarts take about 2 s each
    sent = threading.Event()

    def feed() -> None:
        start = time.monotonic()
        for i, (source, key, value) in enumerate(records):
            ahead = i / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
            stack.producer.send(stack.topics.identity[source], key=key, value=value)
        stack.producer.flush()
        sent.set()

    feeder = threading.Thread(target=feed, name="soak-feed", daemon=True)
    feeder.start()
    lock = threading.Lock()
    restarted = [0]
    stop = threading.Event()

    def supervise() -> None:
        """What systemd's Restart=on-failure does for a worker that exits with code 75 (it found
        a consumer stuck for good, streams/runtime/applied.py ProgressWatch): start it again.
        Any other exit is left alone (the checks then fail on it)."""
        while not stop.wait(1.0):
            with lock:
                for i, proc in enumerate(procs):
                    if proc.poll() == RESTART:
                        restarted[0] += 1
                        procs[i] = start_worker(settings[i], logs[i], env)

    supervisor = threading.Thread(target=supervise, name="soak-supervisor", daemon=True)
    supervisor.start()
    try:
        for pause in pauses:
            time.sleep(pause)
            victim = rng.randrange(workers)
            with lock:
                if procs[victim].poll() is None:
                    os.killpg(procs[victim].pid, signal.SIGKILL)
                procs[victim].wait(10)
                procs[victim] = start_worker(settings[victim], logs[victim], env)
        feeder.join()
        assert sent.is_set(), "the feed did not finish"
        final = final_standards(stack, valid)
        behind = wait_committed(stack.settings, commit_timeout_s)
        return SoakResult(kills, final, behind, logs, restarted[0]), valid
    finally:
        stop.set()
        supervisor.join(5)
        stack.worker = None
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except Exception:
                os.killpg(proc.pid, signal.SIGKILL)


def clean_run(n_events: int, seed: int = 26) -> Final:
    """What a clean run decides for the same records: each record validated as the intake does
    and applied to its person's state by the domain, in the order sent, with no Kafka, no
    worker and no kill (the decisions are pure functions of a person's dated facts)."""
    records, _, _ = synthetic_events(n_events, seed=seed)
    codec, book, secret = Codec(), load_book(), TEST_SECRET.encode()
    states: dict[str, PersonState] = {}
    best: dict[tuple[str, int], tuple[int, tuple[str, int, int]]] = {}
    for _, _, value in records:
        ident = validate_identity(codec.decode(value, expect="IdentityEvent")[1])
        if not isinstance(ident, Identity):
            continue
        key = person_key(ident.id_number, secret)
        state = states.setdefault(key, PersonState(id_number=ident.id_number))
        for effect in state.apply_identity(ident, book, key, 0):
            if isinstance(effect, FeeStandardIssued):
                k = (key, effect.insurance_year)
                if k not in best or effect.version > best[k][0]:
                    best[k] = (effect.version, (effect.category, effect.subsidy_fen, effect.payable_fen))
    return {k: v for k, (_, v) in best.items()}


def differences(got: Final, want: Final) -> list[str]:
    out = [f"{k[0][:8]}… {k[1]}: {got.get(k)} instead of {v}" for k, v in want.items() if got.get(k) != v]
    out += [f"{k[0][:8]}… {k[1]}: {v} not in the clean run" for k, v in got.items() if k not in want]
    return out
