"""Every Kafka client reads its security settings from the environment, in one place."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from faust.auth import SASLCredentials

from streams.kafka.security import (
    CREDENTIALS_FILE,
    ClientSecurity,
    SecurityConfigError,
    kafka_python_config,
)

ROOT = Path(__file__).resolve().parents[4]
SASL = {"KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "KAFKA_SASL_USERNAME": "civil-affairs", "KAFKA_SASL_PASSWORD": "pw"}


def test_plaintext_by_default(tmp_path):
    sec = ClientSecurity.from_env({"ZHUCAN_KAFKA_DIR": str(tmp_path)})  # no secured embedded broker there
    assert (sec.protocol, sec.sasl, sec.tls) == ("PLAINTEXT", False, False)
    assert sec.kafka_python() == {"security_protocol": "PLAINTEXT"} and sec.faust() is None


def test_sasl_ssl_with_scram_for_every_client_library(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not read here")
    sec = ClientSecurity.from_env({**SASL, "KAFKA_SSL_CAFILE": str(ca)})
    assert sec.kafka_python() == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                                  "sasl_plain_username": "civil-affairs", "sasl_plain_password": "pw",
                                  "ssl_check_hostname": True, "ssl_cafile": str(ca)}
    no_ca = ClientSecurity.from_env(SASL)  # the system's CAs
    assert no_ca.aiokafka()["ssl_context"] is not None
    creds = no_ca.faust()
    assert isinstance(creds, SASLCredentials) and creds.username == "civil-affairs"
    assert creds.mechanism.value == "SCRAM-SHA-512" and creds.protocol.value == "SASL_SSL"


def test_the_password_may_come_from_a_file(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    env = {k: v for k, v in SASL.items() if k != "KAFKA_SASL_PASSWORD"}
    sec = ClientSecurity.from_env({**env, "KAFKA_SASL_PASSWORD_FILE": str(secret)})
    assert sec.password is not None and sec.password.get_secret_value() == "from-a-file"
    assert "from-a-file" not in repr(sec)  # a secret type: never in a log line or a traceback


@pytest.mark.parametrize(("env", "named"), [
    ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
    ({**SASL, "KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": "pw"}, "KAFKA_SASL_USERNAME"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_PASSWORD"),
    ({**SASL, "KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "KAFKA_SSL_CAFILE"),
])
def test_a_wrong_setting_is_named(env, named):
    with pytest.raises(SecurityConfigError, match=named):
        ClientSecurity.from_env(env)


def test_the_helper_reads_the_process_environment(monkeypatch):
    for k, v in SASL.items():
        monkeypatch.setenv(k, v)
    cfg = kafka_python_config("b:9093", client_id="x")
    assert cfg["bootstrap_servers"] == "b:9093" and cfg["security_protocol"] == "SASL_SSL" and cfg["client_id"] == "x"


def test_no_kafka_client_is_built_without_the_security_settings():
    """Every KafkaConsumer/KafkaProducer/KafkaAdminClient/AIOKafkaConsumer/App built in streams/
    and connectors/ gets its settings from streams/kafka/security.py (the local broker's own
    readiness probe aside)."""
    clients = {"KafkaConsumer", "KafkaProducer", "KafkaAdminClient", "AIOKafkaConsumer", "AIOKafkaProducer"}
    helpers = {"kafka_python_config", "aiokafka_config"}
    offenders, seen = [], 0
    for path in [*ROOT.glob("streams/**/*.py"), *ROOT.glob("connectors/**/*.py")]:
        if path.name == "localkafka.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name not in clients:
                continue
            seen += 1
            spread = [kw.value for kw in node.keywords if kw.arg is None]
            ok = any(isinstance(v, ast.Call) and getattr(v.func, "id", "") in helpers for v in spread)
            ok = ok or any(isinstance(v, ast.Name) and v.id == "config" for v in spread)  # make_producer's dict
            if not ok:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert seen >= 10 and offenders == []
    app = (ROOT / "streams" / "app.py").read_text(encoding="utf-8")
    assert "broker_credentials=faust_credentials(settings.kafka_bootstrap_servers)" in app


def _embedded(tmp_path: Path) -> dict[str, str]:
    (tmp_path / CREDENTIALS_FILE).write_text(json.dumps({
        "bootstrap": "127.0.0.1:9092", "protocol": "SASL_SSL", "mechanism": "SCRAM-SHA-512",
        "cafile": str(tmp_path / "ca.pem"), "default_user": "admin", "users": {"admin": "a-pw", "tax": "t-pw"}}))
    return {"ZHUCAN_KAFKA_DIR": str(tmp_path)}


def test_the_secured_embedded_brokers_credentials_are_found(tmp_path):
    env = _embedded(tmp_path)
    sec = ClientSecurity.from_env(env, bootstrap="127.0.0.1:9092")
    assert sec.password is not None and sec.password.get_secret_value() == "a-pw" and "a-pw" not in repr(sec)
    assert (sec.protocol, sec.username, sec.cafile) == ("SASL_SSL", "admin", str(tmp_path / "ca.pem"))
    as_tax = ClientSecurity.from_env({**env, "KAFKA_SASL_USERNAME": "tax"}, bootstrap="127.0.0.1:9092")
    assert as_tax.username == "tax" and as_tax.password is not None and as_tax.password.get_secret_value() == "t-pw"
    with pytest.raises(SecurityConfigError, match="mallory"):
        ClientSecurity.from_env({**env, "KAFKA_SASL_USERNAME": "mallory"}, bootstrap="127.0.0.1:9092")


def test_the_embedded_credentials_apply_only_to_that_broker_and_only_without_settings(tmp_path):
    env = _embedded(tmp_path)
    assert ClientSecurity.from_env(env, bootstrap="kafka.bureau:9093").protocol == "PLAINTEXT"
    assert ClientSecurity.from_env({**env, "KAFKA_BOOTSTRAP_SERVERS": "kafka.bureau:9093"}).protocol == "PLAINTEXT"
    explicit = ClientSecurity.from_env({**env, **SASL}, bootstrap="127.0.0.1:9092")
    assert explicit.username == "civil-affairs"  # KAFKA_SECURITY_PROTOCOL set: the file is not read


def test_the_settings_hold_the_security_variables_with_the_password_a_secret(monkeypatch):
    from streams.settings import Settings

    for name, value in SASL.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.kafka.sasl_username == SASL["KAFKA_SASL_USERNAME"]
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == SASL["KAFKA_SASL_PASSWORD"]
    assert SASL["KAFKA_SASL_PASSWORD"] not in repr(settings) and SASL["KAFKA_SASL_PASSWORD"] not in str(settings)
    assert ClientSecurity.from_settings(settings.kafka).username == SASL["KAFKA_SASL_USERNAME"]
