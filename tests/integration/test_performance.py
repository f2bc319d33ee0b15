"""The benchmark as a small smoke run, two workers sharing the partitions, and a killed worker.

Nothing here asserts a timing: the benchmark's figures are reported by `zhucan bench`, and
these tests check only that what it measures is whole (every person answered, nothing twice).
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from connectors.dev.bench import run_bench, synthetic_events
from connectors.ops.cli import main
from tests.integration.fixtures import assert_whole, wait_for_group

FIELDS = {"events", "seconds", "throughput_eps", "ceiling_eps", "p50_ms", "p99_ms", "rss_mb",
          "state_bytes_per_person"}


def test_bench_smoke_run_writes_its_figures(stack, monkeypatch, tmp_path, capsys):
    stack.cli_env(monkeypatch)
    out = tmp_path / "bench.json"
    assert main(["bench", "--events", "3000", "--rate", "200", "--latency-seconds", "2", "--json", str(out),
                 "--latency-client", "kafka-python", "--batch-client", "kafka-python"]) == 0
    doc = json.loads(out.read_text())
    assert doc["latency_client"] == "kafka-python"  # the other producer of the latency run (librdkafka below)
    assert doc["batch_client"] == "kafka-python"  # and of the batch
    assert FIELDS <= doc.keys()
    assert doc["events"] == 3000 and doc["fee_standards"] > 2000
    assert doc["conflicting_versions"] == 0 and doc["people_without_standard"] == 0
    assert doc["people_without_standard_after_stop"] == 0  # counted again once the workers stopped
    assert doc["duplicated_versions"] == 0  # workers ready before the batch: no rebalance, no re-send
    assert doc["ceiling_librdkafka_eps"] > 0  # the second ceiling: librdkafka on the same records
    assert doc["reports"]["coverage"]["seconds"] > 0 and doc["reports"]["settle"]["peak_mb"] > 0
    assert doc["throughput_eps"] > 0 and doc["ceiling_eps"] > 0 and doc["p99_ms"] >= doc["p50_ms"] >= 0
    assert 0 < doc["state_bytes_per_person"] <= 1024  # the target: at most 1 KiB per person
    assert doc["worker_cpu_us_per_event"] > 0  # read from the worker process, not this one
    assert "throughput (events/s)" in capsys.readouterr().out
    # the run's topics and groups are gone (a broker that kept every run's held thousands)
    left_topics, left_groups = _left(stack, doc["topic_prefix"], doc["app_id"])
    assert doc["topic_prefix"].startswith("bench") and not doc["topics_kept"]
    assert left_topics == [] and left_groups == []


def _left(stack, topic_prefix: str, app_id: str) -> tuple[list[str], list[str]]:
    """The topics named with ``topic_prefix`` or ``app_id``, and the groups of ``app_id``, still on the broker."""
    from streams.kafka.admin import admin_client

    admin = admin_client(stack.settings.kafka_bootstrap_servers)
    try:
        topics = [t for t in admin.list_topics() if t.startswith(topic_prefix) or t.startswith(f"{app_id}-")]
        groups = [g["group_id"] for g in admin.list_groups() if g["group_id"].startswith(app_id)]
        return topics, groups
    finally:
        admin.close()


def test_two_workers_share_the_partitions_and_lose_or_repeat_nothing(stack, tmp_path):
    result = run_bench(stack.settings.model_copy(update={"partitions": 4}), 6000, workers=2, rate=200,
                       latency_s=2, workdir=tmp_path / "bench")
    assert result.members == 2  # both workers held partitions of both groups while the batch ran
    assert result.people_without_standard == 0 and result.conflicting_versions == 0
    assert result.people_without_standard_after_stop == 0
    assert result.duplicated_versions == 0
    assert result.fee_standards >= 0.8 * result.people
    # the cores in use while the latency run's events were offered, read from outside the workers
    assert result.latency_client == "librdkafka"
    assert result.batch_client == "librdkafka"  # the batch too: a C producer, off the workers' cores
    assert result.latency_machine_cores is not None and 0 < result.latency_machine_cores <= (os.cpu_count() or 1)
    assert result.latency_workers_cores is not None and result.latency_workers_cores > 0
    # most of the province's newcomers share their facts with an earlier one (each region's
    # people certified on one day): their decisions remembered, as the workers' metrics say
    assert result.newcomers_remembered is not None and result.newcomers_remembered > 0.5
    # and most second identities (one person in seven holds two classes) those of an earlier one
    assert result.second_identities_remembered is not None and result.second_identities_remembered > 0.5
    # the latency run's timeline: one row per offered person (200/s for 2 s), in send order
    rows = (tmp_path / "bench" / "latency.csv").read_text().splitlines()
    assert rows[0] == "sent_ms,latency_ms" and len(rows) == 1 + 400
    sent = [int(r.split(",")[0]) for r in rows[1:]]
    assert sent == sorted(sent) and sent[0] == 0 and all(float(r.split(",")[1]) >= 0 for r in rows[1:])


@pytest.mark.long
def test_a_killed_worker_loses_nothing(stack):
    """SIGKILL mid-batch (no drain, no flush), then a restart: every person still gets a
    standard, and a version number is never given to two different standards."""
    records, _, valid = synthetic_events(20000, seed=11)
    stack.start_worker()
    wait_for_group(stack)
    for source, key, value in records:
        stack.producer.send(stack.topics.identity[source], key=key, value=value)
    stack.producer.flush()
    seen = stack.read(stack.topics.fee_standard, "FeeStandard", until=lambda rs: len(rs) >= 500, timeout_s=60)
    assert len(seen) < len(valid), "the batch finished before the kill: nothing was tested"
    os.killpg(stack.worker.pid, signal.SIGKILL)
    stack.worker.wait(10)
    stack.start_worker()
    assert_whole(stack, valid, timeout_s=180)


@pytest.mark.long
def test_the_bench_kill_mode_says_the_longest_wait_and_loses_nothing(stack, tmp_path):
    """Issue #25 (4): `zhucan bench --kill --static-members`: a worker SIGKILLed a third of the
    way through and started again on its own data directory, as itself (static membership).
    The bench reports the longest wait per partition (a figure, never asserted as a time) and
    the batch is whole: every person answered, counted again once the workers stopped, and no
    version number with two contents."""
    result = run_bench(stack.settings.model_copy(update={"partitions": 4}), 30000, workers=2, rate=200,
                       latency_s=2, workdir=tmp_path / "bench", kill=True, static=True)
    assert result.static_members and result.members == 2
    assert result.kill_waits_s and result.kill_longest_wait_s == max(result.kill_waits_s.values())
    assert result.kill_caught_up_s is not None
    assert result.people_without_standard == 0 and result.people_without_standard_after_stop == 0
    assert result.conflicting_versions == 0


def test_the_bench_clients_mode_moves_every_record_through_each_client(stack, monkeypatch, tmp_path, capsys):
    """``zhucan bench --clients``: each client read every record and wrote it twice (as it is, and
    at a state's size); a figure per client and direction. Its figures are not asserted."""
    from tests.integration.test_restarts import end_offsets

    stack.cli_env(monkeypatch)
    out = tmp_path / "clients.json"
    assert main(["bench", "--clients", "--events", "2000", "--keep-topics", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["records"] == 2000
    for what in ("consume", "produce", "produce_state_sized"):
        for client in ("aiokafka", "librdkafka"):  # confluent-kafka is a test dependency; the stack is plain
            assert doc[f"{what}_us_per_record_{client}"] > 0
    for role, records in (("source", 2000), ("aiokafka", 4000), ("librdkafka", 4000)):
        assert sum(end_offsets(stack.settings, doc["topics"][role]).values()) == records, role
    assert "consume CPU per record, aiokafka" in capsys.readouterr().out
    # without --keep-topics its scratch topics are deleted at the end
    assert main(["bench", "--clients", "--events", "200", "--json", str(out)]) == 0
    second = json.loads(out.read_text())
    assert _left(stack, second["topics"]["source"].rsplit(".", 1)[0] + ".", second["group"]) == ([], [])


def test_at_a_steady_low_rate_a_fetch_of_the_intake_gathers_several_records(running):
    """Issue #25 (3): at 1,000 events/s after a batch, the intake's fetches came back with one or
    two records each (Kafka answers a fetch at once when one byte waits), and each became its own
    batch record, take and commit: the workers needed about a core where the batch costs a
    quarter of one. A fetch with less than ``intake_fetch_min_bytes`` waiting now waits up to
    ``intake_fetch_wait_ms`` (50 ms) on the broker, so a fetch covers at least 50 ms of what was
    sent, and each of its person-commands partitions gets one batch record from it."""
    from connectors.kafka_io import read_topic
    from streams.runtime.wire import unpack
    from tests.fixtures import event, new_id
    from tests.integration.fixtures import wait_for_group

    wait_for_group(running)
    ids = [new_id() for _ in range(60)]
    started = time.monotonic()
    for idn in ids:  # one every 5 ms or so, each in its own produce request (the producer lingers 5 ms)
        ev = event(idn, "MINIMUM_LIVING")
        running.producer.send(running.topics.identity[ev["source"]], key=ev["event_id"].encode(),
                              value=running.codec.encode("IdentityEvent", ev))
        time.sleep(0.005)
    running.producer.flush()
    sending_s = time.monotonic() - started
    fees = running.read(running.topics.fee_standard, "FeeStandard", idle_s=3.0,
                        until=lambda rs: len({f["id_number"] for _, f, _ in rs}) >= len(ids))
    assert {f["id_number"] for _, f, _ in fees} == set(ids)
    records = read_topic(running.settings.kafka_bootstrap_servers, running.topics.person_commands, idle_s=2.0)
    commands = [cmd for r in records for cmd in unpack(r.key, r.value)]
    # one command per event; a second copy (the same bytes) only where the worker says it handled
    # a fetch again (a send or commit that failed under load: at-least-once, the person stage
    # drops the repeated event id). A full suite run of 2026-12-06 met 61 commands for 60 events.
    assert len(set(commands)) == len(ids)
    if len(commands) > len(ids):
        redone = [line for line in running.worker_log().splitlines()
                  if "intake send failed" in line or "intake commit failed" in line or "handling a fetch" in line]
        assert redone, f"{len(commands)} commands for {len(ids)} events, and the worker's log names no fetch handled again"
    # fetches: at most one per 50 ms of sending, and one more at each end; batch records: one per
    # person-commands partition per fetch (two here). Answered at once (1 byte), 60 commands came in
    # 41 batch records where this bound was 21.
    partitions = running.settings.partitions
    bound = partitions * (sending_s / 0.05 + 3)
    assert len(records) <= bound, f"{len(records)} batch records for {len(commands)} commands sent in {sending_s:.2f} s"
