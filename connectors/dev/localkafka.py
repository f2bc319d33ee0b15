"""The embedded local broker: Apache Kafka (KRaft) from Maven Central jars, one node or a cluster.

No Docker needed: Maven fetches the jars once into the user's cache directory, the
storage is formatted once, and the broker runs on 127.0.0.1 only, keeping its data
across restarts until ``down --wipe``. ``KAFKA_HOME`` (an unpacked distribution)
is used instead of Maven when set. ``LocalCluster`` runs N combined broker/controller nodes
(an N-voter quorum) on loopback, each with its own data directory, for replication tests.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.kafka.security import CREDENTIALS_FILE, ClientSecurity, embedded_home

KAFKA_VERSION = "3.9.1"
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka"


class LocalKafkaError(RuntimeError):
    """The local broker cannot be provisioned or started; the message says what to do."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zhucan"


def default_home() -> Path:
    return embedded_home()


def free_port() -> int:
    """Ask the OS for a free port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise LocalKafkaError(f"`{tool}` is not on PATH. {hint}")
    return path


def _say(msg: str) -> None:
    print(f"[zhucan kafka] {msg}", file=sys.stderr, flush=True)


BROKER_PRINCIPAL = "CN=127.0.0.1"  # the broker certificate's subject: its principal on the controller listener


def _argfile_quote(arg: str) -> str:
    """One argument of a java @argument file: quoted, with the file format's escapes."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jars_dir() -> Path:
    """The broker's classpath directory, provisioned from Maven Central on first use."""
    kafka_home = os.environ.get("KAFKA_HOME")
    if kafka_home:
        libs = Path(kafka_home) / "libs"
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise LocalKafkaError(f"KAFKA_HOME={kafka_home} has no libs/kafka_2.13-*.jar: not a Kafka distribution")
        return libs
    libs = cache_dir() / f"kafka-{KAFKA_VERSION}" / "libs"
    if (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        return libs
    mvn = _require(
        "mvn",
        "Install Maven (Debian/Ubuntu: `apt-get install maven`), or set KAFKA_HOME to an unpacked Kafka "
        "distribution, or point KAFKA_BOOTSTRAP_SERVERS at a running broker.",
    )
    _say(f"downloading Apache Kafka {KAFKA_VERSION} jars from Maven Central (first time only, about 50 MB)...")
    staging = libs.parent / f"libs.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    cmd = [mvn, "-B", "-q", "-f", str(DEPLOY_DIR / "pom.xml"), "dependency:copy-dependencies",
           f"-DoutputDirectory={staging}", "-DincludeScope=runtime", f"-Dkafka.version={KAFKA_VERSION}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise LocalKafkaError("Maven could not fetch the Kafka jars:\n  " + "\n  ".join(tail))
    try:
        staging.rename(libs)
    except OSError:  # another process won the race
        shutil.rmtree(staging, ignore_errors=True)
    _say(f"cached {len(list(libs.glob('*.jar')))} jars in {libs}")
    return libs


@dataclass
class LocalKafka:
    home: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "768m"
    node_id: int = 1
    voters: str = ""  # controller.quorum.voters; default: this node alone
    replication: int = 1  # of Kafka's own topics (consumer offsets, transactions)
    cluster_id: str = ""  # the cluster's id, shared by its nodes; default: a new one at format time
    # SASL_SSL (SCRAM-SHA-512 over TLS) with ACLs instead of PLAINTEXT (issue #13); fixed when the
    # storage is formatted (the SCRAM users are written then): a secured broker stays secured.
    secure: bool = False
    # Where the TLS files and the credentials live: this node's home, or (a node of a secured
    # cluster) the cluster's, shared by every node: one CA, one broker certificate for
    # 127.0.0.1, the same SCRAM users.
    secrets_home: Path | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def tls_dir(self) -> Path:
        return (self.secrets_home or self.home) / "tls"

    @property
    def credentials_file(self) -> Path:
        return (self.secrets_home or self.home) / CREDENTIALS_FILE

    @property
    def secured(self) -> bool:
        """Whether this broker runs secured: asked for, or formatted so before."""
        return self.secure or self.credentials_file.exists()

    def credentials(self) -> dict[str, Any]:
        return dict(json.loads(self.credentials_file.read_text(encoding="utf-8")))

    def client_config(self, user: str = "admin") -> dict[str, Any]:
        """kafka-python settings for this broker as ``user`` (PLAINTEXT when not secured)."""
        if not self.secured:
            return {}
        return ClientSecurity.from_credentials(self.credentials(), user).kafka_python()

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    def _java(self) -> str:
        java = _require(
            "java", "Install a Java 17 runtime (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`)."
        )
        return java

    def _classpath(self) -> str:
        return str(jars_dir() / "*")

    def _listener_lines(self) -> list[str]:
        if not self.secured:
            return [
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
            ]
        admin = self.credentials()["users"]["admin"]
        store = (self.tls_dir / "store.password").read_text().strip()
        return [
            # clients: SCRAM-SHA-512 over TLS. The controller listener: mutual TLS (KRaft cannot
            # use SCRAM there), so only a holder of a certificate of this cluster's CA is let in,
            # the broker's own (its principal, User:CN=127.0.0.1, is the super user it needs). An
            # unauthenticated local client gets nothing from it (issue #20).
            f"listeners=SASL_SSL://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{self.port}",
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL",
            "listener.name.controller.ssl.client.auth=required",
            "inter.broker.listener.name=SASL_SSL",
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            f'org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="{admin}";',
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={self.tls_dir / 'broker.p12'}",
            f"ssl.keystore.password={store}",
            f"ssl.key.password={store}",
            "ssl.truststore.type=PKCS12",
            f"ssl.truststore.location={self.tls_dir / 'truststore.p12'}",
            f"ssl.truststore.password={store}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            f"super.users=User:admin;User:{BROKER_PRINCIPAL}",
        ]

    def _private(self) -> None:
        """The broker's home, and its data with every ID number in it, readable by its owner only
        (issue #20: segments were 0644 under a 0755 directory): 0700 directories, 0600 files;
        the broker itself runs with umask 077, so what it writes later is private too."""
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.home.chmod(0o700)
        for root, dirs, files in os.walk(self.home):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o700)
            for name in files:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o600)

    def _write_config(self) -> None:
        self._private()
        self.config_file.touch(mode=0o600)
        self.config_file.chmod(0o600)  # a secured broker's file holds passwords
        self.config_file.write_text(
            "\n".join([
                "# Written by `zhucan kafka up`: a combined broker/controller on loopback.",
                "process.roles=broker,controller",
                f"node.id={self.node_id}",
                f"controller.quorum.voters={self.voters or f'{self.node_id}@127.0.0.1:{self.controller_port}'}",
                *self._listener_lines(),
                "controller.listener.names=CONTROLLER",
                f"log.dirs={self.data_dir}",
                "num.partitions=4",
                f"offsets.topic.replication.factor={self.replication}",
                "offsets.topic.num.partitions=8",
                f"transaction.state.log.replication.factor={self.replication}",
                f"transaction.state.log.min.isr={max(1, self.replication - 1)}",
                f"default.replication.factor={self.replication}",
                f"min.insync.replicas={max(1, self.replication - 1)}",
                # a replica that is behind rejoins the ISR quickly in tests that bounce brokers
                "replica.lag.time.max.ms=10000",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "log.retention.check.interval.ms=60000",
                "",
            ]),
            encoding="utf-8",
        )

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def answers(self, timeout: float = 1.0) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout):
                return True
        except OSError:
            return False

    def _format_once(self, java: str) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = self.cluster_id or new_cluster_id()
        args = ["-cp", self._classpath(), f"-Dlog4j.configuration=file:{DEPLOY_DIR / 'log4j.properties'}",
                # "=" form: a cluster id may start with "-", which would read as an option
                "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(self.config_file)]
        if self.secured:  # the SCRAM users exist from the first start (KIP-900)
            for user, password in self.credentials()["users"].items():
                args += ["--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"]
        # The arguments go in a java @argument file (0600, removed at once), never on the command
        # line: every local account can read /proc/<pid>/cmdline, and these hold every password.
        self.home.mkdir(parents=True, exist_ok=True)
        argfile = self.home / "format.args"
        argfile.touch(mode=0o600)
        argfile.chmod(0o600)
        argfile.write_text("\n".join(_argfile_quote(a) for a in args) + "\n", encoding="utf-8")
        try:
            proc = subprocess.run([java, f"@{argfile}"], capture_output=True, text=True, umask=0o077)
        finally:
            argfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise LocalKafkaError("formatting the storage failed:\n" + (proc.stdout + proc.stderr)[-2000:])

    def start(self, timeout: float = 90.0) -> None:
        """Start the broker (formatting it the first time) and wait until it answers."""
        proc = self.launch()
        if proc is not None:
            self.wait_ready(proc, timeout)

    def launch(self) -> subprocess.Popen[bytes] | None:
        """Start the broker's process (formatting it the first time); None if it already runs."""
        if self.secure and not self.credentials_file.exists() and (self.data_dir / "meta.properties").exists():
            raise LocalKafkaError(f"the broker in {self.home} was formatted without security; "
                                  "`zhucan kafka down --wipe` first (its data goes), then `zhucan kafka up --secure`")
        if self.pid() is not None:
            if self.answers():
                _say(f"already running (pid {self.pid()}) on {self.bootstrap}"
                     + (", secured" if self.secured else ""))
                return None
        elif self.answers():
            raise LocalKafkaError(f"port {self.port} on 127.0.0.1 is taken by another program")
        java = self._java()
        classpath = self._classpath()
        if self.secure and not self.credentials_file.exists():
            self._provision_security(java)
        self._write_config()
        self._format_once(java)
        cmd = [java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dlog4j.configuration=file:{DEPLOY_DIR / 'log4j.properties'}",
               "-cp", classpath, "kafka.Kafka", str(self.config_file)]
        for private in (self.log_file, self.pid_file):
            private.touch(mode=0o600)
            private.chmod(0o600)
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=self.home, umask=0o077)
        log.close()
        self.pid_file.write_text(str(proc.pid))
        return proc

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LocalKafkaError(f"the broker exited with code {proc.returncode}; last log lines:\n{self.log_tail()}")
            if self.answers() and self._ready():
                _say(f"Kafka {KAFKA_VERSION} is up on {self.bootstrap} (pid {proc.pid}, data in {self.data_dir})")
                return
            time.sleep(0.3)
        self.stop()
        raise LocalKafkaError(f"the broker did not answer within {timeout:.0f}s; last log lines:\n{self.log_tail()}")

    def _provision_security(self, java: str) -> None:
        """A CA and a broker certificate for 127.0.0.1 (the JDK's keytool), SCRAM users with
        generated passwords (one per principal of deploy/acl.yaml, and admin), all mode 0600."""
        from streams.domain.departments import DEPARTMENTS
        from streams.kafka.acl import load_acl_file, principals

        keytool = _require("keytool", "It comes with Java (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`, as deploy/ensure-system.sh does).")
        shutil.rmtree(self.tls_dir, ignore_errors=True)
        self.tls_dir.mkdir(parents=True, mode=0o700)
        store = secrets.token_hex(16)
        (self.tls_dir / "store.password").write_text(store)
        t = self.tls_dir

        # keytool reads the store password from its environment (-storepass:env), never from its
        # command line, which every local account can read in /proc/<pid>/cmdline
        env = {**os.environ, "ZHUCAN_STORE_PASSWORD": store}

        def run(*args: str) -> None:
            proc = subprocess.run([keytool, *args], capture_output=True, text=True, cwd=t, env=env)
            if proc.returncode != 0:
                raise LocalKafkaError(f"keytool {args[0]} failed: {(proc.stdout + proc.stderr).strip()[-800:]}")

        secret = "ZHUCAN_STORE_PASSWORD"
        pw = ["-storepass:env", secret, "-keypass:env", secret, "-storetype", "PKCS12"]
        run("-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "2048", "-validity", "3650",
            "-dname", "CN=zhucan local CA", "-ext", "bc:c", "-ext", "KU:c=keyCertSign,cRLSign",
            "-keystore", "ca.p12", *pw)
        run("-exportcert", "-rfc", "-alias", "ca", "-keystore", "ca.p12", "-storepass:env", secret, "-file", "ca.pem")
        run("-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048", "-validity", "3650",
            "-dname", "CN=127.0.0.1", "-keystore", "broker.p12", *pw)
        run("-certreq", "-alias", "broker", "-keystore", "broker.p12", "-storepass:env", secret, "-file", "broker.csr")
        run("-gencert", "-alias", "ca", "-keystore", "ca.p12", "-storepass:env", secret, "-infile", "broker.csr",
            "-outfile", "broker.pem", "-rfc", "-validity", "3650", "-ext", "SAN=ip:127.0.0.1,dns:localhost",
            "-ext", "KU:c=digitalSignature,keyEncipherment", "-ext", "EKU=serverAuth,clientAuth")
        run("-importcert", "-noprompt", "-alias", "ca", "-keystore", "broker.p12", "-storepass:env", secret,
            "-file", "ca.pem")
        run("-importcert", "-alias", "broker", "-keystore", "broker.p12", "-storepass:env", secret, "-file", "broker.pem")
        run("-importcert", "-noprompt", "-alias", "ca", "-keystore", "truststore.p12", "-storepass:env", secret,
            "-storetype", "PKCS12", "-file", "ca.pem")
        for f in t.iterdir():
            f.chmod(0o600)
        users = ["admin", *principals(load_acl_file(), DEPARTMENTS)]
        creds = {"bootstrap": self.bootstrap, "protocol": "SASL_SSL", "mechanism": "SCRAM-SHA-512",
                 "cafile": str(t / "ca.pem"), "default_user": "admin",
                 "users": {u: secrets.token_hex(16) for u in users}}
        self.credentials_file.touch(mode=0o600)
        self.credentials_file.chmod(0o600)
        self.credentials_file.write_text(json.dumps(creds, indent=2) + "\n", encoding="utf-8")
        _say(f"secured: TLS files in {t}, {len(users)} SCRAM users in {self.credentials_file} (mode 0600)")

    def _ready(self) -> bool:
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000, **self.client_config())
        except KafkaError:
            return False
        try:
            admin.list_topics()
            return True
        except KafkaError:
            return False
        finally:
            admin.close()

    def kill(self) -> None:
        """SIGKILL the broker (a crash: no controlled shutdown)."""
        pid = self.pid()
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.pid() is not None:
                _reap(pid)
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)

    def stop(self, wipe: bool = False, timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.pid() is not None:
                _reap(pid)
                time.sleep(0.2)
            if self.pid() is not None:
                self.kill()
            _say(f"stopped (pid {pid})")
        self.pid_file.unlink(missing_ok=True)
        if wipe:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            shutil.rmtree(self.tls_dir, ignore_errors=True)
            self.credentials_file.unlink(missing_ok=True)
            _say(f"wiped {self.data_dir}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def status(self) -> dict[str, object]:
        pid = self.pid()
        return {
            "running": pid is not None,
            "pid": pid,
            "bootstrap": self.bootstrap,
            "answers": self.answers(),
            "data_dir": str(self.data_dir),
            "formatted": (self.data_dir / "meta.properties").exists(),
            "secured": self.secured,
            "kafka_version": KAFKA_VERSION,
        }


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass
class LocalCluster:
    """N combined broker/controller nodes on loopback: node i (1..N) listens on ``ports[i-1]``
    and ``controller_ports[i-1]``, keeps its data in ``home/node-<i>``; the N controllers form
    the quorum, so a majority must be up. Kafka's own topics are replicated min(3, N) times."""

    home: Path
    ports: list[int]
    controller_ports: list[int]
    heap: str = "512m"
    # SASL_SSL for clients and between brokers, mutual TLS between brokers and controllers,
    # StandardAuthorizer (issue #20): one CA and one set of SCRAM users in ``home``, shared by the nodes
    secure: bool = False

    def __post_init__(self) -> None:
        if len(self.ports) != len(self.controller_ports) or not self.ports:
            raise LocalKafkaError("a cluster needs one client and one controller port per node")
        id_file = self.home / "cluster.id"
        self.home.mkdir(parents=True, exist_ok=True)
        if not id_file.exists():
            id_file.write_text(new_cluster_id())
        cluster = id_file.read_text().strip()
        voters = ",".join(f"{i}@127.0.0.1:{c}" for i, c in enumerate(self.controller_ports, start=1))
        self.nodes = [LocalKafka(home=self.home / f"node-{i}", port=p, controller_port=c, heap=self.heap, node_id=i,
                                 voters=voters, replication=min(3, len(self.ports)), cluster_id=cluster,
                                 secure=self.secure, secrets_home=self.home)
                      for i, (p, c) in enumerate(zip(self.ports, self.controller_ports, strict=True), start=1)]

    @property
    def secured(self) -> bool:
        return self.nodes[0].secured

    def credentials(self) -> dict[str, Any]:
        return self.nodes[0].credentials()

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    def start(self, timeout: float = 120.0) -> None:
        """Start every node (all at once: a node waits for a quorum of controllers) and wait for all."""
        first = self.nodes[0]
        if self.secure and not first.credentials_file.exists():  # once, for every node
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.home.chmod(0o700)
            first._provision_security(first._java())
            creds = first.credentials()  # clients of the cluster find it by its whole bootstrap
            first.credentials_file.write_text(json.dumps({**creds, "bootstrap": self.bootstrap}, indent=2) + "\n",
                                              encoding="utf-8")
        procs = [(n, n.launch()) for n in self.nodes]
        for node, proc in procs:
            if proc is not None:
                node.wait_ready(proc, timeout)
        self.wait_brokers(len(self.nodes), timeout)
        _say(f"cluster of {len(self.nodes)} nodes is up: {self.bootstrap}")

    def start_node(self, i: int, timeout: float = 120.0) -> None:
        node = self.nodes[i - 1]
        proc = node.launch()
        if proc is not None:
            node.wait_ready(proc, timeout)

    def wait_brokers(self, count: int, timeout: float = 120.0) -> None:
        """Until every running node's own metadata lists ``count`` brokers. Each broker learns of
        the others from the metadata log a moment apart; asking only one (an admin client picks
        any) once let topics be created with a smaller default replication factor (CI, 2026-12)."""
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = []
            for node in self.nodes:
                if node.pid() is None:
                    continue
                try:
                    admin = KafkaAdminClient(bootstrap_servers=node.bootstrap, request_timeout_ms=5000,
                                             **node.client_config())
                    try:
                        seen.append(len(admin.describe_cluster().get("brokers") or []))
                    finally:
                        admin.close()
                except KafkaError:
                    seen.append(0)
            if seen and min(seen) >= count:
                return
            time.sleep(0.5)
        raise LocalKafkaError(f"fewer than {count} brokers registered within {timeout:.0f}s")

    def stop(self, wipe: bool = False) -> None:
        # every node told at once: stopped one by one, the last ones wait out their controlled
        # shutdown for a quorum that is already gone (30 s each, measured)
        for node in self.nodes:
            pid = node.pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)
        for node in self.nodes:
            node.stop(wipe=wipe)
        if wipe:
            (self.home / "cluster.id").unlink(missing_ok=True)

    def status(self) -> dict[str, object]:
        nodes = [{"node": n.node_id, **n.status()} for n in self.nodes]
        return {"running": all(n["running"] for n in nodes), "answers": all(n["answers"] for n in nodes),
                "bootstrap": self.bootstrap, "nodes": nodes, "kafka_version": KAFKA_VERSION}


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def default_broker(nodes: int = 1, secure: bool = False) -> LocalKafka | LocalCluster:
    """The embedded broker on ``ZHUCAN_KAFKA_PORT`` (9092, its controller on the next port), or with
    ``nodes`` > 1 a cluster on that port and the next ones (controllers from port + 100), data in
    ``<ZHUCAN_KAFKA_DIR>/cluster-<nodes>``. ``secure``: SASL_SSL and ACLs, mutual TLS to the controllers."""
    port = int(os.environ.get("ZHUCAN_KAFKA_PORT", "9092"))
    if nodes <= 1:
        return LocalKafka(home=default_home(), port=port, controller_port=port + 1, secure=secure)
    return LocalCluster(home=default_home() / f"cluster-{nodes}", ports=[port + i for i in range(nodes)],
                        controller_ports=[port + 100 + i for i in range(nodes)], secure=secure)
