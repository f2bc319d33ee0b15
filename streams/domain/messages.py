"""What flows through the person stage: the commands it applies and the effects it returns.

What the commands carry (decoded at the edge, typed before the domain sees them; the commands
themselves are in ``streams/domain/commands.py``): ``Identity`` (an identity change,
``streams/domain/identity.py``), ``PaymentAck`` (a tax acknowledgement) and ``Control`` (an
operator's command for one partition). Effects: a fee standard to publish, a review case, a
suspected un-enrolled person; each names the topic that publishes it nowhere: the topic's
``TopicSpec`` names the effect (``streams/kafka/topics.py``). ``describe()`` is the effect in
a log line, ID numbers masked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

from streams.domain.enums import (
    Channel,
    ClaimKind,
    ClaimOutcome,
    ClaimReason,
    ControlKind,
    InstructionKind,
    PaymentState,
    ReviewKind,
    Scheme,
)
from streams.domain.ids import mask_id


class PaymentAck(NamedTuple):
    """A tax acknowledgement (PaymentStatus), with its ID number normalised to 18 characters."""

    ack_id: str
    id_number: str
    insurance_year: int
    fee_version: int
    status: PaymentState
    amount_fen: int
    tax_reference: str
    acted_at: dt.datetime
    contribution_level: int | None = None  # CONTRACT additions 2026-12

    @classmethod
    def from_record(cls, value: dict[str, Any]) -> PaymentAck:
        """From a decoded PaymentStatus (Avro has checked the types and symbols)."""
        return cls(str(value["ack_id"]), str(value["id_number"]), int(value["insurance_year"]),
                   int(value["fee_version"]), PaymentState(value["status"]), int(value["amount_fen"]),
                   str(value.get("tax_reference") or ""), value["acted_at"], value.get("contribution_level"))

    def to_record(self) -> dict[str, Any]:
        return {**self._asdict(), "status": self.status.value}


class Control(NamedTuple):
    """An operator's command (ControlCommand), run by every partition over its own people."""

    command_id: str
    command: ControlKind
    region_code: str
    insurance_year: int
    issued_at: dt.datetime

    @classmethod
    def from_record(cls, value: dict[str, Any]) -> Control:
        return cls(str(value["command_id"]), ControlKind(value["command"]), str(value["region_code"]),
                   int(value["insurance_year"]), value["issued_at"])

    def to_record(self) -> dict[str, Any]:
        return {**self._asdict(), "command": self.command.value}


class Claim(NamedTuple):
    """A SubsidyClaim (money asked for a person), its ID number normalised to 18 characters."""

    claim_id: str
    kind: ClaimKind
    id_number: str
    name: str
    insurance_year: int
    enrolled_region_code: str
    scheme: Scheme
    amount_paid_fen: int
    paid_at: dt.datetime
    evidence: str
    submitted_at: dt.datetime

    @classmethod
    def from_record(cls, value: dict[str, Any]) -> Claim:
        return cls(str(value["claim_id"]), ClaimKind(value["kind"]), str(value["id_number"]), str(value["name"]),
                   int(value["insurance_year"]), str(value["enrolled_region_code"]), Scheme(value["scheme"]),
                   int(value["amount_paid_fen"]), value["paid_at"], str(value["evidence"]), value["submitted_at"])


class OtherChannel(NamedTuple):
    """An OtherChannelSubsidy: another funder's subsidy of the same premium (其他渠道资助)."""

    record_id: str
    funder: str
    id_number: str
    insurance_year: int
    amount_fen: int
    reported_at: dt.datetime

    @classmethod
    def from_record(cls, value: dict[str, Any]) -> OtherChannel:
        return cls(str(value["record_id"]), str(value["funder"]), str(value["id_number"]),
                   int(value["insurance_year"]), int(value["amount_fen"]), value["reported_at"])


@dataclass
class ClaimDecided:
    """A ClaimDecision: exactly one per claim id (CONTRACT rule 7)."""

    claim_id: str
    id_number: str
    insurance_year: int
    outcome: ClaimOutcome
    reasons: list[ClaimReason]
    amount_fen: int
    policy_id: str
    basis: str
    decided_at: int  # epoch ms
    code: str = ""  # a finer reason where none of the list fits (INVALID_ID, BAD_AMOUNT, NO_POLICY...)

    def describe(self) -> str:
        why = ",".join(self.reasons) or self.code or "-"
        return f"claim {self.claim_id} year {self.insurance_year} {self.outcome} ({why}) (id {mask_id(self.id_number)})"

    def to_record(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class InstructionIssued:
    """A PaymentInstruction: money to move to one person, once per cause (its id is the cause's)."""

    instruction_id: str
    kind: InstructionKind
    cause_id: str
    id_number: str
    name: str
    region_code: str
    insurance_year: int
    amount_fen: int
    category: str
    funding_source: str
    channel: Channel
    notify_sms: bool
    policy_id: str
    basis: str
    issued_at: int  # epoch ms

    def describe(self) -> str:
        return (f"instruction {self.instruction_id} {self.kind} {self.amount_fen} fen year {self.insurance_year} "
                f"via {self.channel} (id {mask_id(self.id_number)})")

    def to_record(self) -> dict[str, Any]:
        return dict(self.__dict__)


def instruction_id(kind: InstructionKind, cause_id: str) -> str:
    """The same cause always gives the same id (a redelivery, a replay or a restart finds it again)."""
    return hashlib.sha256(f"{kind}|{cause_id}".encode()).hexdigest()[:24]


@dataclass
class FeeStandardIssued:
    message_id: str
    id_number: str
    name: str
    region_code: str
    insurance_year: int
    version: int
    contribution_level: int
    premium_fen: int
    subsidy_fen: int
    payable_fen: int
    payment_mode: str
    on_the_spot: bool
    category: str
    funding_source: str
    policy_id: str
    basis: str
    issued_at: int  # epoch ms

    @classmethod
    def from_record(cls, value: dict[str, Any]) -> FeeStandardIssued:
        """The typed reading of a decoded FeeStandard record (the reports', the tax simulator's)."""
        at = value["issued_at"]
        return cls(**{**{name: value[name] for name in cls.__dataclass_fields__},
                      "issued_at": at if isinstance(at, int) else int(at.timestamp() * 1000)})

    def describe(self) -> str:
        return f"{self.message_id} year {self.insurance_year} v{self.version} (id {mask_id(self.id_number)})"

    def to_record(self) -> dict[str, Any]:
        return dict(self.__dict__)  # issued_at in epoch ms, as Avro's timestamp-millis carries it


@dataclass
class ReviewRaised:
    case_id: str
    kind: str
    id_number: str
    insurance_year: int | None
    detail: str
    raised_at: int
    code: str = ""  # machine-readable sub-kind: NO_POLICY, POST_HOC_SUBSIDY, WAITING_FOR_POLICY...
    amount_fen: int | None = None  # money the case is about (a refund or post-hoc subsidy)

    def describe(self) -> str:
        return (f"{self.case_id} {self.kind} {self.code} year {self.insurance_year} "
                f"(id {mask_id(self.id_number)})")

    def to_record(self) -> dict[str, Any]:
        return dict(self.__dict__)  # raised_at in epoch ms, as Avro's timestamp-millis carries it


@dataclass
class SuspectedFound:
    """A person with a live standard and no payment after the window (疑似未参保)."""

    id_number: str
    name: str
    region_code: str
    insurance_year: int
    fee_version: int
    since: dt.date
    reason: str

    def describe(self) -> str:
        return f"year {self.insurance_year} v{self.fee_version} since {self.since} (id {mask_id(self.id_number)})"

    def to_record(self) -> dict[str, Any]:
        return dict(self.__dict__)


Effect = FeeStandardIssued | ReviewRaised | SuspectedFound | ClaimDecided | InstructionIssued


def case_id(trigger: str, kind: ReviewKind, year: int | None) -> str:
    return hashlib.sha256(f"{trigger}|{kind}|{year}".encode()).hexdigest()[:24]


def unknown_payment(ack: PaymentAck, now_ms: int, detail: str) -> ReviewRaised:
    year = ack.insurance_year
    return ReviewRaised(
        case_id=case_id(ack.ack_id, ReviewKind.UNKNOWN_PAYMENT, year),
        kind=ReviewKind.UNKNOWN_PAYMENT.value, id_number=ack.id_number, insurance_year=year,
        detail=f"ack {ack.ack_id} ({ack.status.value}): {detail}", raised_at=now_ms, code="UNKNOWN_PAYMENT",
    )
