"""Effects to records: each effect goes to the topic whose ``TopicSpec`` names its class, as
that spec's record, and adds one to the spec's counter (``streams/kafka/topics.py``).

There is no other list: an effect class no topic publishes is a ``KeyError`` at the first
effect (and a test over the topic list finds it sooner)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Any, NamedTuple

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


Counter = tuple[str, tuple[str, ...], tuple[Any, ...]]  # a unit's count: (name, label names, label values)


class Template(NamedTuple):
    """An effect's record less the person and the time (``Publisher.template``)."""

    topic: str
    header: bytes
    middle: bytes
    tail: bytes
    counter: Counter | None
    timed: bool


def _counter(spec: TopicSpec, labels: Callable[[Any], tuple[str, ...]], effect: Any) -> Counter | None:
    """The count an effect published to ``spec``'s topic adds one to, if any."""
    counted = spec.counted
    return None if counted is None else (counted.name, counted.labels, labels(effect))


class Publisher:
    def __init__(self, topics: Topics, codec: Codec) -> None:
        self.codec = codec
        # an effect's class -> (topic name, its spec, the reader of its counter's label values)
        self.routes: dict[type, tuple[str, TopicSpec, Callable[[Any], tuple[str, ...]]]] = {
            effect: (topics.name(spec), spec, _labels_of(spec)) for effect, spec in topics.effects.items()}

    def template(self, effect: Any, person: tuple[str, ...], stamp: str) -> Template | None:
        """How ``publish`` writes ``effect`` again for another person, whose fields are ``person``
        (the record's first strings) and the time ``stamp``: its record split around them
        (``Codec.template``), the counter it adds to and whether it is timed. None where the record
        does not split so, or its log line or counter reads the person."""
        topic, spec, labels = self.routes[type(effect)]
        record = effect.to_record()
        if spec.record is None or spec.logged or \
                labels(effect) != labels(type(effect)(**{**record, **dict.fromkeys(person, ""), stamp: 0})):
            return None
        split = self.codec.template(spec.record, record, person, stamp, topic=topic)
        return None if split is None else Template(topic, *split, _counter(spec, labels, effect), spec.timed)

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
            counter = _counter(spec, labels, effect)
            if counter is not None:
                unit.counts[counter] += 1
            if spec.timed:
                unit.timed += 1
            if spec.logged:
                log.info("%s %s", spec.record, effect.describe())
