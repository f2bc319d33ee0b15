"""The agents, driven by Faust's ``test_context`` (no broker): decode -> domain -> publish."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from unittest.mock import AsyncMock

import pytest

from schemas.codec import Codec
from streams.app import create_app
from streams.domain.identity import validate_identity
from streams.domain.ids import person_key
from streams.domain.person import PersonState
from streams.runtime import wire as batch
from streams.runtime.applied import marker_key
from streams.runtime.reader import Fetched
from streams.runtime.unit import UnitOfWork
from streams.settings import Settings
from tests.fixtures import event, new_id, payment, shipped_book

SECRET = "agent-test-secret"


@pytest.fixture
def app(tmp_path):
    settings = Settings(kafka_bootstrap_servers="localhost:1", key_secret=SECRET, data_dir=tmp_path, app_id="agent-test")
    app = create_app(settings, shipped_book())
    app.faust.finalize()
    app.faust.conf.store = "memory://"
    app.faust.flow_control.resume()
    app.ctx.send = AsyncMock()  # every output of the stages goes through the context's send
    # no broker here: the group never committed (the applied-offset guard starts at the log start, 0)
    app.ctx.commands.committed = AsyncMock(return_value=None)
    app.ctx.commands.log_start = AsyncMock(return_value=0)  # the topic's records from offset 0
    return app


async def settled(app, quiet_s: float = 0.1, timeout_s: float = 5.0) -> None:
    """Wait until the person agent has handled what was put: it takes records in batches
    (take_events), so ``put`` returns before they are processed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    seen, since = -1, loop.time()
    while loop.time() < deadline:
        calls = len(app.ctx.send.await_args_list)
        if calls != seen or app.ctx.in_flight:
            seen, since = calls, loop.time()
        elif calls and loop.time() - since >= quiet_s:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the person agent handled nothing")


def _outs(app, what: str) -> list:
    topic = getattr(app.ctx.topics, what)
    return [o for c in app.ctx.send.await_args_list for o in c.args[0] if o.topic == topic]


def sent(app, what: str) -> list[tuple[bytes, bytes]]:
    return [(o.key, o.value) for o in _outs(app, what)]


def call_kwargs(app, what: str) -> list[dict]:
    return [{"partition": o.partition, "headers": o.headers} for o in _outs(app, what)]


@dataclass
class Record:
    """What the intake gets from aiokafka: a consumer record (timestamp in ms)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int = 1_700_000_000_000


def route(app, records) -> list:
    """One fetch of the intake loop through the stages (``Inputs``): the records it would send."""
    unit = UnitOfWork(AsyncMock(), AsyncMock())
    app.inputs.handle(records, unit)
    return unit.outs


def intake(app, *values: bytes, source: str = "CIVIL_AFFAIRS") -> list[tuple[str, bytes, bytes, dict]]:
    """Run the intake over one fetch: (topic attribute, key, value, the rest) per record to send."""
    topic = app.ctx.topics.identity[source]
    outs = route(app, [Record(topic, 0, i, b"dept-key", v) for i, v in enumerate(values)])
    by_topic = {getattr(app.ctx.topics, a): a for a in ("person_commands", "rejected", "dead_letter")}
    by_topic.update({t: "rejected_own" for t in app.ctx.topics.rejected_of.values()})
    return [(by_topic[o.topic], o.key, o.value, {"partition": o.partition, "headers": o.headers,
                                                   "timestamp_ms": o.timestamp_ms}) for o in outs]


def test_the_intake_loop_also_forwards_acknowledgements_and_fans_out_control_commands(app):
    """Issue #26: tax's acknowledgements and the operators' commands are read by the intake's
    aiokafka loop, not by Faust agents (whose fetcher can drop records around a rebalance)."""
    import datetime as dt

    codec, names, secret = Codec(), app.ctx.topics, SECRET.encode()
    idn = new_id()
    control = {"command_id": "c-1", "command": "OPEN_YEAR", "region_code": "410102", "insurance_year": 2026,
               "issued_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)}
    outs = route(app, [
        Record(names.payment_status, 0, 0, b"any", codec.encode("PaymentStatus", payment(idn, 2026, 1))),
        Record(names.payment_status, 0, 1, b"any", b"garbage"),
        Record(names.payment_status, 0, 2, b"any", codec.encode("PaymentStatus", payment("123", 2026, 1))),
        Record(names.control, 0, 0, b"c-1", codec.encode("ControlCommand", control)),
    ])
    by_topic: dict[str, list] = {}
    for o in outs:
        by_topic.setdefault(o.topic, []).append(o)
    ack, *fanned = by_topic[names.person_commands]
    # the acknowledgement travels in the internal form: decoded from Avro once, here
    assert ack.key == person_key(idn, secret).encode() and batch.unpack_payment(ack.value).id_number == idn
    assert sorted(o.partition for o in fanned) == list(range(app.ctx.settings.partitions))
    assert {codec.decode(o.value)[1]["command_id"] for o in fanned} == {"c-1"}
    (dead,) = by_topic[names.dead_letter]
    assert dead.value == b"garbage" and dict(dead.headers)["zhucan.origin.topic"] == names.payment_status.encode()
    (review,) = by_topic[names.review]
    assert codec.decode(review.value)[1]["code"] == "UNKNOWN_PAYMENT"
    assert app.ctx.metrics.total("zhucan_acks_in_total") == 2


def test_intake_forwards_valid_events_keyed_by_person(app):
    codec = Codec()
    idn = new_id()
    raw = event(idn, "MINIMUM_LIVING")
    assert idn[6:8] == "19"
    raw["id_number"] = idn[:6] + idn[8:17]  # the legacy 15-digit form is upgraded
    ((what, record_key, record, rest),) = intake(app, codec.encode("IdentityEvent", raw))
    assert what == "person_commands"
    ((key, value),) = list(batch.unpack(record_key, record))  # one batch record for the partition
    assert key == person_key(idn, SECRET.encode()).encode()
    assert record_key == f"~batch~{app.ctx.partition_of(key)}".encode()
    assert rest["partition"] == app.ctx.partition_of(key)
    assert rest["timestamp_ms"] == Record.timestamp  # latency is measured from the department's record
    assert batch.unpack_identity(value).id_number == idn


def test_intake_forwards_the_validated_identity_in_the_internal_form(app):
    codec = Codec()
    raw = event(new_id(), "MINIMUM_LIVING", is_student=True)
    ((_, record_key, record, _),) = intake(app, codec.encode("IdentityEvent", raw))
    ((_, value),) = list(batch.unpack(record_key, record))
    assert value.startswith(batch.IDENTITY)  # the person stage does not decode the Avro again
    assert batch.unpack_identity(value) == validate_identity(raw)


def test_intake_groups_one_fetch_into_one_record_per_partition(app):
    codec = Codec()
    ids = [new_id() for _ in range(40)]
    out = intake(app, *(codec.encode("IdentityEvent", event(i, "MINIMUM_LIVING")) for i in ids))
    assert all(what == "person_commands" for what, *_ in out)
    partitions = [rest["partition"] for *_, rest in out]
    assert len(partitions) == len(set(partitions)) <= app.ctx.settings.partitions
    forwarded = [k for _, rk, rec, rest in out for k, _ in batch.unpack(rk, rec)
                 if app.ctx.partition_of(k) == rest["partition"]]  # every command in its own partition
    assert sorted(forwarded) == sorted(person_key(i, SECRET.encode()).encode() for i in ids)


def test_intake_rejects_and_dead_letters_without_stopping(app):
    codec = Codec()
    bad = event(new_id(), "EXTREME_POVERTY", source="CIVIL_AFFAIRS")
    bad["region_code"] = "12"
    good = event(new_id(), "MINIMUM_LIVING")
    out = intake(app, b"\xde\xad\xbe\xef", codec.encode("IdentityEvent", bad), codec.encode("IdentityEvent", good))
    assert [what for what, *_ in out].count("dead_letter") == 1
    reasons = [codec.decode(v)[1]["reasons"] for what, _, v, _ in out if what == "rejected"]
    assert reasons == [["SCHEMA"], ["UNKNOWN_REGION"]]
    ((record_key, record),) = [(k, v) for what, k, v, _ in out if what == "person_commands"]
    assert len(list(batch.unpack(record_key, record))) == 1


def test_intake_dead_letters_a_record_whose_handling_fails_and_goes_on(app, monkeypatch):
    codec = Codec()
    first, second = new_id(), new_id()
    real = app.inputs.intake.one

    def flaky(msg, outs, counts):
        if msg.offset == 0:
            raise RuntimeError(f"boom for {first}")
        return real(msg, outs, counts)

    monkeypatch.setattr(app.inputs.intake, "one", flaky)
    out = intake(app, codec.encode("IdentityEvent", event(first, "MINIMUM_LIVING")),
                 codec.encode("IdentityEvent", event(second, "MINIMUM_LIVING")))
    ((_, _, _, rest),) = [o for o in out if o[0] == "dead_letter"]
    headers = dict(rest["headers"])
    assert headers["zhucan.error.class"] == b"RuntimeError" and headers["zhucan.origin.offset"] == b"0"
    assert first.encode() not in headers["zhucan.error.message"]
    ((_, rk, rec, _),) = [o for o in out if o[0] == "person_commands"]
    assert [k for k, _ in batch.unpack(rk, rec)] == [person_key(second, SECRET.encode()).encode()]


async def test_person_agent_keeps_state_and_publishes_versions(app):
    codec = Codec()
    idn = new_id()
    key = person_key(idn, SECRET.encode()).encode()
    first = event(idn, "MONITORED_RELAPSE_RISK")
    async with app.faust.agents["zhucan.person"].test_context() as agent:
        await agent.put(codec.encode("IdentityEvent", first), key=key)
        await agent.put(codec.encode("IdentityEvent", first), key=key)  # redelivery
        await agent.put(codec.encode("IdentityEvent", event(idn, "MINIMUM_LIVING")), key=key)
        await agent.put(codec.encode("PaymentStatus", payment(idn, 2025, 2, "PAID", 12000)), key=key)
        await agent.put(codec.encode("IdentityEvent", event(idn, "EXTREME_POVERTY")), key=key)  # frozen
        await settled(app)
    fees = [codec.decode(v)[1] for _, v in sent(app, "fee_standard")]
    assert [(f["version"], f["category"]) for f in fees] == [(1, "MONITORED_RELAPSE_RISK"), (2, "MINIMUM_LIVING")]
    assert app.ctx.store.table.get(key) is not None


async def test_person_agent_saves_state_only_after_its_effects_were_acknowledged(app):
    codec = Codec()
    a, b = new_id(), new_id()
    ka, kb = (person_key(x, SECRET.encode()).encode() for x in (a, b))
    record = batch.pack([(ka, codec.encode("IdentityEvent", event(a, "MINIMUM_LIVING"))),
                         (ka, codec.encode("IdentityEvent", event(a, "MONITORED_RELAPSE_RISK", source="RURAL_REVITALIZATION"))),
                         (kb, codec.encode("IdentityEvent", event(b, "EXTREME_POVERTY")))])
    async with app.faust.agents["zhucan.person"].test_context() as agent:
        await agent.put(record, key=b"~batch~1", partition=1)
        await settled(app)
    start_call, effects_call, state_call = app.ctx.send.await_args_list
    # the partition's start, as its marker, before any record is applied: a take acknowledged
    # undone is then seen by the commit watch (COMMIT_AHEAD)
    assert [(o.topic, o.partition, o.key, o.value) for o in start_call.args[0]] == [
        (app.ctx.topics.person_changelog, 1, marker_key(1), b"0")]
    assert start_call.kwargs == {"wait": True}
    assert effects_call.kwargs == {"wait": True}  # acknowledged before any state is written
    assert {o.topic for o in effects_call.args[0]} == {app.ctx.topics.fee_standard, app.ctx.topics.ledger}
    assert {o.home for o in effects_call.args[0]} == {1}  # the partition the commands came on
    # the ledger's lines in the same send as the standards: one per person-year, the last word
    lines = [o for o in effects_call.args[0] if o.topic == app.ctx.topics.ledger]
    assert sorted(o.key.split(b"|")[0] for o in lines) == sorted([ka, kb])  # a's two changes: its last line
    changelog = state_call.args[0]
    assert {(o.topic, o.partition) for o in changelog} == {(app.ctx.topics.person_changelog, 1)}
    # each person once, with the state after both commands, the partition's ledger totals (one
    # record per county-year and their index), then in the same send the partition's
    # applied-offset marker: the record after this one is the next to apply (issue #26)
    keys = [o.key for o in changelog]
    assert keys[:2] == [ka, kb] and keys[-1] == marker_key(1)
    assert all(k.startswith((b"~agg", b"~ledger~")) for k in keys[2:-1]) and len(keys) > 3
    assert changelog[-1].value == b"1" and app.ctx.store.table.get(marker_key(1)) == b"1"
    assert changelog[0].value == app.ctx.store.table.get(ka)
    assert len(PersonState.loads(changelog[0].value).identities) == 2
    metrics = app.ctx.metrics  # counted once per batch, one latency observation per standard
    standards = [o for o in effects_call.args[0] if o.topic == app.ctx.topics.fee_standard]
    assert metrics.total("zhucan_fee_standards_out_total") == len(standards) == sum(metrics.latency_counts)


async def test_a_take_whose_send_failed_is_done_again_before_it_is_acknowledged(app):
    """The send of a take's effects fails once (a leader moving): the take is done again, its
    effects sent with the same ids, its state and marker written (Faust acks a take when the
    agent's body ends, raised or not: it must not end before the take holds)."""
    from aiokafka.errors import KafkaTimeoutError

    codec, a = Codec(), new_id()
    ka = person_key(a, SECRET.encode()).encode()
    failed: list[list] = []

    async def send(outs, wait=False):
        if not failed and any(o.topic == app.ctx.topics.fee_standard for o in outs):
            failed.append(outs)
            raise KafkaTimeoutError("the leader moved")

    app.ctx.send.side_effect = send
    async with app.faust.agents["zhucan.person"].test_context() as agent:
        await agent.put(batch.pack([(ka, codec.encode("IdentityEvent", event(a, "MINIMUM_LIVING")))]),
                        key=b"~batch~1", partition=1)
        await settled(app, quiet_s=1.5)  # the take is done again after RETRY_S (1 s)
    fees = [codec.decode(v)[1] for _, v in sent(app, "fee_standard")]
    assert len(failed) == 1 and [f["version"] for f in fees] == [1, 1]  # the failed send, then the same again
    assert fees[0]["message_id"] == fees[1]["message_id"]
    assert app.ctx.store.table.get(ka) is not None and app.ctx.store.table.get(marker_key(1)) == b"1"
    assert app.ctx.metrics.total("zhucan_person_take_retries_total") == 1


def _gap_people(codec):
    ids = {name: new_id() for name in "abcd"}
    keys = {name: person_key(i, SECRET.encode()).encode() for name, i in ids.items()}
    return ids, keys, lambda name: codec.encode("IdentityEvent", event(ids[name], "MINIMUM_LIVING"))


def _repairs(app) -> list[dict]:
    return [json.loads(v) | {"at_ms": 0} for _, v in sent(app, "offset_repairs")]


async def test_person_agent_skips_what_it_applied_and_reads_a_gap_from_the_broker(app):
    """Issue #26: the partition's marker says 5 is next. Offset 3 is a redelivery (skipped);
    offset 7 arrives with 5 and 6 missing: they are read from the broker and applied first,
    in order, and the repair is published."""
    codec = Codec()
    ids, keys, identity = _gap_people(codec)
    topic = app.ctx.topics.person_commands
    missing = [Fetched(topic, 0, offset, keys[name], identity(name), 1_700_000_000.0)
               for offset, name in ((5, "c"), (6, "d"))]
    app.ctx.commands.read = AsyncMock(return_value=missing)
    app.ctx.commands.rewind = AsyncMock()
    app.ctx.store.table.data[marker_key(0)] = b"5"
    async with app.faust.agents["zhucan.person"].test_context() as agent:
        for offset, name in ((3, "a"), (7, "b")):
            agent.sent_offset = offset
            await agent.put(identity(name), key=keys[name], partition=0)
        await settled(app)
    app.ctx.commands.read.assert_awaited_once_with(0, 5, 7)
    app.ctx.commands.rewind.assert_not_awaited()
    fees = [codec.decode(v)[1]["id_number"] for _, v in sent(app, "fee_standard")]
    assert fees == [ids["c"], ids["d"], ids["b"]]  # never a: it was applied before
    assert app.ctx.store.table.get(marker_key(0)) == b"8"
    assert _repairs(app) == [{"kind": "GAP_FILLED", "topic": topic, "partition": 0, "expected": 5, "seen": 7,
                              "at_ms": 0, "group": app.ctx.settings.streams_app_id}]
    assert app.ctx.metrics.total("zhucan_commands_already_applied_total") == 1


async def test_a_partition_never_committed_starts_at_its_log_start_not_at_the_first_record_handed_over(app):
    """No marker and no commit: the first record handed over is offset 2 (records 0 and 1 went to
    a worker that lost the partition, or Faust's seek race dropped them). The partition starts at
    its log start (0), so 0 and 1 are read from the broker and applied first; starting at the
    first record handed over skipped them for good (a full suite run: one person without a
    standard, the marker past them, no state)."""
    codec = Codec()
    ids, keys, identity = _gap_people(codec)
    topic = app.ctx.topics.person_commands
    app.ctx.commands.read = AsyncMock(return_value=[Fetched(topic, 0, offset, keys[name], identity(name), 0.0)
                                                    for offset, name in ((0, "a"), (1, "b"))])
    async with app.faust.agents["zhucan.person"].test_context() as agent:
        agent.sent_offset = 2
        await agent.put(identity("c"), key=keys["c"], partition=0)
        await settled(app)
    app.ctx.commands.read.assert_awaited_once_with(0, 0, 2)
    fees = [codec.decode(v)[1]["id_number"] for _, v in sent(app, "fee_standard")]
    assert fees == [ids["a"], ids["b"], ids["c"]]
    assert app.ctx.store.table.get(marker_key(0)) == b"3"


async def test_person_agent_reports_a_gap_whose_records_the_broker_no_longer_holds(app):
    codec = Codec()
    ids, keys, identity = _gap_people(codec)
    topic = app.ctx.topics.person_commands
    app.ctx.commands.read = AsyncMock(return_value=[Fetched(topic, 0, 6, keys["d"], identity("d"), 0.0)])
    app.ctx.store.table.data[marker_key(0)] = b"5"
    async with app.faust.agents["zhucan.person"].test_context() as agent:
        agent.sent_offset = 7
        await agent.put(identity("b"), key=keys["b"], partition=0)
        await settled(app)
    fees = [codec.decode(v)[1]["id_number"] for _, v in sent(app, "fee_standard")]
    assert fees == [ids["d"], ids["b"]]  # 5 was deleted before it was applied: nothing brings it back
    assert [(r["kind"], r["expected"], r["seen"]) for r in _repairs(app)] == [("GAP_FILLED", 5, 7),
                                                                              ("GAP_ACCEPTED", 5, 6)]
    assert app.ctx.store.table.get(marker_key(0)) == b"8"


async def test_person_agent_seeks_back_when_the_gap_cannot_be_read_and_applies_nothing_beyond_it(app):
    codec = Codec()
    ids, keys, identity = _gap_people(codec)
    app.ctx.commands.read = AsyncMock(side_effect=TimeoutError("no broker"))
    app.ctx.commands.rewind = AsyncMock()
    app.ctx.store.table.data[marker_key(0)] = b"5"
    async with app.faust.agents["zhucan.person"].test_context() as agent:
        agent.sent_offset = 7
        await agent.put(identity("b"), key=keys["b"], partition=0)
        await settled(app)
        assert sent(app, "fee_standard") == []
        app.ctx.commands.rewind.assert_awaited_once_with(0, 5)
        assert [r["kind"] for r in _repairs(app)] == ["GAP_REWIND"]
        agent.sent_offset = 5
        for name in "cdb":  # Faust's fetcher brings 5, 6, then 7 again
            await agent.put(identity(name), key=keys[name], partition=0)
        await settled(app)
    fees = [codec.decode(v)[1]["id_number"] for _, v in sent(app, "fee_standard")]
    assert fees == [ids["c"], ids["d"], ids["b"]]
    assert app.ctx.store.table.get(marker_key(0)) == b"8"


async def test_person_agent_dead_letters_an_internal_failure_and_goes_on(app, monkeypatch):
    codec = Codec()
    idn = new_id()
    key = person_key(idn, SECRET.encode()).encode()
    calls = {"n": 0}
    real = app.ctx.publisher.publish

    def flaky(unit, effects, key, *rest, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError(f"boom for {idn}")
        return real(unit, effects, key, *rest, **kw)

    monkeypatch.setattr(app.ctx.publisher, "publish", flaky)
    async with app.faust.agents["zhucan.person"].test_context() as agent:
        await agent.put(codec.encode("IdentityEvent", event(idn, "MINIMUM_LIVING")), key=key)
        await agent.put(codec.encode("IdentityEvent", event(new_id(), "ORPHAN", region="371002")), key=b"other")
        await settled(app)
    ((_, value),) = sent(app, "dead_letter")
    headers = dict(call_kwargs(app, "dead_letter")[0]["headers"])
    assert headers["zhucan.error.class"] == b"RuntimeError"
    assert idn.encode() not in headers["zhucan.error.message"]
    assert len(sent(app, "fee_standard")) == 1
    assert app.ctx.store.table.get(key) is None  # not saved: replaying the dead letter redoes the work
    # nor a ledger line or a count in the totals (issue #24): only the other person's
    (line,) = [codec.decode(v)[1] for _, v in sent(app, "ledger")]
    assert line["id_number"] != idn
    snapshots = [json.loads(app.ctx.ledger.snapshot(p, None).value) for p in range(app.ctx.settings.partitions)]
    assert sum(row[10] for doc in snapshots for row in doc["rows"]) == 1  # persons: the other one


async def test_a_command_whose_ledger_line_fails_leaves_no_trace(app, monkeypatch):
    """Issue #24: the line of ledger.v1 is encoded before the unit hears of the command's effects:
    if it fails, the command is dead-lettered with nothing of it sent or kept. Both ways a line
    is written fail for this person: encoded whole (``entry``) and from a remembered line's
    template (``_from_templates``, a newcomer's)."""
    codec = Codec()
    idn = new_id()
    key = person_key(idn, SECRET.encode()).encode()

    def failing(real, at):
        def call(*args, **kw):
            if args[at] == key:
                raise RuntimeError("the line cannot be encoded")
            return real(*args, **kw)
        return call

    monkeypatch.setattr(app.ctx.ledger, "entry", failing(app.ctx.ledger.entry, 0))
    monkeypatch.setattr(app.ctx.ledger, "_from_templates", failing(app.ctx.ledger._from_templates, 1))
    async with app.faust.agents["zhucan.person"].test_context() as agent:
        await agent.put(codec.encode("IdentityEvent", event(idn, "MINIMUM_LIVING")), key=key)
        await agent.put(codec.encode("IdentityEvent", event(new_id(), "ORPHAN", region="371002")), key=b"other")
        await settled(app)
    assert len(sent(app, "dead_letter")) == 1
    assert [codec.decode(v)[1]["id_number"] for _, v in sent(app, "fee_standard")] != [idn]
    assert len(sent(app, "fee_standard")) == 1 and len(sent(app, "ledger")) == 1
    assert app.ctx.store.table.get(key) is None


async def test_person_agent_handles_a_batch_record_and_dead_letters_one_bad_command(app):
    codec = Codec()
    a, b = new_id(), new_id()
    ka, kb = (person_key(x, SECRET.encode()).encode() for x in (a, b))
    record = batch.pack([(ka, codec.encode("IdentityEvent", event(a, "MINIMUM_LIVING"))), (kb, b"garbage"),
                         (kb, codec.encode("IdentityEvent", event(b, "EXTREME_POVERTY")))])
    async with app.faust.agents["zhucan.person"].test_context() as agent:
        await agent.put(record, key=b"~batch~0")
        await settled(app)
    fees = [codec.decode(v)[1]["id_number"] for _, v in sent(app, "fee_standard")]
    assert fees == [a, b]
    ((dead_key, dead_value),) = sent(app, "dead_letter")
    assert (dead_key, dead_value) == (kb, b"garbage")  # only the bad command, replayable on its own


async def test_person_agent_reads_the_internal_form_and_dead_letters_a_corrupt_one(app):
    codec = Codec()
    a, b = new_id(), new_id()
    ka, kb = (person_key(x, SECRET.encode()).encode() for x in (a, b))
    corrupt = batch.IDENTITY + b'["truncated"'
    record = batch.pack([(ka, batch.pack_identity(validate_identity(event(a, "MINIMUM_LIVING")))), (kb, corrupt),
                         (kb, codec.encode("IdentityEvent", event(b, "EXTREME_POVERTY")))])  # Avro still read
    async with app.faust.agents["zhucan.person"].test_context() as agent:
        await agent.put(record, key=b"~batch~0")
        await settled(app)
    fees = [codec.decode(v)[1] for _, v in sent(app, "fee_standard")]
    assert [(f["id_number"], f["category"]) for f in fees] == [(a, "MINIMUM_LIVING"), (b, "EXTREME_POVERTY")]
    assert sent(app, "dead_letter") == [(kb, corrupt)]
    assert dict(call_kwargs(app, "dead_letter")[0]["headers"])["zhucan.error.class"] == b"COMMAND_FORMAT"


def test_batch_framing_round_trip_and_truncation():
    items = [(b"k1", b"v1"), (b"k" * 64, b"x" * 70000)]
    assert list(batch.unpack(b"~batch~0", batch.pack(items))) == items
    assert list(batch.unpack(b"single", b"\xc3\x01abc")) == [(b"single", b"\xc3\x01abc")]
    with pytest.raises(batch.BatchFormatError):
        list(batch.unpack(None, batch.pack(items)[:-5]))


def test_batch_chunks_stay_within_the_size_and_keep_the_order():
    items = [(f"k{i}".encode(), bytes([i % 256]) * 300) for i in range(100)]
    chunks = batch.pack_chunks(items, max_bytes=4096)
    assert len(chunks) > 1 and all(len(c) <= 4096 for c in chunks)
    assert [kv for c in chunks for kv in batch.unpack(None, c)] == items
    assert batch.pack_chunks([(b"k", b"x" * 10000)], max_bytes=4096) == [batch.pack([(b"k", b"x" * 10000)])]
    assert batch.pack_chunks([], max_bytes=4096) == []


class _FakeBatch:
    def __init__(self, room: int) -> None:
        self.records: list[tuple] = []
        self.room = room
        self.closed = False

    def append(self, *, key, value, timestamp, headers):
        if self.closed or len(self.records) >= self.room or len(value) > 1000:
            self.closed = True  # as aiokafka's: a failed append closes the builder
            return None
        self.records.append((key, value, timestamp, headers))
        return object()


class _FakeAioProducer:
    """What Emitter.emit uses of aiokafka's producer: batches per topic and partition."""

    def __init__(self, partitions: dict[str, int], room: int = 3) -> None:
        self.partitions = partitions
        self.room = room
        self.sent: list[tuple[str, int, list]] = []
        self.client = self

    async def _wait_on_metadata(self, topic):
        return set(range(self.partitions[topic]))

    def create_batch(self):
        return _FakeBatch(self.room)

    async def send(self, topic, value, *, key, partition, timestamp_ms, headers):
        self.sent.append((topic, partition, [(key, value, timestamp_ms, headers)]))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def send_batch(self, b, topic, *, partition):
        self.sent.append((topic, partition, b.records))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(type("Meta", (), {"topic_partition": (topic, partition), "offset": 100})())
        return fut


async def test_emit_batches_per_partition_and_places_keys_as_the_default_partitioner(app):
    from aiokafka.partitioner import murmur2

    from streams.runtime.emit import Out

    names = app.ctx.topics
    fake = _FakeAioProducer({names.fee_standard: 4, names.review: 3, names.person_changelog: 4})
    app.ctx.send = app.ctx.emitter.emit  # the real one, on the fake producer
    app.faust.producer._ensure_producer = lambda: fake
    keys = [person_key(new_id(), SECRET.encode()).encode() for _ in range(20)]
    home = {k: app.ctx.partition_of(k) for k in keys}
    outs = [Out(names.fee_standard, k, b"fee", home=home[k]) for k in keys]
    outs += [Out(names.review, k, b"case", home=home[k]) for k in keys]  # 3 partitions: home does not apply
    await app.ctx.send(outs, wait=True)
    placed = {(t, k): p for t, p, recs in fake.sent for k, *_ in recs}
    for k in keys:
        default = (murmur2(k) & 0x7FFFFFFF)
        assert placed[(names.fee_standard, k)] == default % 4 == home[k]
        assert placed[(names.review, k)] == default % 3
    assert all(len(recs) <= 3 for _, _, recs in fake.sent)  # a full batch starts another
    assert sum(len(recs) for _, _, recs in fake.sent) == 40
    for topic in (names.fee_standard, names.review):  # order kept within each partition
        for p in range(4):
            in_p = [k for t, q, recs in fake.sent if (t, q) == (topic, p) for k, *_ in recs]
            assert in_p == [k for k in keys if placed[(topic, k)] == p]


def test_the_local_table_copy_is_kept_per_kafka_cluster(tmp_path):
    settings = Settings(kafka_bootstrap_servers="localhost:1", data_dir=tmp_path, app_id="agent-test")
    one = create_app(settings, shipped_book(), cluster="-UkGBdXVRwKNUEtfK3Cdjg")
    other = create_app(settings, shipped_book(), cluster="a/b")
    assert str(one.faust.conf.datadir).endswith("agent-test/-UkGBdXVRwKNUEtfK3Cdjg")
    assert str(other.faust.conf.datadir).endswith("agent-test/a_b")  # never a path of its own making


async def test_emit_sends_a_record_too_large_for_a_batch_alone_and_batches_the_rest(app):
    from streams.runtime.emit import Out

    names = app.ctx.topics
    fake = _FakeAioProducer({names.fee_standard: 4})
    app.ctx.send = app.ctx.emitter.emit
    app.faust.producer._ensure_producer = lambda: fake
    outs = [Out(names.fee_standard, b"k", v, partition=2) for v in (b"a", b"x" * 5000, b"b", b"c", b"d", b"e")]
    await app.ctx.send(outs, wait=True)
    assert [[v for _, v, *_ in recs] for _, _, recs in fake.sent] == [[b"a"], [b"x" * 5000], [b"b", b"c", b"d"], [b"e"]]


def test_a_rejection_goes_to_the_operators_topic_and_to_the_departments_own(app):
    codec = Codec()
    bad = new_id()
    bad = bad[:17] + ("1" if bad[17] != "1" else "2")
    out = intake(app, codec.encode("IdentityEvent", event(bad, "MONITORED_RELAPSE_RISK", source="RURAL_REVITALIZATION")),
                 source="RURAL_REVITALIZATION")
    topics = {what: (k, codec.decode(v)[1]) for what, k, v, _ in out}
    assert set(topics) == {"rejected", "rejected_own"}
    assert topics["rejected"] == topics["rejected_own"]  # the same record, the same person key
    assert app.ctx.topics.rejected_of["RURAL_REVITALIZATION"] == "identity.rejected.rural-revitalization.v1"


@dataclass
class Event:
    """What Faust hands the person agent's take."""

    message: Record
    key: bytes | None
    value: bytes


@pytest.mark.parametrize(("hold_s", "held_throughout"), [(1e-9, False), (60.0, True)])
async def test_a_take_lets_the_loop_run_between_batch_records(tmp_path, hold_s, held_throughout):
    """The intake's consumer heartbeats on the worker's loop (a 10 s session): a take of 64 batch
    records held it for seconds on a slow machine and the worker was expelled from the group.
    After ``person_hold_s`` the take lets the loop run before its next batch record."""
    from streams.settings import Tuning

    settings = Settings(kafka_bootstrap_servers="localhost:1", key_secret=SECRET, data_dir=tmp_path,
                        app_id="agent-test", store="memory://", tuning=Tuning(person_hold_s=hold_s))
    app = create_app(settings, shipped_book())
    app.faust.finalize()
    app.ctx.send = AsyncMock()
    app.ctx.commands.committed = AsyncMock(return_value=None)
    app.ctx.commands.log_start = AsyncMock(return_value=0)
    codec, ticks, seen = Codec(), [0], []

    async def ticker() -> None:  # another task on the loop: the intake's heartbeat
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    handle = app.person.handle

    async def counted(msg, key, unit):
        seen.append(ticks[0])
        await handle(msg, key, unit)

    app.person.handle = counted
    events = []
    for offset in range(5):
        a = new_id()
        value = batch.pack([(person_key(a, SECRET.encode()).encode(), codec.encode("IdentityEvent", event(a, "MINIMUM_LIVING")))])
        events.append(Event(Record(app.ctx.topics.person_commands, 0, offset, b"~batch~0", value), b"~batch~0", value))
    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    try:
        await app.person.take(events)
    finally:
        task.cancel()
    assert len(seen) == 5
    if held_throughout:  # within its hold, a take runs its batch records back to back
        assert len(set(seen)) == 1
    else:  # past it, the other task ran before each next batch record
        assert seen == sorted(set(seen))
    assert len(sent(app, "fee_standard")) == 5  # and the take did its work


def _app(tmp_path, **tuning) -> object:
    settings = Settings(kafka_bootstrap_servers="localhost:1", key_secret=SECRET, data_dir=tmp_path,
                        app_id="agent-test", tuning=tuning)
    app = create_app(settings, shipped_book())
    app.faust.finalize()
    app.faust.conf.store = "memory://"
    app.faust.flow_control.resume()
    app.ctx.send = AsyncMock()
    app.ctx.commands.committed = AsyncMock(return_value=None)
    app.ctx.commands.log_start = AsyncMock(return_value=0)
    app.ctx.clock = app.ctx.ledger.clock = lambda: 1_750_000_000_000
    return app


async def _with_memo_and_without(tmp_path, batches: list[list[tuple[bytes, bytes]]],
                                 counter: str) -> dict[int, list]:
    """Everything the person stage sends for ``batches`` (one batch record each), then the states
    and totals it keeps, with the memo on (8192) and off (0): equal. Of the four people of each
    batch, three are remembered (``counter``) with it on."""
    sent_by = {}
    for entries in (8192, 0):
        app = _app(tmp_path / str(entries), person_memo_entries=entries)
        async with app.faust.agents["zhucan.person"].test_context() as agent:
            for records in batches:
                await agent.put(batch.pack(records), key=b"~batch~0")
            await settled(app)
        sent_by[entries] = [(o.topic, o.key, o.value) for c in app.ctx.send.await_args_list for o in c.args[0]]
        sent_by[entries].append(sorted(app.ctx.store.table.data.items()))  # the states and totals kept
        remembered = app.ctx.metrics.values[counter][(("how", "remembered"),)]
        assert remembered == (3 if entries else 0)
    assert sent_by[8192] == sent_by[0]
    return sent_by


async def test_newcomers_of_the_same_facts_get_the_records_the_rules_give_each(tmp_path):
    """Issue #25, part 2: a batch's newcomers decided once per key (streams/domain/newcomers.py)
    send exactly what deciding each by the rules sends: their own fee standards and ledger lines,
    the totals counting each, their own states on the changelog."""
    codec = Codec()
    people = [(new_id(), name) for name in ("张三", "李四", "王五", "赵六")]
    records = [(person_key(idn, SECRET.encode()).encode(),
                codec.encode("IdentityEvent", {**event(idn, "MINIMUM_LIVING"), "name": name})) for idn, name in people]
    sent_by = await _with_memo_and_without(tmp_path, [records], "zhucan_person_newcomers_total")
    fees = [codec.decode(v)[1] for t, _, v in sent_by[8192][:-1] if t.endswith("fee-standard.v1")]
    assert [(f["id_number"], f["name"]) for f in fees] == people
    assert len({f["message_id"] for f in fees}) == 4
    ledger = [codec.decode(v)[1] for t, _, v in sent_by[8192][:-1] if t.endswith("ledger.v1")]
    assert [(row["id_number"], row["name"]) for row in ledger] == people


async def test_second_identities_of_the_same_facts_get_the_records_the_rules_give_each(tmp_path):
    """Issue #25, part 2: a second department's record for people held as newcomers, decided once
    per key of the two facts, sends exactly what deciding each by the rules sends: their own new
    fee standard versions, changed ledger lines and totals, their own two-fact states."""
    codec = Codec()
    people = [(new_id(), name) for name in ("张三", "李四", "王五", "赵六")]

    def records(category: str, eid: str) -> list[tuple[bytes, bytes]]:
        return [(person_key(idn, SECRET.encode()).encode(),
                 codec.encode("IdentityEvent", {**event(idn, category), "name": name, "event_id": f"{eid}-{idn}"}))
                for idn, name in people]
    sent_by = await _with_memo_and_without(tmp_path, [records("MINIMUM_LIVING", "a"), records("EXTREME_POVERTY", "b")],
                                           "zhucan_person_second_identities_total")
    fees = [codec.decode(v)[1] for t, _, v in sent_by[8192][:-1] if t.endswith("fee-standard.v1")]
    assert [(f["id_number"], f["name"], f["version"]) for f in fees] == \
        [(idn, name, 1) for idn, name in people] + [(idn, name, 2) for idn, name in people]
    assert len({f["message_id"] for f in fees}) == 8
    states = [PersonState.loads(v) for k, v in sent_by[8192][-1] if not k.startswith(b"~")]
    assert sorted((s.id_number, s.name, len(s.facts)) for s in states) == sorted((i, n, 2) for i, n in people)
