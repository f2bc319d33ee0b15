"""The person stage's commands, typed and named as orders.

Each command of ``zhucan.person-commands`` decodes (``streams/runtime/wire.py``) to exactly one
of these, and ``streams/handlers.py`` maps each type to its handler:

- ``ApplyIdentity``: a department's identity change, validated at the intake, for one person;
- ``RecordPayment``: a tax acknowledgement, re-keyed by the person at the payments stage;
- ``OpenYear``, ``CheckCoverage``: an operator's command (control.v1), run by each partition
  over its own people.

An operator's command kind becomes its order through ``ORDERS``; a kind that has no order
yet (CLOSE_WINDOW, SETTLE) is not run.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.domain.enums import ControlKind
from streams.domain.identity import Identity
from streams.domain.messages import Control, PaymentAck


@dataclass(frozen=True, slots=True)
class ApplyIdentity:
    identity: Identity


@dataclass(frozen=True, slots=True)
class RecordPayment:
    ack: PaymentAck


@dataclass(frozen=True, slots=True)
class OpenYear:
    control: Control


@dataclass(frozen=True, slots=True)
class CheckCoverage:
    control: Control


Command = ApplyIdentity | RecordPayment | OpenYear | CheckCoverage
PartitionOrder = OpenYear | CheckCoverage

# An operator's command kind -> its order (what control.v1 can ask of every partition).
ORDERS: dict[ControlKind, type[OpenYear] | type[CheckCoverage]] = {
    ControlKind.OPEN_YEAR: OpenYear,
    ControlKind.CHECK_COVERAGE: CheckCoverage,
}
