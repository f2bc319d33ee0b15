"""Helpers every command group uses: settings, a date argument, a broker to talk to."""

from __future__ import annotations

import datetime as dt
import os
import sys

from streams.settings import Settings


def _settings() -> Settings:
    return Settings()


def _as_of(text: str | None) -> dt.datetime:
    if not text:
        return dt.datetime.now(tz=dt.UTC)
    return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(12), tzinfo=dt.UTC)


def _ensure_broker(settings: Settings) -> Settings:
    """Without KAFKA_BOOTSTRAP_SERVERS, start the embedded local broker and use it."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return settings
    from connectors.dev.localkafka import default_broker

    broker = default_broker()
    broker.start()
    return settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap})


def _broker_settings(command: str) -> Settings | None:
    """Settings with a reachable broker (the local one started when none is configured), or None."""
    from connectors.dev.localkafka import LocalKafkaError

    try:
        return _ensure_broker(_settings())
    except LocalKafkaError as exc:
        print(f"zhucan {command}: {exc}", file=sys.stderr)
        return None
