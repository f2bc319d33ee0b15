"""zhucan on a three-node Kafka cluster (issue #14), in the manner of Kafka's own replication
tests: bounce brokers during a produce run, then check that what was acknowledged was decided,
nothing was lost and no version got two contents.

The cluster is three combined broker/controller nodes started by ``LocalCluster`` from the same
Maven jars (never a mock); the topics get replication factor 3 and min.insync.replicas 2.
Small batches keep the suite's time: what is tested is wholeness, never a timing.
"""

from __future__ import annotations

import re
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from connectors.dev.bench import synthetic_events
from connectors.dev.localkafka import LocalCluster, free_port
from streams.kafka.admin import admin_client, check_topics
from streams.runtime.faust_compat import leader_topic_name
from tests.integration.fixtures import Stack, assert_whole, wait_for_group

# One process of `make test` runs this module: its three-node cluster is started once.
pytestmark = pytest.mark.xdist_group("test_replication")


@pytest.fixture(scope="module")
def cluster():
    home = Path(tempfile.mkdtemp(prefix="zhucan-test-cluster-"))
    c = LocalCluster(home=home, ports=[free_port() for _ in range(3)], controller_ports=[free_port() for _ in range(3)])
    c.start()
    try:
        yield c
    finally:
        c.stop(wipe=True)


@pytest.fixture
def cstack(cluster, tmp_path):
    for i in range(1, 4):  # every node up at the start of each test
        cluster.start_node(i)
    cluster.wait_brokers(3)
    s = Stack(cluster.bootstrap, tmp_path)
    yield s
    print("---- worker log (tail) ----\n" + "\n".join(s.worker_log().splitlines()[-60:]))
    s.close()


def leader_of(stack: Stack, topic: str, partition: int) -> int:
    admin = admin_client(stack.settings.kafka_bootstrap_servers)
    try:
        (t,) = admin.describe_topics([topic])
        return next(p["leader_id"] for p in t["partitions"] if p["partition_index"] == partition)
    finally:
        admin.close()


def send(stack: Stack, records) -> list:
    return [stack.producer.send(stack.topics.identity[source], key=key, value=value) for source, key, value in records]


def fee_standards_out(stack: Stack, log_from: int) -> float:
    """The running worker's own count of fee standards published (its metrics endpoint, found in
    its log from ``log_from``)."""
    match = re.findall(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", stack.worker_log()[log_from:])
    assert match, "the worker's metrics endpoint is not in its log"
    text = urllib.request.urlopen(match[-1], timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("zhucan_fee_standards_out_total"))


def test_topics_are_replicated_three_times_with_two_in_sync_required(cstack):
    deadline = time.monotonic() + 30
    while True:  # a topic just created reaches every broker's metadata within moments
        checks = {c.name: c for c in check_topics(cstack.settings)}
        if all(c.exists for c in checks.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert all(not c.problems for c in checks.values()), [c.problems for c in checks.values() if c.problems]
    changelog = checks[cstack.topics.person_changelog]
    assert (changelog.replication_factor, changelog.configs["min.insync.replicas"]) == (3, "2")
    assert changelog.configs["cleanup.policy"] == "compact"
    assert checks[cstack.topics.fee_standard].replication_factor == 3


@pytest.mark.long
def test_a_leader_killed_mid_batch_then_a_rolling_restart_lose_nothing(cluster, cstack):
    records, _, valid = synthetic_events(1600, seed=31)
    first, second = records[:800], records[800:]
    # the progress watch within the test's time, and its supervisor (a run of the suite once found
    # the person stage still after the rolling restart, with nothing to say why)
    cstack.supervised = True
    cstack.start_worker(ZHUCAN_TUNING__PROGRESS_STUCK_S="30", ZHUCAN_TUNING__COMMIT_WATCH_S="5")
    wait_for_group(cstack)
    futures = send(cstack, first)
    cstack.read(cstack.topics.fee_standard, "FeeStandard", until=lambda rs: len(rs) >= 50, timeout_s=120)
    victim = leader_of(cstack, cstack.topics.person_commands, 0)
    cluster.nodes[victim - 1].kill()  # SIGKILL: no controlled shutdown, the leader just goes
    time.sleep(3)
    cluster.start_node(victim)
    cluster.wait_brokers(3)
    for i in range(1, 4):  # rolling: each node stopped and started in turn, records still coming
        futures += send(cstack, second[(i - 1) * 267:i * 267])
        cluster.nodes[i - 1].stop()
        cluster.start_node(i)
        cluster.wait_brokers(3)
    for f in futures:
        f.get(timeout=120)  # every department record was acknowledged (acks=all, idempotent)
    cstack.check_alive()
    assert_whole(cstack, valid)
    print(f"\n[replication] the worker was started again {cstack.restarts} time(s) after a stuck consumer")
    # Faust's leader topic is zhucan's to create (the app declares none): replicated like the rest
    leader = leader_topic_name(cstack.settings.streams_app_id)
    admin = admin_client(cstack.settings.kafka_bootstrap_servers)
    try:
        (t,) = admin.describe_topics([leader])
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, leader)], config_filter="all").get("topic", {})
    finally:
        admin.close()
    assert [len(p["replica_nodes"]) for p in t["partitions"]] == [3]
    assert configs[leader]["min.insync.replicas"]["value"] == "2"


@pytest.mark.long
def test_with_one_broker_of_three_nothing_is_written_until_a_second_returns(cluster, cstack):
    records, _, valid = synthetic_events(300, seed=41)
    cstack.start_worker()
    wait_for_group(cstack)
    cstack.stop_worker()  # the department's records wait on the topics, acknowledged by all three
    for f in send(cstack, records):
        f.get(timeout=60)
    cluster.nodes[1].kill()
    cluster.nodes[2].kill()
    log_from = len(cstack.worker_log())
    started = time.monotonic()
    cstack.start_worker()
    # its start-up asks the one broker left about the cluster and the topics, and tries the two
    # dead ones first: on a loaded machine (the suite's two processes) it once took over 25 s to
    # serve its metrics. The looks below count from then, however long the start takes.
    start_deadline = started + 120
    while "metrics on http" not in cstack.worker_log()[log_from:]:
        assert cstack.worker.poll() is None, "the worker died while the cluster was degraded"
        assert time.monotonic() < start_deadline, "the worker did not start within 120 s with one broker of three"
        time.sleep(1)
    print(f"\n[replication] the worker served its metrics {time.monotonic() - started:.1f} s after its start")
    for _ in range(12):  # the worker runs (its endpoint answers) and publishes nothing
        assert cstack.worker.poll() is None, "the worker died while the cluster was degraded"
        assert fee_standards_out(cstack, log_from) == 0, "a fee standard was written with one replica in sync"
        time.sleep(1)
    cluster.start_node(2)  # a majority again: two replicas in sync, writes accepted
    assert_whole(cstack, valid)
    assert cstack.worker.poll() is None


@pytest.mark.long
def test_workers_killed_mid_batch_on_three_nodes_lose_no_command(cluster, tmp_path):
    """Issue #26 on three brokers: one of two workers SIGKILLed and restarted mid-batch, again
    and again (fewer times than the one-node soak, for the suite's time)."""
    from tests.integration.test_restarts import check_soak

    for i in range(1, 4):
        cluster.start_node(i)
    cluster.wait_brokers(3)
    check_soak(cluster.bootstrap, tmp_path, kills=5, events=8000)
