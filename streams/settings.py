"""Deployment settings, read from the environment once and frozen."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_KEY_SECRET = "zhucan-development-secret-do-not-use-in-production"
log = logging.getLogger("zhucan.settings")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZHUCAN_", frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = Field(
        "localhost:9092", validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "ZHUCAN_KAFKA_BOOTSTRAP_SERVERS")
    )
    policy_dir: Path | None = None  # default: the shipped streams/policies
    topic_prefix: str = ""  # e.g. "prod." in front of every topic name
    key_secret: SecretStr = SecretStr(DEV_KEY_SECRET)
    schema_registry_url: str | None = None
    app_id: str = "zhucan"  # the intake's consumer group (department topics); the Faust app is "<app_id>-streams"
    partitions: int = Field(4, ge=1)  # partitions of topics the project creates
    store: Literal["memory://", "rocksdb://"] = "rocksdb://"  # memory:// for tests of the agents
    data_dir: Path = Path(".zhucan-data")
    standby_replicas: int = Field(0, ge=0)  # Faust standby copies of the person table on other workers
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108  # -1 turns the endpoint off; 0 picks a free port
    coverage_grace_days: int = Field(15, ge=0)  # after the window, before an unpaid person is suspected
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @property
    def using_dev_secret(self) -> bool:
        return self.key_secret.get_secret_value() == DEV_KEY_SECRET

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
        return _topics(self.topic_prefix)

    def warn_if_dev_secret(self) -> None:
        if self.using_dev_secret:
            log.warning(
                "!!! ZHUCAN_KEY_SECRET is not set: person keys use the built-in DEVELOPMENT secret. "
                "Anyone can recompute them from ID numbers. Set ZHUCAN_KEY_SECRET before real data. !!!"
            )


class Topics:
    """Every topic name of the contract, with the deployment prefix applied."""

    SOURCES = {
        "CIVIL_AFFAIRS": "identity.civil-affairs.v1",
        "RURAL_REVITALIZATION": "identity.rural-revitalization.v1",
        "DISABILITY": "identity.disability.v1",
        "VETERANS": "identity.veterans.v1",
    }

    def __init__(self, prefix: str = "") -> None:
        p = prefix
        self.prefix = prefix
        self.identity = {source: p + name for source, name in self.SOURCES.items()}
        self.rejected = p + "identity.rejected.v1"
        self.fee_standard = p + "fee-standard.v1"
        self.payment_status = p + "payment-status.v1"
        self.review = p + "review.v1"
        self.unenrolled = p + "unenrolled.suspected.v1"
        self.settlement = p + "settlement.v1"
        self.control = p + "control.v1"
        # internal, under "zhucan."
        self.person_commands = p + "zhucan.person-commands"
        self.dead_letter = p + "zhucan.dead-letter"
        self.person_changelog = p + "zhucan.person-changelog"
        self.control_progress = p + "zhucan.control-progress"
        self.dead_letter_replays = p + "zhucan.dead-letter-replays"
        self.imports = p + "zhucan.imports"

    def source_of(self, topic: str) -> str | None:
        for source, name in self.identity.items():
            if name == topic:
                return source
        return None

    def contract(self) -> list[str]:
        return [*self.identity.values(), self.rejected, self.fee_standard, self.payment_status, self.review,
                self.unenrolled, self.settlement, self.control]

    def internal(self) -> list[str]:
        return [self.person_commands, self.dead_letter, self.control_progress, self.dead_letter_replays,
                self.imports]


@lru_cache(maxsize=64)
def _topics(prefix: str) -> Topics:
    return Topics(prefix)


def load_settings() -> Settings:
    return Settings()
