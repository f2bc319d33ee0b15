"""The agents, driven by Faust's ``test_context`` (no broker): decode -> domain -> publish."""

from __future__ import annotations

from unittest.mock import AsyncMock

import pytest

from schemas.codec import Codec
from streams.app import create_app
from streams.domain.ids import person_key
from streams.settings import Settings
from tests.fixtures import event, new_id, payment, shipped_book

SECRET = "agent-test-secret"


@pytest.fixture
def app(tmp_path):
    settings = Settings(kafka_bootstrap_servers="localhost:1", key_secret=SECRET, data_dir=tmp_path, app_id="agent-test")
    app = create_app(settings, shipped_book())
    app.finalize()
    app.conf.store = "memory://"
    app.flow_control.resume()
    p = app.pipeline
    for topic in (p.commands, p.rejected, p.fee_standard, p.review, p.dead_letter):
        topic.send = AsyncMock()
    return app


def sent(topic) -> list[tuple[bytes, bytes]]:
    return [(c.kwargs["key"], c.kwargs["value"]) for c in topic.send.await_args_list]


async def test_intake_forwards_valid_events_keyed_by_person(app):
    codec = Codec()
    idn = new_id()
    raw = event(idn, "MINIMUM_LIVING")
    assert idn[6:8] == "19"
    raw["id_number"] = idn[:6] + idn[8:17]  # the legacy 15-digit form is upgraded
    async with app.agents["zhucan.intake"].test_context() as agent:
        await agent.put(codec.encode("IdentityEvent", raw), key=b"dept-key")
    ((key, value),) = sent(app.pipeline.commands)
    assert key == person_key(idn, SECRET.encode()).encode()
    assert codec.decode(value)[1]["id_number"] == idn


async def test_intake_rejects_and_dead_letters_without_stopping(app):
    codec = Codec()
    bad = event(new_id(), "EXTREME_POVERTY", source="CIVIL_AFFAIRS")
    bad["region_code"] = "12"
    good = event(new_id(), "MINIMUM_LIVING")
    async with app.agents["zhucan.intake"].test_context() as agent:
        await agent.put(b"\xde\xad\xbe\xef", key=b"k")
        await agent.put(codec.encode("IdentityEvent", bad), key=b"k")
        await agent.put(codec.encode("IdentityEvent", good), key=b"k")
    assert len(sent(app.pipeline.dead_letter)) == 1
    reasons = [codec.decode(v)[1]["reasons"] for _, v in sent(app.pipeline.rejected)]
    assert reasons == [["SCHEMA"], ["UNKNOWN_REGION"]]
    assert len(sent(app.pipeline.commands)) == 1


async def test_person_agent_keeps_state_and_publishes_versions(app):
    codec = Codec()
    idn = new_id()
    key = person_key(idn, SECRET.encode()).encode()
    first = event(idn, "MONITORED_RELAPSE_RISK")
    async with app.agents["zhucan.person"].test_context() as agent:
        await agent.put(codec.encode("IdentityEvent", first), key=key)
        await agent.put(codec.encode("IdentityEvent", first), key=key)  # redelivery
        await agent.put(codec.encode("IdentityEvent", event(idn, "MINIMUM_LIVING")), key=key)
        await agent.put(codec.encode("PaymentStatus", payment(idn, 2025, 2, "PAID", 12000)), key=key)
        await agent.put(codec.encode("IdentityEvent", event(idn, "EXTREME_POVERTY")), key=key)  # frozen
    fees = [codec.decode(v)[1] for _, v in sent(app.pipeline.fee_standard)]
    assert [(f["version"], f["category"]) for f in fees] == [(1, "MONITORED_RELAPSE_RISK"), (2, "MINIMUM_LIVING")]
    assert app.pipeline.people.get(key) is not None


async def test_person_agent_dead_letters_an_internal_failure_and_goes_on(app, monkeypatch):
    codec = Codec()
    idn = new_id()
    key = person_key(idn, SECRET.encode()).encode()
    calls = {"n": 0}
    real = app.pipeline.publish

    async def flaky(effects, pkey, *rest):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError(f"boom for {idn}")
        await real(effects, pkey, *rest)

    monkeypatch.setattr(app.pipeline, "publish", flaky)
    async with app.agents["zhucan.person"].test_context() as agent:
        await agent.put(codec.encode("IdentityEvent", event(idn, "MINIMUM_LIVING")), key=key)
        await agent.put(codec.encode("IdentityEvent", event(new_id(), "ORPHAN", region="371002")), key=b"other")
    ((_, value),) = sent(app.pipeline.dead_letter)
    headers = dict(app.pipeline.dead_letter.send.await_args_list[0].kwargs["headers"])
    assert headers["zhucan.error.class"] == b"RuntimeError"
    assert idn.encode() not in headers["zhucan.error.message"]
    assert len(sent(app.pipeline.fee_standard)) == 1
    assert app.pipeline.people.get(key) is None  # not saved: replaying the dead letter redoes the work
