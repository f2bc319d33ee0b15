"""The person stage's commands, typed and named as orders.

Each command of ``zhucan.person-commands`` decodes (``streams/runtime/wire.py``) to exactly one
of these, and ``streams/handlers.py`` maps each type to its handler:

- ``ApplyIdentity``: a department's identity change, validated at the intake, for one person;
- ``RecordPayment``: a tax acknowledgement, re-keyed by the person at the payments stage;
- ``DecideClaim``, ``RecordOtherChannel``: a county's claim, another funder's subsidy, re-keyed
  by the person at the money stage;
- ``OpenYear``, ``CheckCoverage``, ``Redecide``: an operator's command (control.v1), run by
  each partition over its own people;
- ``BuildLedger``: a partition's ledger built from its states (the first start of the ledger).

An operator's command kind becomes its order through ``ORDERS``; a kind that has no order
yet (CLOSE_WINDOW, SETTLE) is not run. NamedTuples: one is built per command on the hot path,
where a frozen dataclass's __init__ costs several times more.
"""

from __future__ import annotations

from typing import NamedTuple

from streams.domain.enums import ControlKind
from streams.domain.identity import Identity
from streams.domain.messages import Claim, Control, OtherChannel, PaymentAck


class ApplyIdentity(NamedTuple):
    identity: Identity


class RecordPayment(NamedTuple):
    ack: PaymentAck


class DecideClaim(NamedTuple):
    """A SubsidyClaim for one person (re-keyed at the intake loop's money stage)."""

    claim: Claim


class RecordOtherChannel(NamedTuple):
    """Another channel's subsidy of one person-year."""

    subsidy: OtherChannel


class OpenYear(NamedTuple):
    control: Control


class CheckCoverage(NamedTuple):
    control: Control


class Redecide(NamedTuple):
    control: Control


class PreviewRevision(NamedTuple):
    """What a REDECIDE with candidate policies would do, computed over a partition's people and
    reported (``zhucan.policy-previews``); nothing is changed. ``documents``: the candidate
    files, (name, YAML text); ``targets``: the (region, year) pairs to preview."""

    preview_id: str
    targets: tuple[tuple[str, int], ...]
    documents: tuple[tuple[str, str], ...]
    people: bool  # each person's row too (masked ID), not only the totals


class BuildLedger(NamedTuple):
    """The partition's ledger lines and totals built from its people's states, once (a person
    table written before the ledger existed; sent by the worker that holds the partition)."""

    command_id: str


Command = (ApplyIdentity | RecordPayment | DecideClaim | RecordOtherChannel | OpenYear | CheckCoverage | Redecide
           | PreviewRevision | BuildLedger)

# An operator's command kind -> its order (what control.v1 can ask of every partition).
ORDERS: dict[ControlKind, type[OpenYear] | type[CheckCoverage] | type[Redecide]] = {
    ControlKind.OPEN_YEAR: OpenYear,
    ControlKind.CHECK_COVERAGE: CheckCoverage,
    ControlKind.REDECIDE: Redecide,
}
