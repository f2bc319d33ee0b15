"""The embedded broker's edges that need no broker: status when down, clear errors when tools are missing."""

import json

import pytest

from connectors.dev import localkafka
from connectors.ops.cli import main


def test_status_of_a_broker_that_is_not_running(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZHUCAN_KAFKA_DIR", str(tmp_path / "kafka"))
    monkeypatch.setenv("ZHUCAN_KAFKA_PORT", str(localkafka.free_port()))
    assert main(["kafka", "status", "--json"]) == 3
    status = json.loads(capsys.readouterr().out)
    assert status["running"] is False and status["answers"] is False and status["kafka_version"] == "3.9.1"


def test_missing_maven_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    monkeypatch.setattr(localkafka.shutil, "which", lambda tool: None)
    with pytest.raises(localkafka.LocalKafkaError, match="apt-get install maven"):
        localkafka.jars_dir()


def test_missing_java_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(localkafka.shutil, "which", lambda tool: None)
    broker = localkafka.LocalKafka(home=tmp_path, port=localkafka.free_port())
    with pytest.raises(localkafka.LocalKafkaError, match="openjdk-17-jre-headless"):
        broker._java()


def test_kafka_home_that_is_not_a_distribution_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("KAFKA_HOME", str(tmp_path))
    with pytest.raises(localkafka.LocalKafkaError, match="not a Kafka distribution"):
        localkafka.jars_dir()


def test_securing_a_broker_formatted_without_security_is_refused(tmp_path):
    broker = localkafka.LocalKafka(home=tmp_path, port=localkafka.free_port(), secure=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "meta.properties").write_text("cluster.id=x\n")
    with pytest.raises(localkafka.LocalKafkaError, match="down --wipe"):
        broker.launch()


def test_a_secured_cluster_of_several_nodes_shares_one_ca_and_one_set_of_users(tmp_path, monkeypatch):
    """Issue #20 (8): `kafka up --secure --nodes 3` was refused; its nodes now share the cluster's
    TLS files and credentials (the cluster runs in tests/integration/test_security.py)."""
    monkeypatch.setenv("ZHUCAN_KAFKA_DIR", str(tmp_path))
    cluster = localkafka.default_broker(3, secure=True)
    assert isinstance(cluster, localkafka.LocalCluster) and cluster.secure
    assert {n.tls_dir for n in cluster.nodes} == {tmp_path / "cluster-3" / "tls"}
    assert {n.credentials_file for n in cluster.nodes} == {tmp_path / "cluster-3" / "credentials.json"}
    assert all(n.secure for n in cluster.nodes)


def test_missing_keytool_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(localkafka.shutil, "which", lambda tool: None)
    broker = localkafka.LocalKafka(home=tmp_path, port=localkafka.free_port(), secure=True)
    with pytest.raises(localkafka.LocalKafkaError, match="keytool"):
        broker._provision_security("java")


def test_the_three_hosts_template_is_secured_end_to_end():
    """Issue #20 (8): deploy/kafka/three-hosts had no TLS, no SASL and no authorizer, and put
    plaintext controllers on the network."""
    path = localkafka.DEPLOY_DIR / "three-hosts" / "server.properties"
    props = dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines()
                 if line and not line.startswith("#"))
    assert "PLAINTEXT" not in props["listeners"] + props["advertised.listeners"] + props["listener.security.protocol.map"]
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SSL"
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert "ANONYMOUS" not in props["super.users"]
