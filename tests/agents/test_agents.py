"""The agents, driven by Faust's ``test_context`` (no broker): decode -> domain -> publish."""

from __future__ import annotations

from unittest.mock import AsyncMock

import pytest

from schemas.codec import Codec
from streams import batch
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
    app.pipeline.send = AsyncMock()  # every output goes through Pipeline.send
    return app


def sent(app, what: str) -> list[tuple[bytes, bytes]]:
    topic = getattr(app.pipeline.names, what)
    return [(c.args[1], c.args[2]) for c in app.pipeline.send.await_args_list if c.args[0] == topic]


def call_kwargs(app, what: str) -> list[dict]:
    topic = getattr(app.pipeline.names, what)
    return [c.kwargs for c in app.pipeline.send.await_args_list if c.args[0] == topic]


async def test_intake_forwards_valid_events_keyed_by_person(app):
    codec = Codec()
    idn = new_id()
    raw = event(idn, "MINIMUM_LIVING")
    assert idn[6:8] == "19"
    raw["id_number"] = idn[:6] + idn[8:17]  # the legacy 15-digit form is upgraded
    async with app.agents["zhucan.intake"].test_context() as agent:
        await agent.put(codec.encode("IdentityEvent", raw), key=b"dept-key")
    ((record_key, record),) = sent(app, "person_commands")
    ((key, value),) = list(batch.unpack(record_key, record))  # one batch record for the partition
    assert key == person_key(idn, SECRET.encode()).encode()
    assert record_key == f"~batch~{app.pipeline.partition_of(key)}".encode()
    assert call_kwargs(app, "person_commands")[0]["partition"] == app.pipeline.partition_of(key)
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
    assert len(sent(app, "dead_letter")) == 1
    reasons = [codec.decode(v)[1]["reasons"] for _, v in sent(app, "rejected")]
    assert reasons == [["SCHEMA"], ["UNKNOWN_REGION"]]
    ((record_key, record),) = sent(app, "person_commands")
    assert len(list(batch.unpack(record_key, record))) == 1


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
    fees = [codec.decode(v)[1] for _, v in sent(app, "fee_standard")]
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
    ((_, value),) = sent(app, "dead_letter")
    headers = dict(call_kwargs(app, "dead_letter")[0]["headers"])
    assert headers["zhucan.error.class"] == b"RuntimeError"
    assert idn.encode() not in headers["zhucan.error.message"]
    assert len(sent(app, "fee_standard")) == 1
    assert app.pipeline.people.get(key) is None  # not saved: replaying the dead letter redoes the work


async def test_person_agent_handles_a_batch_record_and_dead_letters_one_bad_command(app):
    codec = Codec()
    a, b = new_id(), new_id()
    ka, kb = (person_key(x, SECRET.encode()).encode() for x in (a, b))
    record = batch.pack([(ka, codec.encode("IdentityEvent", event(a, "MINIMUM_LIVING"))), (kb, b"garbage"),
                         (kb, codec.encode("IdentityEvent", event(b, "EXTREME_POVERTY")))])
    async with app.agents["zhucan.person"].test_context() as agent:
        await agent.put(record, key=b"~batch~0")
    fees = [codec.decode(v)[1]["id_number"] for _, v in sent(app, "fee_standard")]
    assert fees == [a, b]
    ((dead_key, dead_value),) = sent(app, "dead_letter")
    assert (dead_key, dead_value) == (kb, b"garbage")  # only the bad command, replayable on its own


def test_batch_framing_round_trip_and_truncation():
    items = [(b"k1", b"v1"), (b"k" * 64, b"x" * 70000)]
    assert list(batch.unpack(b"~batch~0", batch.pack(items))) == items
    assert list(batch.unpack(b"single", b"\xc3\x01abc")) == [(b"single", b"\xc3\x01abc")]
    with pytest.raises(batch.BatchFormatError):
        list(batch.unpack(None, batch.pack(items)[:-5]))
