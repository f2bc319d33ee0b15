"""Effects to records: each effect goes to the topic whose ``TopicSpec`` names its class, as
that spec's record, and adds one to the spec's counter (``streams/kafka/topics.py``).

There is no other list: an effect class no topic publishes is a ``KeyError`` at the first
effect (and a test over the topic list finds it sooner)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from schemas.codec import Codec
from streams.kafka.topics import Topics, TopicSpec
from streams.runtime.emit import Out
from streams.runtime.unit import UnitOfWork

log = logging.getLogger("zhucan.worker")


class Publisher:
    def __init__(self, topics: Topics, codec: Codec) -> None:
        self.codec = codec
        # an effect's class -> (topic name, its spec)
        self.routes: dict[type, tuple[str, TopicSpec]] = {
            effect: (topics.name(spec), spec) for effect, spec in topics.effects.items()}

    def publish(self, unit: UnitOfWork[Any, Any], effects: Iterable[Any], key: bytes, home: int | None = None) -> None:
        """Add to ``unit`` the records that publish ``effects`` of the person ``key`` (``home``:
        its partition of the command topic, when known), and each effect's count."""
        outs: list[Out] = []
        specs: list[tuple[TopicSpec, Any]] = []
        for effect in effects:  # every record encoded before the unit hears of any
            topic, spec = self.routes[type(effect)]
            assert spec.record is not None  # an effect's topic carries a contract record
            outs.append(Out(topic, key, self.codec.encode(spec.record, effect.to_record(), topic=topic), home=home))
            specs.append((spec, effect))
        unit.send(outs)
        for spec, effect in specs:
            counted = spec.counted
            if counted is not None:
                unit.counts[(counted.name, tuple((label, str(getattr(effect, label))) for label in counted.labels))] += 1
            if spec.timed:
                unit.timed += 1
            if spec.logged:
                log.info("%s %s", spec.record, effect.describe())
