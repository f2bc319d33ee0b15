"""`zhucan topics check` and `zhucan topics create` against the topic list, on real Kafka."""

from __future__ import annotations

import json
import time

from connectors.ops.cli import main


def test_check_passes_on_fresh_topics_and_reports_drift(stack, monkeypatch, capsys):
    stack.cli_env(monkeypatch)
    assert main(["topics", "check", "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)
    assert {c["name"] for c in checks} == set(stack.settings.topics.configs())
    assert all(c["exists"] and not c["problems"] and c["partitions"] == 2 for c in checks)
    changelog = next(c for c in checks if c["name"] == stack.topics.person_changelog)
    assert changelog["configs"]["cleanup.policy"] == "compact"

    # a size limit set behind zhucan's back would delete fee standards by size (issue #20: missed)
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=stack.settings.kafka_bootstrap_servers)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, stack.topics.fee_standard,
                                            configs={"retention.bytes": "1048576"})])
    finally:
        admin.close()
    assert main(["topics", "check"]) == 1
    out, _ = capsys.readouterr()
    assert "retention.bytes=1048576, the spec says -1" in out

    monkeypatch.setenv("ZHUCAN_PARTITIONS", "3")  # the spec now says 3: every topic drifts
    assert main(["topics", "check"]) == 1
    out, err = capsys.readouterr()
    n = len(stack.settings.topics.configs())
    assert "DRIFT: 2 partitions, the spec says 3" in out and f"{n} of {n} topics differ from the spec" in err


def test_create_raises_partitions_where_safe_and_refuses_keyed_topics_with_data(stack, monkeypatch, capsys):
    stack.cli_env(monkeypatch)
    stack.send_raw(stack.topics.fee_standard, b"a fee standard", key=b"person")  # a keyed topic with data
    monkeypatch.setenv("ZHUCAN_PARTITIONS", "3")
    assert main(["topics", "create"]) == 1
    out, err = capsys.readouterr()
    assert f"refused {stack.topics.fee_standard}: keyed and holds data" in err
    assert f"raised {stack.topics.identity['CIVIL_AFFAIRS']}: 2 -> 3 partitions" in out  # unkeyed
    assert f"raised {stack.topics.review}: 2 -> 3 partitions" in out  # keyed but empty
    assert main(["topics", "check", "--json"]) == 1
    drift = {c["name"]: c["problems"] for c in json.loads(capsys.readouterr().out) if c["problems"]}
    assert drift == {stack.topics.fee_standard: ["2 partitions, the spec says 3"]}


def test_the_worker_says_at_start_which_topics_differ_from_the_spec(stack, monkeypatch):
    stack.cli_env(monkeypatch)
    monkeypatch.setenv("ZHUCAN_PARTITIONS", "3")
    assert main(["topics", "create"]) == 0  # nothing holds data yet: every topic raised to 3
    stack.start_worker()  # its settings say 2 partitions

    deadline = time.monotonic() + 60
    while "differs from the spec" not in stack.worker_log() and time.monotonic() < deadline:
        time.sleep(0.5)
    log = stack.worker_log()
    assert f"topic {stack.topics.fee_standard} differs from the spec: 3 partitions, the spec says 2" in log
