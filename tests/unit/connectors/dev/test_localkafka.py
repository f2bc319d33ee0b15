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


def test_a_secured_cluster_of_several_nodes_is_refused_with_where_to_look(tmp_path, monkeypatch):
    monkeypatch.setenv("ZHUCAN_KAFKA_DIR", str(tmp_path))
    with pytest.raises(localkafka.LocalKafkaError, match="three-hosts"):
        localkafka.default_broker(3, secure=True)


def test_missing_keytool_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(localkafka.shutil, "which", lambda tool: None)
    broker = localkafka.LocalKafka(home=tmp_path, port=localkafka.free_port(), secure=True)
    with pytest.raises(localkafka.LocalKafkaError, match="keytool"):
        broker._provision_security("java")
