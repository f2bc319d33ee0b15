"""Trying to break in (issue #13): a real broker started by ``zhucan kafka up --secure``'s code
(SASL_SSL, SCRAM-SHA-512, TLS from a keytool CA, StandardAuthorizer with no ACL = no access),
the ACLs of ``deploy/acl.yaml`` applied, and each party as its own principal.

Every refusal asserted is Kafka's own: TopicAuthorizationFailedError / GroupAuthorizationFailedError
from the broker, or a connection that never gets through authentication (the broker's log says why).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import GroupAuthorizationFailedError, KafkaError, TopicAuthorizationFailedError
from kafka.structs import TopicPartition

from connectors.dev.localkafka import LocalKafka, free_port
from connectors.kafka_io import read_to_end
from connectors.ops import ledger
from connectors.ops.cli import main
from streams.kafka.acl import apply_acls, grants, load_acl_file
from streams.kafka.security import kafka_python_config
from tests.fixtures import event, new_id, payment
from tests.integration.fixtures import Stack, full_ids, wait_for_group

# One process of `make test` runs this module: its secured broker is started once.
pytestmark = pytest.mark.xdist_group("test_security")


@pytest.fixture(scope="module")
def broker():
    home = Path(tempfile.mkdtemp(prefix="zhucan-test-secure-"))
    b = LocalKafka(home=home, port=free_port(), controller_port=free_port(), heap="512m", secure=True)
    b.start()
    try:
        yield b
    finally:
        b.stop(wipe=True)


def principal_env(broker: LocalKafka, user: str, password: str | None = None) -> dict[str, str]:
    creds = broker.credentials()
    return {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD": password or creds["users"][user], "KAFKA_SSL_CAFILE": creds["cafile"]}


@contextlib.contextmanager
def as_user(env: dict[str, str]) -> Iterator[None]:
    """This process's Kafka clients built inside speak as ``env`` says (the way every zhucan
    command reads it: streams/kafka/security.py)."""
    names = ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CAFILE",
             "KAFKA_SASL_PASSWORD_FILE")
    saved = {n: os.environ.get(n) for n in names}
    for n in names:
        os.environ.pop(n, None)
    os.environ.update(env)
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


@pytest.fixture
def sstack(broker, tmp_path):
    """A deployment on the secured broker: topics created and ACLs applied by admin."""
    with as_user(principal_env(broker, "admin")):
        s = Stack(broker.bootstrap, tmp_path)
        wanted = grants(load_acl_file(), s.topics, s.settings.departments, s.settings.app_id)
        first = apply_acls(broker.bootstrap, wanted)
        again = apply_acls(broker.bootstrap, wanted)
    assert first.add and not again.add and not again.remove, "acl apply is not idempotent"
    yield s
    s.close()


def write(broker: LocalKafka, user: str, topic: str, env: dict[str, str] | None = None) -> None:
    # Not idempotent: a principal that may write no topic at all (finance) would be refused its
    # producer id (ClusterAuthorizationFailed) before the topic's own ACL is asked. ``env``: the
    # user's connection settings when not the broker's first credentials (a rotated password).
    with as_user(env or principal_env(broker, user)):
        p = KafkaProducer(**kafka_python_config(broker.bootstrap), acks="all", enable_idempotence=False,
                          max_block_ms=15000)
    try:
        p.send(topic, key=b"probe", value=b"probe").get(timeout=30)
    finally:
        p.close()


def read(broker: LocalKafka, user: str, topic: str, group: str | None = None) -> None:
    """Offsets (needs DESCRIBE), then a fetch from offset 0 (needs READ), then with ``group`` (the
    deployment's prefix put in front, as zhucan's clients do) a commit (needs the group)."""
    prefix = topic[:topic.index(".") + 1]  # the stack's t<run>. prefix
    with as_user(principal_env(broker, user)):
        c = KafkaConsumer(**kafka_python_config(broker.bootstrap), group_id=group and prefix + group,
                          enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        c.beginning_offsets([tp])
        c.assign([tp])
        c.seek(tp, 0)
        for _ in range(3):
            c.poll(timeout_ms=500)
        if group:
            c.commit()
    finally:
        c.close()


def assert_refused(refused: list[tuple[str, Callable[[], None]]]) -> None:
    """Each attempt is refused by the topic's ACL (named by ``what`` when it is not)."""
    for what, attempt in refused:
        with pytest.raises(TopicAuthorizationFailedError):
            attempt()
            pytest.fail(f"allowed: {what}")


def test_each_principal_may_do_its_own_part_and_nothing_else(broker, sstack):
    t = sstack.topics
    civil, veterans = t.identity["CIVIL_AFFAIRS"], t.identity["VETERANS"]
    write(broker, "civil-affairs", civil)
    read(broker, "civil-affairs", t.rejected_of["CIVIL_AFFAIRS"], group="civil-affairs-inbox")
    write(broker, "tax", t.payment_status)
    read(broker, "tax", t.fee_standard, group="tax-fees")
    read(broker, "finance", t.settlement, group="finance-settle")
    write(broker, "operator", t.control)
    read(broker, "operator", t.fee_standard)

    refused = [
        ("a department writing another's identity topic", lambda: write(broker, "civil-affairs", veterans)),
        ("a department reading fee-standard.v1", lambda: read(broker, "civil-affairs", t.fee_standard)),
        ("a department reading another's rejections",
         lambda: read(broker, "civil-affairs", t.rejected_of["VETERANS"])),
        ("a department reading every department's rejections", lambda: read(broker, "veterans", t.rejected)),
        ("tax writing an identity topic", lambda: write(broker, "tax", civil)),
        ("tax writing control.v1", lambda: write(broker, "tax", t.control)),
        ("tax reading the worker's changelog", lambda: read(broker, "tax", t.person_changelog)),
        ("finance writing settlement.v1", lambda: write(broker, "finance", t.settlement)),
        ("other funders reading fee-standard.v1", lambda: read(broker, "other-funders", t.fee_standard)),
        ("an operator writing an identity topic", lambda: write(broker, "operator", civil)),
        ("the worker writing control.v1", lambda: write(broker, "zhucan-worker", t.control)),
        ("the worker writing payment-status.v1", lambda: write(broker, "zhucan-worker", t.payment_status)),
    ]
    assert_refused(refused)
    with pytest.raises(GroupAuthorizationFailedError):  # groups are per principal, by prefix
        read(broker, "civil-affairs", t.rejected_of["CIVIL_AFFAIRS"], group="tax-fees")


@pytest.mark.parametrize("how", ["no credentials (PLAINTEXT)", "TLS but no SASL login", "a wrong password",
                                 "an unknown user"])
def test_a_client_without_valid_credentials_gets_nothing(broker, sstack, how):
    creds = broker.credentials()
    env = {"no credentials (PLAINTEXT)": {"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
           "TLS but no SASL login": {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": creds["cafile"]},
           "a wrong password": principal_env(broker, "tax", password="not-the-password"),
           "an unknown user": {**principal_env(broker, "tax"), "KAFKA_SASL_USERNAME": "mallory"}}[how]
    log_before = broker.log_file.stat().st_size
    with as_user(env), pytest.raises(KafkaError):
        p = KafkaProducer(**kafka_python_config(broker.bootstrap), bootstrap_timeout_ms=6000, max_block_ms=6000)
        try:
            p.send(sstack.topics.fee_standard, b"x").get(timeout=10)
        finally:
            p.close()
    time.sleep(0.5)
    said = broker.log_file.read_bytes()[log_before:].decode(errors="replace")
    # the broker itself turned the connection away, and says why
    assert "Failed authentication with /127.0.0.1" in said, said[-2000:]


def test_the_whole_spine_runs_with_each_party_as_its_own_principal(broker, sstack, tmp_path):
    password_file = tmp_path / "worker.password"
    password_file.write_text(broker.credentials()["users"]["zhucan-worker"] + "\n")
    password_file.chmod(0o600)
    worker_env = {**principal_env(broker, "zhucan-worker"), "KAFKA_SASL_PASSWORD": "",
                  "KAFKA_SASL_PASSWORD_FILE": str(password_file)}
    sstack.start_worker(**worker_env)
    with as_user(principal_env(broker, "operator")):
        wait_for_group(sstack)

    idn = new_id()
    with as_user(principal_env(broker, "civil-affairs")):  # the department sends its event
        p = KafkaProducer(**kafka_python_config(broker.bootstrap), acks="all", enable_idempotence=True)
        ev = event(idn, "MINIMUM_LIVING")
        p.send(sstack.topics.identity["CIVIL_AFFAIRS"], key=ev["event_id"].encode(),
               value=sstack.codec.encode("IdentityEvent", ev)).get(timeout=30)
        p.close()
    with as_user(principal_env(broker, "tax")):  # tax reads its fee standard and answers
        (fee,) = [v for k, v, _ in sstack.read(sstack.topics.fee_standard, "FeeStandard", timeout_s=120,
                                                until=lambda rs: any(k == sstack.key(idn) for k, _, _ in rs))
                  if k == sstack.key(idn)]
        p = KafkaProducer(**kafka_python_config(broker.bootstrap), acks="all", enable_idempotence=True)
        ack = payment(idn, fee["insurance_year"], fee["version"], "PAID", fee["payable_fen"])
        p.send(sstack.topics.payment_status, key=ack["ack_id"].encode(),
               value=sstack.codec.encode("PaymentStatus", ack)).get(timeout=30)
        p.close()
    with as_user(principal_env(broker, "operator")):  # the bureau's operator sees the person enrolled
        rows = ledger.coverage(sstack.settings, year=fee["insurance_year"])
        assert sum(r.enrolled for r in rows) == 1 and sum(r.live for r in rows) == 1
        dead = read_to_end(broker.bootstrap, sstack.topics.dead_letter, timeout_s=30)
    assert dead == [], "the worker dead-lettered something on the secured path"
    assert sstack.worker.poll() is None, "the worker died"
    assert "AuthorizationFailed" not in sstack.worker_log(), sstack.worker_log()[-3000:]
    assert "differs from the spec" not in sstack.worker_log()  # it may see (not read) every topic it checks

    # no full ID number in any record key of any topic, nor in the worker's metrics
    with as_user(principal_env(broker, "admin")):
        for spec in sstack.topics.specs:
            for rec in read_to_end(broker.bootstrap, sstack.topics.name(spec), timeout_s=30):
                assert not full_ids((rec.key or b"").decode(errors="replace")), (spec.name, rec.key)
    match = re.findall(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", sstack.worker_log())
    assert match, "the worker's metrics endpoint is not in its log"
    assert not full_ids(urllib.request.urlopen(match[-1], timeout=5).read().decode())


def test_embedded_credentials_are_found_without_any_setting(broker, sstack, monkeypatch):
    """`zhucan kafka up --secure` then any zhucan command: the credentials file (0600) is found
    through ZHUCAN_KAFKA_DIR, as admin or as KAFKA_SASL_USERNAME says."""
    assert broker.credentials_file.stat().st_mode & 0o077 == 0
    assert all(f.stat().st_mode & 0o077 == 0 for f in broker.tls_dir.iterdir())
    assert broker.config_file.stat().st_mode & 0o077 == 0  # it holds the keystore's password
    monkeypatch.setenv("ZHUCAN_KAFKA_DIR", str(broker.home))
    with as_user({}):
        assert kafka_python_config(broker.bootstrap)["sasl_plain_username"] == "admin"
        monkeypatch.setenv("KAFKA_SASL_USERNAME", "tax")
        c = KafkaConsumer(**kafka_python_config(broker.bootstrap))
        try:
            assert sstack.topics.fee_standard in c.topics()
            assert sstack.topics.identity["CIVIL_AFFAIRS"] not in c.topics()  # tax cannot even see it
        finally:
            c.close()
    data = json.loads(broker.credentials_file.read_text())
    assert set(data["users"]) >= {"admin", "zhucan-worker", "tax", "civil-affairs", "operator"}


def test_the_worker_refuses_the_development_secret_on_a_secured_cluster(broker, sstack):
    sstack.start_worker(**principal_env(broker, "zhucan-worker"),
                        ZHUCAN_KEY_SECRET="zhucan-development-secret-do-not-use-in-production")
    assert sstack.worker.wait(timeout=60) == 2
    assert "ZHUCAN_KEY_SECRET is the development secret" in sstack.worker_log()
    sstack.worker = None


@pytest.mark.parametrize("secret", ["", " ", "x", "zhucan-development-secret-do-not-use-in-production ",
                                    "change-me-change-me-change-me-change-me", "a" * 64])
def test_the_worker_refuses_a_secret_not_worth_the_name_on_a_secured_cluster(broker, sstack, secret):
    """Issue #20 (6): only the exact development secret was refused; an empty one, a space, "x"
    or the development secret plus a space started without a word."""
    sstack.start_worker(**principal_env(broker, "zhucan-worker"), ZHUCAN_KEY_SECRET=secret)
    assert sstack.worker.wait(timeout=60) == 2
    assert "ZHUCAN_KEY_SECRET is not worth the name" in sstack.worker_log()
    sstack.worker = None


def test_a_rotated_password_replaces_the_old_one(broker, sstack, tmp_path, monkeypatch):
    from connectors.ops.cli import main

    sstack.cli_env(monkeypatch)  # the command talks to this broker
    old = principal_env(broker, "finance")
    new_file = tmp_path / "finance.password"
    with as_user(principal_env(broker, "admin")), command_lines() as seen:
        assert main(["acl", "passwd", "finance", "--password-file", str(new_file)]) == 0
    assert new_file.stat().st_mode & 0o077 == 0
    # issue #20 (2): the new password (and admin's, which made the change) on no command line
    assert seen and not [c for c in seen if new_file.read_text().strip() in c
                         or principal_env(broker, "admin")["KAFKA_SASL_PASSWORD"] in c]
    new = {**old, "KAFKA_SASL_PASSWORD": "", "KAFKA_SASL_PASSWORD_FILE": str(new_file)}
    with as_user(new):
        c = KafkaConsumer(**kafka_python_config(broker.bootstrap))
        try:
            assert sstack.topics.settlement in c.topics()
        finally:
            c.close()
    with as_user(old), pytest.raises(KafkaError):
        KafkaConsumer(**kafka_python_config(broker.bootstrap), bootstrap_timeout_ms=6000).topics()


# ---- issue #20: break-ins around the ACLs --------------------------------------------------

@contextlib.contextmanager
def command_lines() -> Iterator[set[str]]:
    """Every process's command line seen while the block runs (issue #20 (2)): what any local
    account can read in /proc/<pid>/cmdline. The storage format's --add-scram and keytool's
    -storepass used to put every password there."""
    import threading

    seen: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                with contextlib.suppress(OSError):
                    seen.add(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            time.sleep(0.05)  # keytool and the storage format are JVMs: each lives for a second or more

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join()
        seen.discard("")


def _on_the_controller(broker: LocalKafka, tmp_path: Path, client: dict[str, str], *args: str):
    """Kafka's own ConfigCommand sent to the controller listener (``--bootstrap-controller``), as
    the attacker of issue #20 did, with ``client`` as its connection settings."""
    config = tmp_path / "client.properties"
    config.write_text("".join(f"{k}={v}\n" for k, v in {"request.timeout.ms": "3000",
                                                          "default.api.timeout.ms": "4000", **client}.items()))
    import subprocess

    return subprocess.run([broker._java(), "-cp", broker._classpath(), "kafka.admin.ConfigCommand",
                           "--bootstrap-controller", f"127.0.0.1:{broker.controller_port}",
                           "--command-config", str(config), *args], capture_output=True, text=True, timeout=90)


@pytest.mark.parametrize("client", ["no TLS (PLAINTEXT)", "TLS without a client certificate"])
def test_an_unauthenticated_local_client_gets_nothing_from_the_controller(broker, sstack, tmp_path, client):
    """Issue #20 (1): the controller listener was PLAINTEXT with ANONYMOUS a super user: any local
    account created a SCRAM user there and granted it everything. Now it is mutual TLS."""
    settings = {"no TLS (PLAINTEXT)": {"security.protocol": "PLAINTEXT"},
                "TLS without a client certificate": {"security.protocol": "SSL", "ssl.truststore.type": "PEM",
                                                     "ssl.truststore.location": broker.credentials()["cafile"]}}[client]
    made = _on_the_controller(broker, tmp_path, settings, "--alter", "--entity-type", "users", "--entity-name",
                              "mallory", "--add-config", "SCRAM-SHA-512=[iterations=8192,password=mallory-pw]")
    assert made.returncode != 0, made.stdout + made.stderr
    described = _on_the_controller(broker, tmp_path, settings, "--describe", "--entity-type", "users")
    assert described.returncode != 0 and "admin" not in described.stdout, described.stdout
    gone = _on_the_controller(broker, tmp_path, settings, "--alter", "--entity-type", "topics", "--entity-name",
                              sstack.topics.fee_standard, "--add-config", "retention.ms=1")
    assert gone.returncode != 0
    with as_user({**principal_env(broker, "tax"), "KAFKA_SASL_USERNAME": "mallory",
                  "KAFKA_SASL_PASSWORD": "mallory-pw"}), pytest.raises(KafkaError):
        KafkaConsumer(**kafka_python_config(broker.bootstrap), bootstrap_timeout_ms=6000).topics()
    props = (broker.home / "server.properties").read_text()
    assert "ANONYMOUS" not in props and "CONTROLLER:SSL" in props


@pytest.mark.long
def test_one_department_cannot_cancel_anothers_record_nor_mark_its_file_imported(broker, sstack, tmp_path):
    """Issue #20 (5): disability sent first the event id that civil affairs' 退出 row would get
    (import ids are computable from a row); the exit was taken for a redelivery and the person
    kept the subsidy the same file withdrew from a control person. And any department could mark
    another's file as imported in the shared ledger."""
    import csv

    from connectors.importer import _header_map as header_map
    from connectors.importer import event_id_for, row_to_event, run_import

    sstack.start_worker(**principal_env(broker, "zhucan-worker"))
    with as_user(principal_env(broker, "operator")):
        wait_for_group(sstack)
    target, control = new_id(), new_id()
    header = ["姓名", "身份证号", "身份类别", "认定地区划代码", "生效日期", "变动类型", "学生儿童"]
    rows = [[n, idn, "低保对象", "410102", day, change, "否"] for idn, n in ((target, "甲"), (control, "乙"))
            for day, change in (("2024-06-01", "认定"), ("2024-12-01", "退出"))]
    path = tmp_path / "民政-2024-12.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    # Import ids are keyed with the department's own secret (its password here): another department
    # cannot compute them from a row. The attacker below is given the id anyway (an insider), to
    # show that a colliding id from another department is still decided on its own.
    civil_key = broker.credentials()["users"]["civil-affairs"].encode()
    exit_row = row_to_event("CIVIL_AFFAIRS", rows[1], header_map(header), dt.datetime.now(dt.UTC))
    exit_id = event_id_for("CIVIL_AFFAIRS", exit_row, civil_key)
    assert exit_id != event_id_for("CIVIL_AFFAIRS", exit_row)  # not the plain hash of the row
    with as_user(principal_env(broker, "disability")):  # the colliding record, sent first
        p = KafkaProducer(**kafka_python_config(broker.bootstrap), acks="all", enable_idempotence=True)
        collide = event(target, "GENERAL_DISABILITY", event_id=exit_id, source="DISABILITY")
        p.send(sstack.topics.identity["DISABILITY"], key=b"x",
               value=sstack.codec.encode("IdentityEvent", collide)).get(timeout=30)
        p.close()
        with pytest.raises(TopicAuthorizationFailedError):  # nor can it touch civil affairs' import ledger
            write(broker, "disability", sstack.topics.imports_of["CIVIL_AFFAIRS"])
    with as_user(principal_env(broker, "civil-affairs")):
        result = run_import(sstack.settings, "civil-affairs", path, quiet=True)
    assert result.published == 4 and not result.already_imported
    # (the importer keys rows by event id: an entry and its exit may reach the worker in either
    # order; exit first, no standard is ever issued; entry first, it is issued and withdrawn)
    with as_user(principal_env(broker, "civil-affairs")):  # a marker with only an entry, sent last
        p = KafkaProducer(**kafka_python_config(broker.bootstrap), acks="all", enable_idempotence=True)
        marker = new_id()
        p.send(sstack.topics.identity["CIVIL_AFFAIRS"], key=b"m",
               value=sstack.codec.encode("IdentityEvent", event(marker, "MINIMUM_LIVING"))).get(timeout=30)
        p.close()
    with as_user(principal_env(broker, "admin")):
        sstack.read(sstack.topics.fee_standard, "FeeStandard", timeout_s=120,
                    until=lambda rs: any(k == sstack.key(marker) for k, _, _ in rs))
        time.sleep(3)
        recs = sstack.read(sstack.topics.fee_standard, "FeeStandard", timeout_s=30, idle_s=2.0)
    for idn in (target, control):  # no one keeps the subsidy the file withdrew
        modes = [v["payment_mode"] for k, v, _ in sorted(recs, key=lambda r: r[1]["version"]) if k == sstack.key(idn)]
        assert modes in ([], ["DIFFERENCE", "WITHDRAWN"]), (idn == target, modes)


def test_the_brokers_and_the_workers_files_are_their_owners_alone(broker, sstack, tmp_path):
    """Issue #20 (3): the broker's data directory was 0755 with 0644 segments, and the worker's
    RocksDB directory world-readable: any local account could grep ID numbers out of them."""
    sstack.start_worker(**principal_env(broker, "zhucan-worker"))
    with as_user(principal_env(broker, "civil-affairs")):
        p = KafkaProducer(**kafka_python_config(broker.bootstrap), acks="all", enable_idempotence=True)
        p.send(sstack.topics.identity["CIVIL_AFFAIRS"], key=b"x",
               value=sstack.codec.encode("IdentityEvent", event(new_id(), "MINIMUM_LIVING"))).get(timeout=30)
        p.close()
    with as_user(principal_env(broker, "admin")):
        sstack.read(sstack.topics.fee_standard, "FeeStandard", timeout_s=120, until=lambda rs: len(rs) >= 1)
    sstack.stop_worker()  # (RocksDB and the segments written)
    for top in (broker.home, sstack.settings.data_dir):
        assert top.stat().st_mode & 0o077 == 0, top
        for path in top.rglob("*"):
            if not path.is_symlink():
                assert path.stat().st_mode & 0o077 == 0, f"{path} is mode {path.stat().st_mode & 0o777:o}"
    # a data directory others can read is refused, with the command that fixes it
    shared = tmp_path / "shared-data"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    sstack.start_worker(**principal_env(broker, "zhucan-worker"), ZHUCAN_DATA_DIR=str(shared))
    assert sstack.worker.wait(timeout=60) == 2
    assert f"chmod -R go-rwx {shared}" in sstack.worker_log()
    sstack.worker = None


def test_acl_apply_leaves_the_files_principals_exactly_what_the_file_grants(broker, sstack):
    """Issue #20 (4): `acl apply` never removed a cluster-level ALLOW of a principal of the file
    (it listed it as "a DENY or a host"): one that once got ALL on the cluster kept it and granted
    itself fee-standard.v1. Now every ALLOW the file does not grant goes, of any resource and
    host; a DENY stays, listed."""
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        KafkaAdminClient,
        ResourcePattern,
        ResourceType,
    )

    def acl(resource, name, operation, permission=ACLPermissionType.ALLOW, host="*"):
        return ACL(principal="User:tax", host=host, operation=operation, permission_type=permission,
                   resource_pattern=ResourcePattern(resource, name, ACLResourcePatternType.LITERAL))

    planted = [acl(ResourceType.CLUSTER, "kafka-cluster", ACLOperation.ALL),
               acl(ResourceType.TOPIC, sstack.topics.fee_standard, ACLOperation.WRITE, host="127.0.0.1"),
               acl(ResourceType.TRANSACTIONAL_ID, "tax-tx", ACLOperation.WRITE)]
    deny = acl(ResourceType.TOPIC, sstack.topics.review, ACLOperation.READ, ACLPermissionType.DENY)
    with as_user(principal_env(broker, "admin")):
        admin = KafkaAdminClient(**kafka_python_config(broker.bootstrap))
        try:
            assert not admin.create_acls([*planted, deny])["failed"]
        finally:
            admin.close()
        wanted = grants(load_acl_file(), sstack.topics, sstack.settings.departments, sstack.settings.app_id)
        repair = apply_acls(broker.bootstrap, wanted)
    assert len([b for b in repair.remove if b.principal == "User:tax"]) == 3, repair.remove
    assert any("DENY" in u and "User:tax" in u for u in repair.untouched), repair.untouched
    with pytest.raises(TopicAuthorizationFailedError):  # the planted cluster ALL is gone
        write(broker, "tax", sstack.topics.fee_standard)
    with as_user(principal_env(broker, "admin")):
        again = apply_acls(broker.bootstrap, wanted)
    assert not again.add and not again.remove


def test_a_refused_replay_says_so_and_fails(broker, sstack, monkeypatch, capsys):
    """Issue #20 (9): `zhucan dlq replay` as operator printed "replayed 1" and exited 0 when the
    broker refused the write (the origin is a department's topic)."""
    from connectors.ops.cli import main
    from connectors.ops.dlq import dead_letters

    sstack.start_worker(**principal_env(broker, "zhucan-worker"))
    with as_user(principal_env(broker, "civil-affairs")):
        p = KafkaProducer(**kafka_python_config(broker.bootstrap), acks="all", enable_idempotence=True)
        p.send(sstack.topics.identity["CIVIL_AFFAIRS"], key=b"k", value=b"\xc3\x01 not avro").get(timeout=30)
        p.close()
    sstack.cli_env(monkeypatch)
    with as_user(principal_env(broker, "operator")):
        read_to_end(broker.bootstrap, sstack.topics.dead_letter, timeout_s=60)
        deadline = time.monotonic() + 60
        letters = []
        while not letters and time.monotonic() < deadline:
            letters = dead_letters(sstack.settings)
            time.sleep(0.5)
        assert letters, "no dead letter"
        assert main(["dlq", "replay", letters[0].coordinate]) == 1
    out = capsys.readouterr()
    assert "replayed 0" in out.out and f"NOT replayed {letters[0].coordinate}" in out.err
    with as_user(principal_env(broker, "admin")):  # it stays replayable, by a party that may write there
        assert main(["dlq", "replay", letters[0].coordinate]) == 0
    assert "replayed 1" in capsys.readouterr().out


@pytest.mark.long
def test_a_secured_cluster_of_three_nodes(tmp_path):
    """Issue #20 (8): `kafka up --secure --nodes 3`: SASL_SSL clients, SCRAM between brokers,
    mutual TLS between brokers and controllers, StandardAuthorizer; no controller answers an
    unauthenticated client, and a client without credentials gets nothing. And (2): while it is
    provisioned (keytool, the storage formats of the three nodes) no password is on any process's
    command line, which every local account can read in /proc/<pid>/cmdline (the storage format's
    --add-scram and keytool's -storepass used to put every one there)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    from connectors.dev.localkafka import LocalCluster

    cluster = LocalCluster(home=tmp_path / "c3", ports=[free_port() for _ in range(3)],
                           controller_ports=[free_port() for _ in range(3)], heap="384m", secure=True)
    try:
        with command_lines() as seen:  # every process's command line while the cluster is provisioned
            cluster.start()
        passwords = [*cluster.credentials()["users"].values(),
                     (cluster.nodes[0].tls_dir / "store.password").read_text().strip()]
        assert any("format.args" in c for c in seen) and any("keytool" in c for c in seen), "nothing watched"
        assert not [c for c in seen if any(p in c for p in passwords)], "a command line held a password"
        for node in cluster.nodes:
            props = (node.home / "server.properties").read_text()
            assert "CONTROLLER:SSL" in props and "PLAINTEXT" not in props and "ANONYMOUS" not in props
        tried = _on_the_controller(cluster.nodes[1], tmp_path, {"security.protocol": "PLAINTEXT"}, "--describe",
                                   "--entity-type", "users")
        assert tried.returncode != 0 and "admin" not in tried.stdout
        admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, **cluster.nodes[0].client_config())
        try:
            admin.create_topics([NewTopic("secured.three", 3, 3)])
        finally:
            admin.close()
        p = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all", **cluster.nodes[0].client_config())
        p.send("secured.three", b"x").get(timeout=30)
        p.close()
        with pytest.raises(KafkaError):
            plain = KafkaProducer(bootstrap_servers=cluster.bootstrap, max_block_ms=6000)
            try:
                plain.send("secured.three", b"y").get(timeout=10)
            finally:
                plain.close()
    finally:
        cluster.stop(wipe=True)


def test_money_to_people_with_each_party_as_its_own_principal(broker, sstack, tmp_path, monkeypatch):
    """Issue #23: the county bureau sends a claim (on the topic, and in its claim file, with its
    own import ledger) and reads the decision; another funder reports its subsidy; finance and
    tax read the instructions; each only its own part."""
    from tests.integration.test_money_on_kafka import claim

    sstack.start_worker(**principal_env(broker, "zhucan-worker"))
    with as_user(principal_env(broker, "operator")):
        wait_for_group(sstack)
    t = sstack.topics
    away, funded = new_id(), new_id()
    with as_user(principal_env(broker, "civil-affairs")):
        p = KafkaProducer(**kafka_python_config(broker.bootstrap), acks="all", enable_idempotence=True)
        for idn in (away, funded):
            ev = event(idn, "MINIMUM_LIVING")
            p.send(t.identity["CIVIL_AFFAIRS"], value=sstack.codec.encode("IdentityEvent", ev)).get(timeout=30)
        p.close()
    with as_user(principal_env(broker, "other-funders")):
        p = KafkaProducer(**kafka_python_config(broker.bootstrap), acks="all", enable_idempotence=True)
        p.send(t.other_channel, value=sstack.codec.encode("OtherChannelSubsidy", {
            "record_id": "charity-9", "funder": "慈善总会", "id_number": funded, "insurance_year": 2025,
            "amount_fen": 10000, "reported_at": dt.datetime(2024, 11, 1, tzinfo=dt.UTC)})).get(timeout=30)
        p.close()
    with as_user(principal_env(broker, "county-bureau")):
        p = KafkaProducer(**kafka_python_config(broker.bootstrap), acks="all", enable_idempotence=True)
        p.send(t.claims, value=sstack.codec.encode("SubsidyClaim", claim("sec-1", away, "CROSS_REGION_ENROLMENT",
                                                                         2025, 40000))).get(timeout=30)
        p.close()
        sheet = tmp_path / "claims.csv"
        sheet.write_text("申请类型,姓名,身份证号,参保年度,参保地区划代码,已缴金额(元),缴费日期,缴费凭证\n"
                         f"异地参保,测试,{funded},2025,440106,400,2024-12-01,粤税-2\n", encoding="utf-8")
        sstack.cli_env(monkeypatch)
        assert main(["import", "--claims", str(sheet)]) == 0
        decided = sstack.read(t.claim_decisions, "ClaimDecision", timeout_s=120, until=lambda rs: len(rs) >= 2)
    outcomes = sorted((d["outcome"], d["reasons"]) for _, d, _ in decided)
    assert outcomes == [("APPROVED", []), ("REFUSED", ["ALREADY_SUBSIDISED"])]
    # finance's password may have been rotated by an earlier test of this module's broker: give it
    # a known one first (as `zhucan acl passwd` does for an operator)
    finance_file = tmp_path / "finance.password"
    with as_user(principal_env(broker, "admin")):
        assert main(["acl", "passwd", "finance", "--password-file", str(finance_file)]) == 0
    finance = {**principal_env(broker, "finance"), "KAFKA_SASL_PASSWORD": "",
               "KAFKA_SASL_PASSWORD_FILE": str(finance_file)}
    for party in (finance, principal_env(broker, "tax")):
        with as_user(party):
            (ins,) = [v for _, v, _ in sstack.read(t.instructions, "PaymentInstruction", timeout_s=60,
                                                   until=lambda rs: len(rs) >= 1)]
            assert (ins["cause_id"], ins["amount_fen"]) == ("sec-1", 28000)
    refused = [
        ("a county bureau writing an instruction", lambda: write(broker, "county-bureau", t.instructions)),
        ("a county bureau reading the instructions", lambda: read(broker, "county-bureau", t.instructions)),
        ("a county bureau writing a decision", lambda: write(broker, "county-bureau", t.claim_decisions)),
        ("other funders reading the decisions", lambda: read(broker, "other-funders", t.claim_decisions)),
        ("other funders writing a claim", lambda: write(broker, "other-funders", t.claims)),
        ("finance writing an instruction", lambda: write(broker, "finance", t.instructions, finance)),
        ("tax writing a claim", lambda: write(broker, "tax", t.claims)),
        ("a department reading the claims", lambda: read(broker, "civil-affairs", t.claims)),
        ("the worker writing a claim", lambda: write(broker, "zhucan-worker", t.claims)),
    ]
    assert_refused(refused)
    assert "AuthorizationFailed" not in sstack.worker_log(), sstack.worker_log()[-3000:]
