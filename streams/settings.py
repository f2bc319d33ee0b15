"""Deployment settings, read from the environment once and frozen, and the worker's tuning.

``Tuning`` holds every knob that trades latency, throughput or memory (each set from a
measurement with ``zhucan bench``; the comments say which). Override one with
``ZHUCAN_TUNING__<NAME>``, e.g. ``ZHUCAN_TUNING__INTAKE_MAX_RECORDS=2000``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.domain.departments import DEPARTMENTS, Department, Departments
from streams.kafka.security import KafkaSecurity
from streams.kafka.topics import Topics, TopicSpec, topics_for

DEV_KEY_SECRET = "zhucan-development-secret-do-not-use-in-production"
log = logging.getLogger("zhucan.settings")


MIN_SECRET_BYTES = 32
_PLACEHOLDERS = ("changeme", "change-me", "change_me", "replace", "placeholder", "example", "secret", "password",
                 "development", "default", "todo", "xxxx", "test", "dummy", "sample", "zhucan")


def weak_secret(value: str) -> str | None:
    """Why ``value`` is no secret for person keys (None: it will do): the development secret, or
    one like it, under 32 bytes, few distinct characters, or a placeholder word in it."""
    raw = value.encode("utf-8")
    if DEV_KEY_SECRET in value or value.strip() == DEV_KEY_SECRET:
        return "it is the development secret"
    if len(raw) < MIN_SECRET_BYTES:
        return f"it is {len(raw)} bytes long, under {MIN_SECRET_BYTES}"
    if len(set(value)) < 8:
        return f"it has only {len(set(value))} distinct characters"
    word = next((w for w in _PLACEHOLDERS if w in value.lower()), None)
    if word is not None:
        return f"it looks like a placeholder (it contains {word!r})"
    return None


class Tuning(BaseModel):
    """Knobs of the worker's speed and memory (not of what it decides)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The intake (plain aiokafka, streams/runtime/intake_loop.py)
    intake_max_records: int = Field(4000, ge=1)  # department records handled per fetch
    intake_fetch_wait_ms: int = Field(50, ge=0)  # how long a fetch may wait for more (latency a batch may add)
    # A fetch with less than this waiting waits for more, up to intake_fetch_wait_ms, on the broker
    # (Kafka's fetch.min.bytes; its default, 1 byte, answers at once). About 180 department records:
    # at a batch's rates a fetch fills in a few ms; at a steady 1,000 events/s each fetch waits the
    # full wait and brings a few dozen, where it brought one or two (2026-12-06, three alternated
    # runs each: the workers' cores at 1,000/s after a batch 1.15-1.18 -> 0.63-0.67, their p50
    # 50-57 -> 61-63 ms; the batch's CPU per event unchanged; docs/performance.md).
    intake_fetch_min_bytes: int = Field(16 * 1024, ge=1)
    # After a fetch that brought nothing, the intake's next fetches wait up to this long on the
    # broker, answered at the first byte (a quiet worker asked every intake_fetch_wait_ms: 20
    # fetches a second over its 18 partitions, about 3% of a core while idle); the first fetch
    # that brings records puts the two knobs above back.
    intake_idle_wait_ms: int = Field(1000, ge=1)
    intake_partition_fetch_bytes: int = 4 * 1024**2
    intake_fetch_bytes: int = 32 * 1024**2
    retry_s: float = 1.0  # back-off after a failed send or fetch
    batch_record_bytes: int = 512 * 1024  # a batch record of person commands (streams/runtime/wire.py)
    # The person stage (a Faust agent over zhucan.person-commands)
    person_take: int = Field(64, ge=1)  # records (mostly batch records) handled together: one wait for acks
    person_within_s: float = 0.01  # or fewer, after this long
    # The longest the person stage holds the event loop within a take before it lets the others
    # run (checked after each batch record, about a thousand commands): the intake's consumer
    # heartbeats on the same loop, and takes of 64 batch records held it for seconds at a time
    # (3.8-6.2 s) on a slow machine (2026-12-06): its heartbeats lapsed past that group's 10 s
    # session, the worker was expelled, its intake commits failed and its records were fetched again.
    person_hold_s: float = Field(0.05, gt=0)
    # The decisions of people seen for the first time, remembered by what decides them
    # (streams/domain/newcomers.py): at most this many keys (about 3 KiB each), emptied when full;
    # 0 turns it off (every person decided by the rules from the start, as before 2026-12-06).
    person_memo_entries: int = Field(8192, ge=0)
    # The offset guards (streams/runtime/applied.py): a gap's repair (the missing records read, or
    # a seek back when they cannot be) is tried again after this long; a partition whose commits have not moved
    # for commit_stall_s while records past them were applied is sought back to its commit.
    gap_retry_s: float = Field(2.0, gt=0)
    commit_stall_s: float = Field(45.0, gt=0)
    # A partition this worker holds with records waiting whose commit has not moved for
    # progress_stuck_s while its stage was idle is sought back to its commit; still stuck that long
    # after, the worker exits with code 75 for its supervisor to start it again (a consumer that
    # stays alive and fetches nothing: aio-libs/aiokafka#1154). Three minutes: far above any
    # partition's wait behind the others in a province's batch, measured under 30 s.
    progress_stuck_s: float = Field(180.0, gt=0)
    commit_watch_s: float = Field(15.0, gt=0)  # how often the commits are looked at
    # How often a worker publishes the ledger's totals of the partitions it holds whose totals
    # changed (zhucan.ledger-totals): the reports and the dashboard are at most this much behind.
    ledger_publish_s: float = Field(1.0, gt=0)
    # Faust's RocksDB defaults (3 x 64 MiB memtables and a 2 GiB block cache per partition) let a
    # worker's memory grow to gigabytes on a province; a person's state is ~0.6 KiB, reads are
    # point lookups of people seen recently, and the changelog is the durable copy.
    rocksdb_write_buffer_size: int = 16 * 1024**2
    rocksdb_max_write_buffer_number: int = 2
    rocksdb_block_cache_size: int = 64 * 1024**2
    rocksdb_bloom_bits: int = 10  # bits per key: most lookups are of people not seen yet
    # Faust's consumer and producer: fewer, larger fetches and produce requests (measured with the bench)
    # How long the group waits for a member that stopped heartbeating (a killed worker) before its
    # partitions go to the others or to its restart: Faust's default, 60 s. Lower it where a
    # crashed worker's partitions must move sooner; never below three heartbeats.
    session_timeout_s: float = Field(60.0, ge=10.0)
    # How often each of a worker's two groups (the intake's and the Faust app's) heartbeats. A
    # member learns of a rebalance at its next heartbeat, so a worker joining waited up to that
    # long for the others (the clients' default, 3 s): with 1 s, two workers started together
    # had both groups stable 6.4-7.4 s after their start instead of 9.9 (2026-12-07, two runs each).
    heartbeat_s: float = Field(1.0, gt=0, le=3.0)
    commit_every: int = 1000
    commit_interval_s: float = 1.0
    max_poll_records: int = 2000
    max_fetch_size: int = 8 * 1024**2
    stream_buffer_maxsize: int = 16384
    producer_linger_s: float = 0.005
    producer_max_batch_size: int = 256 * 1024
    # CPython's garbage collector (streams/worker.py settle_heap): young collections every this
    # many allocations instead of 700 (measured: 111-119 µs of worker CPU per event instead of 128-135)
    gc_young_threshold: int = 20_000

    @property
    def rocksdb_options(self) -> dict[str, int]:
        return {"write_buffer_size": self.rocksdb_write_buffer_size,
                "max_write_buffer_number": self.rocksdb_max_write_buffer_number,
                "block_cache_size": self.rocksdb_block_cache_size, "bloom_filter_size": self.rocksdb_bloom_bits}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZHUCAN_", frozen=True, extra="ignore", env_nested_delimiter="__")

    kafka_bootstrap_servers: str = Field(
        "localhost:9092", validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "ZHUCAN_KAFKA_BOOTSTRAP_SERVERS")
    )
    # How the clients authenticate: the KAFKA_* variables (streams/kafka/security.py), read once.
    kafka: KafkaSecurity = Field(default_factory=KafkaSecurity)
    policy_dir: Path | None = None  # default: the shipped streams/policies
    topic_prefix: str = ""  # e.g. "prod." in front of every topic name
    key_secret: SecretStr = SecretStr(DEV_KEY_SECRET)
    schema_registry_url: str | None = None
    app_id: str = "zhucan"  # the intake's consumer group (department topics); the Faust app is "<app_id>-streams"
    partitions: int = Field(4, ge=1)  # partitions of topics the project creates
    # Replicas of every topic zhucan creates (contract, internal, the person changelog, Faust's own):
    # None = min(3, brokers in the cluster); min.insync.replicas None = replication factor - 1 (at least 1).
    replication_factor: int | None = Field(None, ge=1)
    min_insync_replicas: int | None = Field(None, ge=1)
    store: Literal["memory://", "rocksdb://"] = "rocksdb://"  # memory:// for tests of the agents
    data_dir: Path = Path(".zhucan-data")
    standby_replicas: int = Field(0, ge=0)  # Faust standby copies of the person table on other workers
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108  # -1 turns the endpoint off; 0 picks a free port
    # where the worker answers `zhucan person` (host:port; port 0 picks a free one; "off": none)
    query_addr: str = "127.0.0.1:0"
    coverage_grace_days: int = Field(15, ge=0)  # after the window, before an unpaid person is suspected
    # Static group membership (Kafka's group.instance.id): this worker's name in its groups, kept
    # across restarts. A worker killed and started again on its own data directory within the
    # session timeout takes its partitions back at once, with no rebalance and no restore from
    # the changelog (measured with `zhucan bench --kill`). A name is one worker's only: a second
    # worker with the same name fences the first. None: dynamic membership (every restart is a
    # rebalance). A worker stopped for good keeps its partitions until the session timeout.
    instance_id: str | None = Field(None, min_length=1, max_length=200)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # The departments (streams/domain/departments.py); a test adds a fifth one here.
    departments: tuple[Department, ...] = DEPARTMENTS
    # Output topics besides streams/kafka/topics.py's list (a test adds one, as it adds a department).
    extra_topics: tuple[TopicSpec, ...] = ()
    tuning: Tuning = Tuning()
    # Faults injected on purpose, for the tests on real Kafka (streams/runtime/faults.py); never set
    # in a deployment.
    faults: str = ""

    @property
    def using_dev_secret(self) -> bool:
        return self.key_secret.get_secret_value() == DEV_KEY_SECRET

    def weak_secret(self) -> str | None:
        """Why ``key_secret`` is not worth the name on a secured cluster (None: it is). Person keys
        are HMACs of ID numbers under it: a short or guessable secret lets anyone who can read a
        key recompute whose it is (issue #20)."""
        return weak_secret(self.key_secret.get_secret_value())

    def replication(self, brokers: int) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) on a cluster of ``brokers`` brokers."""
        rf = self.replication_factor or min(3, max(1, brokers))
        return rf, self.min_insync_replicas or max(1, rf - 1)

    @property
    def secret_bytes(self) -> bytes:
        return self.key_secret.get_secret_value().encode("utf-8")

    @property
    def streams_app_id(self) -> str:
        """The Faust app's id and consumer group (person commands, acknowledgements, control)."""
        return f"{self.app_id}-streams"

    @property
    def worker_groups(self) -> list[str]:
        """Every consumer group a worker runs: the intake's, then the Faust app's."""
        return [self.app_id, self.streams_app_id]

    @property
    def topics(self) -> Topics:
        # Not a cached_property: model_copy(update={"topic_prefix": ...}) copies the instance's
        # __dict__, so a cached Topics would keep naming the old prefix's topics.
        return topics_for(self.topic_prefix, self.departments, self.extra_topics)

    @property
    def registry(self) -> Departments:
        return _registry(self.departments)

    def warn_if_dev_secret(self) -> None:
        if self.using_dev_secret:
            log.warning(
                "!!! ZHUCAN_KEY_SECRET is not set: person keys use the built-in DEVELOPMENT secret. "
                "Anyone can recompute them from ID numbers. Set ZHUCAN_KEY_SECRET before real data. !!!"
            )


_registries: dict[tuple[Department, ...], Departments] = {}


def _registry(departments: tuple[Department, ...]) -> Departments:
    if departments not in _registries:
        _registries[departments] = Departments(departments)
    return _registries[departments]


def load_settings() -> Settings:
    return Settings()
