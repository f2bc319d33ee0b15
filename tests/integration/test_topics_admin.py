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


def test_a_test_on_a_broker_it_was_given_leaves_no_topic_or_group_there(kafka_bootstrap, tmp_path, monkeypatch):
    """On a broker given by KAFKA_BOOTSTRAP_SERVERS (a developer's `zhucan kafka up`), each
    test's deployment deletes its topics and consumer groups when it closes: a whole suite left
    about 3,500 topics, and that broker ran out of open files. (The suite's own brokers are
    thrown away; there the topics stay, for a failure's post-mortem.)"""
    from streams.kafka.admin import admin_client, present_topics
    from tests.fixtures import event, new_id
    from tests.integration.fixtures import Stack, assert_whole

    monkeypatch.setattr(Stack, "given_broker", kafka_bootstrap)  # as if given: CI's broker is the suite's own
    stack = Stack(kafka_bootstrap, tmp_path)
    stack.start_worker()
    idn = new_id()
    stack.send_identity(event(idn, "MINIMUM_LIVING"))
    assert_whole(stack, {idn})
    names = [*stack.topics.contract(), *stack.topics.internal(), f"{stack.settings.app_id}-streams-__assignor-__leader"]
    admin = admin_client(kafka_bootstrap)
    try:
        assert len(present_topics(admin, names)) == len(names)  # created, and the worker's groups exist
        groups = {g["group_id"] for g in admin.list_groups()}
        assert {stack.settings.app_id, stack.settings.streams_app_id} <= groups
        stack.close()
        deadline = time.monotonic() + 60
        while present_topics(admin, names) and time.monotonic() < deadline:  # deleted asynchronously
            time.sleep(0.5)
        assert present_topics(admin, names) == set()
        assert not {g["group_id"] for g in admin.list_groups()} & {stack.settings.app_id, stack.settings.streams_app_id}
    finally:
        admin.close()
