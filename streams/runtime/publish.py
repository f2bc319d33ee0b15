"""Effects to records: each effect goes to the topic whose ``TopicSpec`` names its class, as
that spec's record, and adds one to the spec's counter (``streams/kafka/topics.py``).

There is no other list: an effect class no topic publishes is a ``KeyError`` at the first
effect (and a test over the topic list finds it sooner)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Any

from schemas.codec import Codec
from streams.kafka.topics import Topics, TopicSpec
from streams.runtime.emit import Out
from streams.runtime.unit import UnitOfWork

log = logging.getLogger("zhucan.worker")


def _labels_of(spec: TopicSpec) -> Callable[[Any], tuple[str, ...]]:
    """The values of the spec's counter labels on an effect, as a tuple (read once per effect)."""
    labels = spec.counted.labels if spec.counted is not None else ()
    if not labels:
        return lambda effect: ()
    if len(labels) == 1:
        get = attrgetter(labels[0])
        return lambda effect: (get(effect),)
    return attrgetter(*labels)


class Publisher:
    def __init__(self, topics: Topics, codec: Codec) -> None:
        self.codec = codec
        # an effect's class -> (topic name, its spec, the reader of its counter's label values)
        self.routes: dict[type, tuple[str, TopicSpec, Callable[[Any], tuple[str, ...]]]] = {
            effect: (topics.name(spec), spec, _labels_of(spec)) for effect, spec in topics.effects.items()}

    def publish(self, unit: UnitOfWork[Any, Any], effects: Iterable[Any], key: bytes, home: int | None = None) -> None:
        """Add to ``unit`` the records that publish ``effects`` of the person ``key`` (``home``:
        its partition of the command topic, when known), and each effect's count."""
        outs: list[Out] = []
        routed = [(self.routes[type(effect)], effect) for effect in effects]
        for (topic, spec, _), effect in routed:  # every record encoded before the unit hears of any
            assert spec.record is not None  # an effect's topic carries a contract record
            outs.append(Out(topic, key, self.codec.encode(spec.record, effect.to_record(), topic=topic), home=home))
        unit.send(outs)
        for (_, spec, labels), effect in routed:
            counted = spec.counted
            if counted is not None:
                unit.counts[(counted.name, counted.labels, labels(effect))] += 1
            if spec.timed:
                unit.timed += 1
            if spec.logged:
                log.info("%s %s", spec.record, effect.describe())
