"""The embedded local broker: Apache Kafka (KRaft, one node) from Maven Central jars.

No Docker needed: Maven fetches the jars once into the user's cache directory, the
storage is formatted once, and the broker runs on 127.0.0.1 only, keeping its data
across restarts until ``down --wipe``. ``KAFKA_HOME`` (an unpacked distribution)
is used instead of Maven when set.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = "3.9.1"
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka"


class LocalKafkaError(RuntimeError):
    """The local broker cannot be provisioned or started; the message says what to do."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zhucan"


def default_home() -> Path:
    if os.environ.get("ZHUCAN_KAFKA_DIR"):
        return Path(os.environ["ZHUCAN_KAFKA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "zhucan" / "kafka"


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

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

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

    def _write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            "\n".join([
                "# Written by `zhucan kafka up`: one combined broker/controller on loopback.",
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={self.data_dir}",
                "num.partitions=4",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=8",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
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
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        cmd = [java, "-cp", self._classpath(), f"-Dlog4j.configuration=file:{DEPLOY_DIR / 'log4j.properties'}",
               # "=" form: a cluster id may start with "-", which would read as an option
               "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(self.config_file)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise LocalKafkaError("formatting the storage failed:\n" + (proc.stdout + proc.stderr)[-2000:])

    def start(self, timeout: float = 90.0) -> None:
        """Start the broker (formatting it the first time) and wait until it answers."""
        if self.pid() is not None:
            if self.answers():
                _say(f"already running (pid {self.pid()}) on {self.bootstrap}")
                return
        elif self.answers():
            raise LocalKafkaError(f"port {self.port} on 127.0.0.1 is taken by another program")
        java = self._java()
        classpath = self._classpath()
        self._write_config()
        self._format_once(java)
        cmd = [java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dlog4j.configuration=file:{DEPLOY_DIR / 'log4j.properties'}",
               "-cp", classpath, "kafka.Kafka", str(self.config_file)]
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=self.home)
        log.close()
        self.pid_file.write_text(str(proc.pid))
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

    def _ready(self) -> bool:
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
        except KafkaError:
            return False
        try:
            admin.list_topics()
            return True
        except KafkaError:
            return False
        finally:
            admin.close()

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
                os.killpg(pid, signal.SIGKILL)
                _reap(pid)
            _say(f"stopped (pid {pid})")
        self.pid_file.unlink(missing_ok=True)
        if wipe:
            shutil.rmtree(self.data_dir, ignore_errors=True)
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
            "kafka_version": KAFKA_VERSION,
        }


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def default_broker() -> LocalKafka:
    port = int(os.environ.get("ZHUCAN_KAFKA_PORT", "9092"))
    return LocalKafka(home=default_home(), port=port, controller_port=port + 1)
