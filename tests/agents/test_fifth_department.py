"""Adding a department is one entry in the department list plus its schema symbol.

The fixture adds a fifth department (卫生健康, ``HEALTH``, reporting 因病致贫重病患者 beside
civil affairs) as ONE ``Department`` entry and the symbol ``HEALTH`` in the contract's
``Source`` enum, and nothing else: its topic exists in the topic list, the intake subscribes
to it, validates its records against its categories, and the person stage decides its
people's fee standards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from unittest.mock import AsyncMock

import pytest

from schemas import SCHEMA_DIR
from schemas.codec import Codec
from streams.app import create_app
from streams.domain.departments import DEPARTMENTS, Department
from streams.domain.enums import Category
from streams.domain.ids import person_key
from streams.policies import load_book
from streams.settings import Settings
from tests.agents.test_agents import Record, route, sent, settled
from tests.fixtures import CHONGQING, event, new_id

SECRET = "fifth-department-secret"
HEALTH = Department("HEALTH", "health", "卫生健康", (Category.ILLNESS_INDUCED_POVERTY,))


def _add_source_symbol(t, symbol: str) -> None:
    if isinstance(t, list):
        for u in t:
            _add_source_symbol(u, symbol)
    elif isinstance(t, dict):
        if t.get("type") == "enum" and t.get("name") == "Source":
            t["symbols"].append(symbol)
        for key in ("items", "fields", "type"):
            if key in t:
                _add_source_symbol(t[key], symbol)


@pytest.fixture
def schema_dir(tmp_path) -> Path:
    """The contract with HEALTH added to the Source enum (the department's schema change)."""
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    for path in target.glob("*.avsc"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        _add_source_symbol(doc, "HEALTH")
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return target


@pytest.fixture
def app(tmp_path, schema_dir):
    settings = Settings(kafka_bootstrap_servers="localhost:1", key_secret=SECRET, data_dir=tmp_path,
                        app_id="fifth-test", departments=(*DEPARTMENTS, HEALTH))
    # the book decides for the settings' departments: the basis names the fifth one too
    app = create_app(settings, load_book(None, settings.registry), codec=Codec(schema_dir=schema_dir))
    app.faust.finalize()
    app.faust.conf.store = "memory://"
    app.faust.flow_control.resume()
    app.ctx.send = AsyncMock()
    app.ctx.commands.committed = AsyncMock(return_value=None)  # no broker: never committed
    app.ctx.commands.log_start = AsyncMock(return_value=0)  # the topic's records from offset 0
    return app


def test_its_topic_is_in_the_topic_list_and_consumed(app):
    topics = app.ctx.settings.topics
    assert topics.identity["HEALTH"] == "identity.health.v1"
    assert topics.source_of("identity.health.v1") == "HEALTH"
    assert topics.configs()["identity.health.v1"] == {"cleanup.policy": "delete", "retention.ms": str(30 * 86_400_000),
                                                      "retention.bytes": "-1"}
    assert "identity.health.v1" in topics.contract() and "identity.rejected.health.v1" in topics.contract()
    # the shipped settings know nothing of it
    assert "HEALTH" not in Settings().topics.identity


async def test_its_records_are_validated_and_decided(app, schema_dir):
    codec = Codec(schema_dir=schema_dir)
    topic = app.ctx.topics.identity["HEALTH"]
    person, wrong = new_id(CHONGQING), new_id(CHONGQING)
    good = event(person, "ILLNESS_INDUCED_POVERTY", region=CHONGQING, source="HEALTH")
    not_its_class = event(wrong, "MINIMUM_LIVING", region=CHONGQING, source="HEALTH")
    outs = route(app, [Record(topic, 0, i, b"k", codec.encode("IdentityEvent", ev))
                                for i, ev in enumerate((good, not_its_class))])
    (rejection,) = [codec.decode(o.value)[1] for o in outs if o.topic == app.ctx.topics.rejected]
    assert (rejection["source"], rejection["reasons"]) == ("HEALTH", ["CATEGORY_NOT_OF_SOURCE"])
    (own,) = [codec.decode(o.value)[1] for o in outs if o.topic == "identity.rejected.health.v1"]  # its own topic
    assert own == rejection
    (batch_record,) = [o for o in outs if o.topic == app.ctx.topics.person_commands]
    async with app.faust.agents["zhucan.person"].test_context() as agent:
        await agent.put(batch_record.value, key=batch_record.key, partition=batch_record.partition)
        await settled(app)
    ((key, value),) = sent(app, "fee_standard")
    fee = codec.decode(value)[1]
    assert key == person_key(person, SECRET.encode()).encode()
    assert (fee["category"], fee["region_code"], fee["policy_id"][:12]) == ("ILLNESS_INDUCED_POVERTY", CHONGQING,
                                                                          "500000-2020@")
    assert fee["subsidy_fen"] > 0
    assert "卫生健康" in fee["basis"]  # decide() names the departments it was given, not the shipped four
    assert app.ctx.metrics.total("zhucan_events_in_total") == 2


def test_a_record_on_another_departments_topic_is_still_rejected(app, schema_dir):
    codec = Codec(schema_dir=schema_dir)
    ev = event(new_id(CHONGQING), "ILLNESS_INDUCED_POVERTY", region=CHONGQING, source="HEALTH")
    outs = route(app, [Record(app.ctx.topics.identity["CIVIL_AFFAIRS"], 0, 0, b"k",
                                       codec.encode("IdentityEvent", ev))])
    (rejection,) = [codec.decode(o.value)[1] for o in outs if o.topic == app.ctx.topics.rejected]
    assert rejection["reasons"] == ["SCHEMA"] and "does not match topic" in rejection["detail"]
    assert {o.topic for o in outs} == {app.ctx.topics.rejected, "identity.rejected.civil-affairs.v1"}


def test_a_topic_of_no_department_is_dead_lettered_not_counted_as_civil_affairs(app, schema_dir):
    codec = Codec(schema_dir=schema_dir)
    ev = event(new_id(), "MINIMUM_LIVING")
    (dead,) = route(app, [Record("identity.unknown.v1", 0, 7, b"k", codec.encode("IdentityEvent", ev))])
    headers = dict(dead.headers)
    assert dead.topic == app.ctx.topics.dead_letter
    assert headers["zhucan.error.class"] == b"UNKNOWN_TOPIC"
    assert app.ctx.metrics.total("zhucan_events_in_total") == 0
