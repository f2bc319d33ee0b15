"""One handler map, one effect list (issue #21).

- Every command type has exactly one handler (``streams/handlers.py`` HANDLERS), every
  operator's order is a command, and every decoder of ``zhucan.person-commands`` gives one of
  them.
- No ``isinstance`` and no ``kind ==`` dispatch in the handlers, the stages or the wire: a
  new command is a type, a decoder entry and a handler, found by the maps.
- Every effect the domain can return is published by exactly one topic (its ``TopicSpec``),
  whose record exists in ``schemas/``, and counted by a metric with a HELP line.
- The stages stand on the context: none imports ``streams.app`` or the worker, and the
  ``StageContext`` is below them (``streams.runtime``).
"""

from __future__ import annotations

import ast
import datetime as dt
import typing
from pathlib import Path

import pytest

from schemas.codec import Codec
from schemas.exceptions import DecodeError
from streams.domain import commands as cmds
from streams.domain import messages
from streams.domain.enums import Category, Change
from streams.domain.identity import Identity
from streams.domain.messages import Control, PaymentAck
from streams.handlers import HANDLERS
from streams.kafka.topics import TOPICS, Topics
from streams.runtime import wire
from streams.runtime.metrics import Metrics
from tests.fixtures import event, new_id, payment

ROOT = Path(__file__).resolve().parents[2]
DISPATCH_FREE = [ROOT / "streams" / "handlers.py", ROOT / "streams" / "runtime" / "wire.py",
                 *sorted((ROOT / "streams" / "stages").glob("*.py"))]


def _dispatch(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
            found.append(f"{path.name}:{node.lineno} isinstance")
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq, ast.Is, ast.IsNot))
                                                 for op in node.ops):  # a membership test is no dispatch
            names = [ast.unparse(x) for x in (node.left, *node.comparators)]
            if any("ControlKind." in n or n.split(".")[-1] in ("kind", "command") for n in names):
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_type_or_kind_dispatch_in_the_handlers_the_stages_or_the_wire():
    assert len(DISPATCH_FREE) >= 6  # handlers, wire and the stages' pages
    assert [hit for path in DISPATCH_FREE for hit in _dispatch(path)] == []


def test_the_scan_sees_dispatch_where_there_is_some(tmp_path):
    """The test above would find it (a planted page)."""
    page = tmp_path / "page.py"
    page.write_text("def f(c, k):\n    if isinstance(c, int):\n        pass\n    if k.kind == ControlKind.OPEN_YEAR:\n"
                    "        pass\n", encoding="utf-8")
    assert len(_dispatch(page)) == 2


def test_every_command_has_exactly_one_handler_and_every_order_is_a_command():
    commands = set(typing.get_args(cmds.Command))
    assert set(HANDLERS) == commands
    # the operators' orders of control.v1; a person's commands and the policy preview come otherwise
    assert set(cmds.ORDERS.values()) == commands - {cmds.ApplyIdentity, cmds.RecordPayment, cmds.PreviewRevision,
                                                    cmds.DecideClaim, cmds.RecordOtherChannel, cmds.BuildLedger}


def test_every_form_of_a_command_decodes_to_its_order():
    codec = Codec()
    idn = new_id()
    ident = Identity("e-1", "CIVIL_AFFAIRS", Change.CERTIFIED, idn, "张三", Category.MINIMUM_LIVING, "410102",
                     dt.date(2026, 1, 1), dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    ack = PaymentAck.from_record({**payment(idn, 2026, 1), "acted_at": dt.datetime(2026, 2, 1, tzinfo=dt.UTC)})
    control = {"command_id": "c-1", "region_code": "410102", "insurance_year": 2026,
               "issued_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)}
    forms = {
        wire.pack_identity(ident): cmds.ApplyIdentity(ident),
        wire.pack_payment(ack): cmds.RecordPayment(ack),
        codec.encode("PaymentStatus", ack.to_record()): cmds.RecordPayment(ack),
        codec.encode("ControlCommand", {**control, "command": "OPEN_YEAR"}): cmds.OpenYear(
            Control.from_record({**control, "command": "OPEN_YEAR"})),
        codec.encode("ControlCommand", {**control, "command": "CHECK_COVERAGE"}): cmds.CheckCoverage(
            Control.from_record({**control, "command": "CHECK_COVERAGE"})),
        codec.encode("ControlCommand", {**control, "command": "REDECIDE"}): cmds.Redecide(
            Control.from_record({**control, "command": "REDECIDE"})),
        wire.pack_preview(cmds.PreviewRevision("p-1", (("410000", 2025),), (("a.yaml", "x: 1"),), True)):
            cmds.PreviewRevision("p-1", (("410000", 2025),), (("a.yaml", "x: 1"),), True),
    }
    for data, order in forms.items():
        assert wire.decode_command(data, codec) == order
    assert {type(wire.decode_command(codec.encode("IdentityEvent", event(idn, "MINIMUM_LIVING")), codec))} == {
        cmds.ApplyIdentity}
    with pytest.raises(DecodeError) as info:  # a kind no order runs is a typed refusal
        wire.decode_command(codec.encode("ControlCommand", {**control, "command": "SETTLE"}), codec)
    assert info.value.reason == "UNKNOWN_COMMAND"


def test_every_effect_has_one_topic_a_schema_and_a_counted_metric():
    effects = set(typing.get_args(messages.Effect))
    routed = [s.effect for s in TOPICS if s.effect is not None]
    assert sorted(e.__name__ for e in routed) == sorted(e.__name__ for e in effects)  # each once
    codec = Codec()
    help_lines = Metrics().render()
    for spec in TOPICS:
        if spec.effect is None:
            continue
        assert spec.record in codec.schemas, spec
        assert spec.counted is not None and f"# HELP {spec.counted.name} " in help_lines, spec
        assert all(hasattr(spec.effect, "__dataclass_fields__") and label in spec.effect.__dataclass_fields__
                   for label in spec.counted.labels), spec
    assert Topics().effects.keys() == effects
