"""Pydantic models mirroring ``schemas/*.avsc`` (a test keeps fields, types and defaults equal).

Use them at the edges to build or check records in Python; ``to_avro()`` gives the
dict the codec encodes, ``from_avro()`` takes what it decodes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Source = Literal["CIVIL_AFFAIRS", "RURAL_REVITALIZATION", "DISABILITY", "VETERANS"]
Change = Literal["CERTIFIED", "UPDATED", "REVOKED", "DECEASED"]
Category = Literal[
    "EXTREME_POVERTY", "MINIMUM_LIVING", "LOW_INCOME_MARGINAL", "ORPHAN", "DE_FACTO_UNSUPPORTED_CHILD",
    "MONITORED_RELAPSE_RISK", "RELAPSED_INTO_POVERTY", "STABLY_OUT_OF_POVERTY", "SEVERE_DISABILITY",
    "GENERAL_DISABILITY", "ENTITLED_VETERAN", "REGISTERED_POOR", "ILLNESS_INDUCED_POVERTY",
]
LivingStatus = Literal["ALIVE", "DECEASED"]
FundingSource = Literal["MEDICAL_ASSISTANCE_FUND", "COUNTY_BUDGET", "OTHER"]
PaymentMode = Literal["ZERO_DECLARATION", "DIFFERENCE", "WITHDRAWN"]
PaymentState = Literal["PAID", "ZERO_DECLARED", "ALREADY_PAID", "REJECTED", "REFUNDED"]
RejectionReason = Literal[
    "SCHEMA", "ID_FORMAT", "ID_CHECKSUM", "CATEGORY_NOT_OF_SOURCE", "UNKNOWN_REGION", "MISSING_FIELD", "DATE_INVALID"
]
ReviewKind = Literal["NAME_CONFLICT", "PAYMENT_MISMATCH", "UNKNOWN_PAYMENT", "DOUBLE_SUBSIDY", "OTHER"]
ControlKind = Literal["OPEN_YEAR", "CLOSE_WINDOW", "SETTLE", "CHECK_COVERAGE"]
Fen = int  # money is whole fen (分), never a float


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")
    avro_name: str = Field("", exclude=True, repr=False)

    def to_avro(self) -> dict[str, Any]:
        return self.model_dump(exclude={"avro_name"})

    @classmethod
    def from_avro(cls, value: dict[str, Any]) -> Record:
        return cls.model_validate(value)


class IdentityEvent(Record):
    event_id: str
    source: Source
    change: Change
    id_number: str
    name: str
    category: Category
    region_code: str
    effective_date: dt.date
    occurred_at: dt.datetime
    is_student: bool = False
    previous_category: Category | None = None
    person_number: str | None = None
    living_status: LivingStatus | None = None


class FeeStandard(Record):
    message_id: str
    id_number: str
    name: str
    region_code: str
    insurance_year: int
    version: int
    contribution_level: int
    premium_fen: Fen
    subsidy_fen: Fen
    payable_fen: Fen
    payment_mode: PaymentMode
    on_the_spot: bool
    category: Category
    funding_source: FundingSource
    policy_id: str
    basis: str
    issued_at: dt.datetime


class PaymentStatus(Record):
    ack_id: str
    id_number: str
    insurance_year: int
    fee_version: int
    status: PaymentState
    amount_fen: Fen
    tax_reference: str
    acted_at: dt.datetime
    contribution_level: int | None = None


class Rejection(Record):
    event_id: str
    source: Source
    id_number: str
    reasons: list[RejectionReason]
    detail: str
    received_at: dt.datetime


class ReviewCase(Record):
    case_id: str
    kind: ReviewKind
    id_number: str
    insurance_year: int | None = None
    detail: str
    raised_at: dt.datetime
    code: str = ""
    amount_fen: Fen | None = None


class SuspectedUnenrolled(Record):
    id_number: str
    name: str
    region_code: str
    insurance_year: int
    fee_version: int
    since: dt.date
    reason: str


class SettlementLine(Record):
    region_code: str
    insurance_year: int
    category: Category
    funding_source: FundingSource
    on_the_spot: bool
    persons: int
    subsidy_fen: Fen
    as_of: dt.datetime


class ControlCommand(Record):
    command_id: str
    command: ControlKind
    region_code: str
    insurance_year: int
    issued_at: dt.datetime


MODELS: dict[str, type[Record]] = {
    m.__name__: m
    for m in (IdentityEvent, FeeStandard, PaymentStatus, Rejection, ReviewCase, SuspectedUnenrolled,
              SettlementLine, ControlCommand)
}
