"""Adding an output topic is its ``TopicSpec``, its effect class and its ``.avsc`` (issue #21).

The fixture adds a topic ``thanks.v1`` as exactly those three: a ``ThanksSent`` effect (a
dataclass with ``to_record`` and ``describe``), ``schemas/thanks_sent.avsc``, and one
``TopicSpec`` naming the effect and its counter, given to ``Settings`` as a test adds a
department. A handler that returns the effect (here the identity handler, wrapped) is all the
domain side needs. Nothing else is touched: the topic is in the topic list with its configs,
the person stage publishes the effect there as its record, the counter counts it after the
broker's acknowledgement, and the metrics endpoint has its HELP line."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from typing import Any
from unittest.mock import AsyncMock

import pytest

from schemas import SCHEMA_DIR
from schemas.codec import Codec
from streams import handlers
from streams.app import create_app
from streams.domain.commands import ApplyIdentity
from streams.domain.ids import mask_id, person_key
from streams.kafka.topics import DAY_MS, Counted, TopicSpec
from streams.settings import Settings
from tests.agents.test_agents import sent, settled
from tests.fixtures import event, new_id, shipped_book

SECRET = "new-output-topic-secret"


@dataclass
class ThanksSent:
    id_number: str
    insurance_year: int
    note: str

    def describe(self) -> str:
        return f"year {self.insurance_year} (id {mask_id(self.id_number)})"

    def to_record(self) -> dict[str, Any]:
        return dict(self.__dict__)


THANKS = TopicSpec("thanks", "thanks.v1", "ThanksSent", "person token", "zhucan", 30 * DAY_MS, True,
                   effect=ThanksSent, counted=Counted("zhucan_thanks_total", "Thank-you notes published", ()),
                   logged=True)


@pytest.fixture
def schema_dir(tmp_path):
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__", "history"))
    (target / "thanks_sent.avsc").write_text(json.dumps({
        "type": "record", "name": "ThanksSent", "namespace": "zhucan.v1",
        "fields": [{"name": "id_number", "type": "string"}, {"name": "insurance_year", "type": "int"},
                   {"name": "note", "type": "string"}]}), encoding="utf-8")
    return target


@pytest.fixture
def app(tmp_path, schema_dir, monkeypatch):
    settings = Settings(kafka_bootstrap_servers="localhost:1", key_secret=SECRET, data_dir=tmp_path,
                        app_id="thanks-test", extra_topics=(THANKS,))
    built = create_app(settings, shipped_book(), codec=Codec(schema_dir=schema_dir))
    built.faust.finalize()
    built.faust.conf.store = "memory://"
    built.faust.flow_control.resume()
    built.ctx.send = AsyncMock()
    built.ctx.commands.committed = AsyncMock(return_value=None)
    built.ctx.commands.log_start = AsyncMock(return_value=0)  # the topic's records from offset 0
    apply_identity = handlers.HANDLERS[ApplyIdentity]

    def thanking(ctx, work, key, cmd):  # the domain side: a handler that returns the new effect
        apply_identity(ctx, work, key, cmd)
        ctx.publisher.publish(work.unit, [ThanksSent(cmd.identity.id_number, 2026, "谢谢")], key,
                              home=work.partition)

    monkeypatch.setitem(handlers.HANDLERS, ApplyIdentity, thanking)
    return built


def test_the_topic_is_in_the_list_with_its_configs(app):
    topics = app.ctx.topics
    assert topics.thanks == "thanks.v1" and "thanks.v1" in topics.contract()
    assert topics.configs()["thanks.v1"] == {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS),
                                             "retention.bytes": "-1"}
    assert "thanks.v1" not in Settings().topics.contract()  # the shipped list knows nothing of it


async def test_the_person_stage_publishes_and_counts_the_new_effect(app, schema_dir):
    codec = Codec(schema_dir=schema_dir)
    idn = new_id()
    key = person_key(idn, SECRET.encode()).encode()
    async with app.faust.agents["zhucan.person"].test_context() as agent:
        await agent.put(codec.encode("IdentityEvent", event(idn, "MINIMUM_LIVING")), key=key)
        await settled(app)
    ((thanks_key, value),) = sent(app, "thanks")
    assert thanks_key == key
    assert codec.decode(value, expect="ThanksSent")[1] == {"id_number": idn, "insurance_year": 2026, "note": "谢谢"}
    assert len(sent(app, "fee_standard")) == 1  # beside what the stage published before
    assert app.ctx.metrics.total("zhucan_thanks_total") == 1
    rendered = app.ctx.metrics.render()
    assert "# HELP zhucan_thanks_total Thank-you notes published" in rendered
    assert "zhucan_thanks_total 1" in rendered
