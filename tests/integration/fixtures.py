"""Real-Kafka fixtures: a session broker, and per test a fresh prefix, topics, group and worker."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from connectors.dev.bench import remove_run
from connectors.dev.workers import start_worker, stop_worker
from connectors.kafka_io import make_producer, read_topic
from schemas.codec import Codec
from streams.domain.ids import mask_id, normalize_id, person_key
from streams.kafka.admin import ensure_topics
from streams.settings import Settings

TEST_SECRET = "7d1f9a3c5e8b2046f1a9c3e5b7d90214a6c8e0f2b4d6a8c0e2f4a6b8d0c2e4f6"  # 32 random bytes, hex
# a full 18-digit ID number (PIPL: sensitive): never in a log line, a metric, a record key or
# a command's output (a masked one, 110101********1234, does not match; nor do the digits after
# a decimal point: Faust's timer warning "runtime=0.012517119001131505" has 18 of them)
ID_RE = re.compile(r"(?<![0-9])(?<![0-9]\.)[0-9]{17}[0-9X](?![0-9])")


_HEX_RUN = re.compile(r"(?:[0-9a-fA-F]{2}){18,}")
_HEX_LETTER = re.compile(r"[a-fA-F]")


def _in_a_hash(text: str, m: re.Match[str]) -> bool:
    """Whether the match is glued to hex letters (a run of digits inside a case id or a key)."""
    before, after = text[m.start() - 1:m.start()], text[m.end():m.end() + 1]
    return bool(_HEX_LETTER.fullmatch(before) or _HEX_LETTER.fullmatch(after))
_B64_RUN = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")


def full_ids(text: str) -> list[str]:
    """The full ID numbers in ``text`` (18 ID characters; inside a hash, such as a review case id,
    only if they pass the GB 11643 check), also where they are written in hex or base64
    (issue #20), masked for the message that reports them."""
    found = [m.group() for m in ID_RE.finditer(text) if not _in_a_hash(text, m) or normalize_id(m.group())[1] is None]
    for run, decode in ((_HEX_RUN, bytes.fromhex), (_B64_RUN, base64.b64decode)):
        for m in run.finditer(text):
            for start in range(0, 4 if decode is base64.b64decode else 1):  # base64 at any alignment
                chunk = m.group()[start:]
                chunk = chunk[:len(chunk) - len(chunk) % (4 if decode is base64.b64decode else 2)]
                try:
                    plain = decode(chunk).decode("latin-1")
                except (ValueError, binascii.Error):
                    continue
                found += [i for i in ID_RE.findall(plain) if normalize_id(i)[1] is None]
    return [mask_id(m) for m in found]


class Stack:
    """One isolated deployment on the shared broker: its own topic prefix, app id and worker."""

    # the broker given by KAFKA_BOOTSTRAP_SERVERS when the session began (conftest's
    # kafka_bootstrap sets it; a test's own setenv does not count): a deployment there deletes
    # its topics and consumer groups when it closes
    given_broker: str | None = None

    def __init__(self, bootstrap: str, workdir: Path, partitions: int = 2) -> None:
        run = uuid.uuid4().hex[:8]
        self.settings = Settings(
            kafka_bootstrap_servers=bootstrap, topic_prefix=f"t{run}.", app_id=f"zhucan-test-{run}",
            partitions=partitions, key_secret=TEST_SECRET, data_dir=workdir / "data", metrics_port=0,
        )
        self.topics = self.settings.topics
        self.workdir = workdir
        self.codec = Codec()
        self.log_path = workdir / "worker.log"
        self.worker: subprocess.Popen[bytes] | None = None
        self.worker_env: dict[str, str] = {}
        self.supervised = False  # restart a worker that exits with code 75, as systemd would
        self.restarts = 0
        self.producer = make_producer(bootstrap)
        ensure_topics(self.settings)

    # -- worker ---------------------------------------------------------------
    def start_worker(self, **extra_env: str) -> None:
        self.worker_env = extra_env
        self.worker = start_worker(self.settings, self.log_path, extra_env)

    def check_alive(self) -> None:
        """The worker runs; with ``supervised``, one that exited with code 75 (a consumer stuck
        for good: streams/runtime/applied.py ProgressWatch) is started again, as its supervisor
        (systemd ``Restart=on-failure``) would; any other exit fails the test."""
        if self.worker is None or self.worker.poll() is None:
            return
        if self.supervised and self.worker.returncode == 75:
            self.restarts += 1
            self.worker = start_worker(self.settings, self.log_path, self.worker_env)
            return
        tail = "\n".join(self.worker_log().splitlines()[-40:])
        raise AssertionError(f"the worker exited with code {self.worker.returncode}:\n{tail}")

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

    def send_claim(self, claim: dict[str, Any]) -> None:
        self.producer.send(self.topics.claims, key=claim["claim_id"].encode(),
                           value=self.codec.encode("SubsidyClaim", claim))
        self.producer.flush()

    def send_other_channel(self, record: dict[str, Any]) -> None:
        self.producer.send(self.topics.other_channel, key=record["record_id"].encode(),
                           value=self.codec.encode("OtherChannelSubsidy", record))
        self.producer.flush()

    # -- reading --------------------------------------------------------------
    def key(self, id_number: str) -> str:
        return person_key(id_number, TEST_SECRET.encode())

    def read(self, topic: str, record: str, *, until=None, timeout_s: float = 60.0, idle_s: float | None = None):
        """Decoded ``(key, value, headers)`` tuples of a topic, from the beginning."""
        out: list[tuple[str | None, dict, list]] = []

        def decoded(rs):  # only the records not decoded yet: ``until`` is asked after every fetch
            self.check_alive()
            out.extend((r.key.decode() if r.key else None, self.codec.decode(r.value, expect=record)[1], r.headers)
                       for r in rs[len(out):])
            return out

        cond = (lambda rs: until(decoded(rs))) if until else None
        return list(decoded(read_topic(self.settings.kafka_bootstrap_servers, topic, timeout_s=timeout_s, until=cond,
                                       idle_s=idle_s)))

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
                            "ZHUCAN_APP_ID": self.settings.app_id,
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
        if self.given_broker == self.settings.kafka_bootstrap_servers:
            # a broker the tests were given (a developer's `zhucan kafka up`) keeps nothing of
            # theirs: a whole suite's topics, about 3,500, ran one out of open files
            remove_run(self.settings.kafka_bootstrap_servers, self.settings.topic_prefix, self.settings.app_id,
                       who="zhucan tests")
        # the sweep of issue #13, in every integration test that ran a worker
        leaked = full_ids(self.worker_log())
        assert not leaked, f"full ID numbers in the worker's log {self.log_path}: {leaked[:5]}"


def assert_whole(stack: Stack, expected_ids: set[str], timeout_s: float = 240.0) -> None:
    """Every expected person decided; a version number never given two contents; a person-year's
    versions are 1..n without a gap (after a killed worker or a lost broker)."""
    expected = {person_key(i, TEST_SECRET.encode()) for i in expected_ids}
    recs = stack.read(stack.topics.fee_standard, "FeeStandard", timeout_s=timeout_s,
                      until=lambda rs: expected <= {k for k, _, _ in rs})
    missing = expected - {k for k, _, _ in recs}
    assert not missing, f"{len(missing)} people without a standard\n{stall_report(stack, missing)}"
    versions: dict[tuple[str, int, int], tuple] = {}
    for key, fee, _ in recs:
        what = (fee["message_id"], fee["category"], fee["subsidy_fen"], fee["payable_fen"])
        assert versions.setdefault((key, fee["insurance_year"], fee["version"]), what) == what
    for key, year in {(k, y) for k, y, _ in versions}:
        numbers = sorted(v for k, y, v in versions if (k, y) == (key, year))
        assert numbers == list(range(1, len(numbers) + 1))


def stall_report(stack: Stack, missing: set[str]) -> str:
    """What a failure of ``assert_whole`` needs to say where things stopped: the partitions of
    zhucan.person-commands the missing people belong to, each worker group's offsets behind the
    end per partition, and the tail of each worker log (masked IDs only)."""
    from collections import Counter

    from streams.kafka.lag import LagMonitor
    from streams.runtime.partitioning import partition_for

    lines = ["missing people per person-commands partition: " + ", ".join(
        f"{p}: {n}" for p, n in sorted(Counter(partition_for(k.encode(), stack.settings.partitions)
                                               for k in missing).items()))]
    monitor = LagMonitor(stack.settings.kafka_bootstrap_servers)
    try:
        monitor.sample(stack.settings.worker_groups)
        for group in monitor.report(stack.settings.worker_groups):
            behind = [f"{p.topic}[{p.partition}] {p.committed}/{p.end}" for p in group.partitions if p.lag]
            lines.append(f"{group.group} ({group.state}, {group.members} member(s)): "
                         + (", ".join(behind) or "nothing behind"))
    except Exception as exc:  # the report must not hide the failure it explains
        lines.append(f"lag unknown ({exc})")
    finally:
        monitor.close()
    try:
        lines += whereabouts(stack, missing)
    except Exception as exc:
        lines.append(f"whereabouts unknown ({exc})")
    for log in sorted(stack.workdir.glob("*.log")):
        text = log.read_text(errors="replace").splitlines()
        repairs = [line for line in text if any(w in line for w in (
            "came before", "no longer exist", "seeking", "stuck", "failed", "restarts", "rebalance"))]
        lines.append(f"--- the repairs and failures said in {log.name} ({len(repairs)}) ---\n" + "\n".join(repairs[-40:]))
        lines.append(f"--- last lines of {log.name} ---\n" + "\n".join(text[-25:]))
    return "\n".join(lines)


def whereabouts(stack: Stack, missing: set[str]) -> list[str]:
    """Where the missing people's commands are: the offsets of zhucan.person-commands whose
    records carry one (did the intake write them at all?), each partition's applied-offset marker
    as its changelog last says, and how many of the missing have a state there (did the person
    stage take them in?). A loss at the intake and a skip at the person stage read differently."""
    from collections import defaultdict

    from streams.runtime import wire
    from streams.runtime.applied import MARKER_PREFIX

    wanted = {k.encode() for k in missing}
    found: dict[int, list[int]] = defaultdict(list)
    ends: dict[int, int] = {}
    for r in read_topic(stack.settings.kafka_bootstrap_servers, stack.topics.person_commands, timeout_s=60, idle_s=2.0):
        ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
        try:
            keys = {k for k, _ in wire.unpack(r.key, r.value or b"")}
        except wire.BatchFormatError:
            continue
        if keys & wanted:
            found[r.partition].append(r.offset)
    markers: dict[int, str] = {}
    with_state: set[bytes] = set()
    for r in read_topic(stack.settings.kafka_bootstrap_servers, stack.topics.person_changelog, timeout_s=60,
                        idle_s=2.0):
        if r.key and r.key.startswith(MARKER_PREFIX):
            markers[r.partition] = (r.value or b"").decode()
        elif r.key in wanted and r.value:
            with_state.add(r.key)
    out = [f"person-commands[{p}]: {len(offsets)} record(s) carry a missing person, offsets {offsets[0]}-{offsets[-1]}"
           f" of {ends.get(p)}; its changelog's applied marker: {markers.get(p)}"
           for p, offsets in sorted(found.items())]
    if not found:
        out.append("no record of zhucan.person-commands carries a missing person (the intake never wrote them)")
    out.append(f"missing people with a state on the changelog: {len(with_state)} of {len(missing)}")
    return out


def wait_for_group(stack, timeout_s: float = 90.0) -> None:
    """Until both of the worker's groups are Stable with a member (its partitions assigned)."""
    from streams.kafka.lag import LagMonitor

    monitor = LagMonitor(stack.settings.kafka_bootstrap_servers)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            try:
                infos = monitor.admin.describe_groups(stack.settings.worker_groups)
            except Exception:  # no coordinator yet
                infos = {}
            if all(infos.get(g, {}).get("group_state") == "Stable" and infos[g].get("members")
                   for g in stack.settings.worker_groups):
                return
            time.sleep(0.5)
        raise AssertionError(f"the worker's groups did not become stable:\n{stack.worker_log()[-3000:]}")
    finally:
        monitor.close()
