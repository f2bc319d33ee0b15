"""The contract's enums, mirrored from ``schemas/*.avsc`` (``tests/unit/schemas/test_enums.py``
keeps every symbol equal), and their Chinese names.

The departments (IdentityEvent.source) are not an enum here: they are data, one entry each in
``streams/domain/departments.py``, so adding one is that entry plus the schema's new symbol."""

from __future__ import annotations

from enum import StrEnum


class Change(StrEnum):
    CERTIFIED = "CERTIFIED"
    UPDATED = "UPDATED"
    REVOKED = "REVOKED"
    DECEASED = "DECEASED"


class Category(StrEnum):
    EXTREME_POVERTY = "EXTREME_POVERTY"
    MINIMUM_LIVING = "MINIMUM_LIVING"
    LOW_INCOME_MARGINAL = "LOW_INCOME_MARGINAL"
    ORPHAN = "ORPHAN"
    DE_FACTO_UNSUPPORTED_CHILD = "DE_FACTO_UNSUPPORTED_CHILD"
    MONITORED_RELAPSE_RISK = "MONITORED_RELAPSE_RISK"
    RELAPSED_INTO_POVERTY = "RELAPSED_INTO_POVERTY"
    STABLY_OUT_OF_POVERTY = "STABLY_OUT_OF_POVERTY"
    SEVERE_DISABILITY = "SEVERE_DISABILITY"
    GENERAL_DISABILITY = "GENERAL_DISABILITY"
    ENTITLED_VETERAN = "ENTITLED_VETERAN"
    REGISTERED_POOR = "REGISTERED_POOR"  # 建档立卡贫困人口 (渝医保发〔2019〕78号 一(四)); CONTRACT additions 2026-12
    ILLNESS_INDUCED_POVERTY = "ILLNESS_INDUCED_POVERTY"  # 因病致贫家庭重病患者 (一(五)); CONTRACT additions 2026-12


class LivingStatus(StrEnum):
    ALIVE = "ALIVE"
    DECEASED = "DECEASED"


class FundingSource(StrEnum):
    MEDICAL_ASSISTANCE_FUND = "MEDICAL_ASSISTANCE_FUND"
    COUNTY_BUDGET = "COUNTY_BUDGET"
    OTHER = "OTHER"


class PaymentMode(StrEnum):
    ZERO_DECLARATION = "ZERO_DECLARATION"
    DIFFERENCE = "DIFFERENCE"
    WITHDRAWN = "WITHDRAWN"


class PaymentState(StrEnum):
    PAID = "PAID"
    ZERO_DECLARED = "ZERO_DECLARED"
    ALREADY_PAID = "ALREADY_PAID"
    REJECTED = "REJECTED"
    REFUNDED = "REFUNDED"


class LedgerState(StrEnum):
    """A person-year's state in the ledger (ledger.v1): tax's word on it, or WITHDRAWN."""

    NO_ANSWER = "NO_ANSWER"
    PAID = "PAID"
    ZERO_DECLARED = "ZERO_DECLARED"
    ALREADY_PAID = "ALREADY_PAID"
    REJECTED = "REJECTED"
    REFUNDED = "REFUNDED"
    WITHDRAWN = "WITHDRAWN"


FREEZING_STATES = frozenset({PaymentState.PAID, PaymentState.ZERO_DECLARED, PaymentState.ALREADY_PAID})


class RejectionReason(StrEnum):
    SCHEMA = "SCHEMA"
    ID_FORMAT = "ID_FORMAT"
    ID_CHECKSUM = "ID_CHECKSUM"
    CATEGORY_NOT_OF_SOURCE = "CATEGORY_NOT_OF_SOURCE"
    UNKNOWN_REGION = "UNKNOWN_REGION"
    MISSING_FIELD = "MISSING_FIELD"
    DATE_INVALID = "DATE_INVALID"


class ReviewKind(StrEnum):
    NAME_CONFLICT = "NAME_CONFLICT"
    PAYMENT_MISMATCH = "PAYMENT_MISMATCH"
    UNKNOWN_PAYMENT = "UNKNOWN_PAYMENT"
    DOUBLE_SUBSIDY = "DOUBLE_SUBSIDY"
    OTHER = "OTHER"


class ControlKind(StrEnum):
    OPEN_YEAR = "OPEN_YEAR"
    CLOSE_WINDOW = "CLOSE_WINDOW"
    SETTLE = "SETTLE"
    CHECK_COVERAGE = "CHECK_COVERAGE"
    REDECIDE = "REDECIDE"  # CONTRACT additions 2026-12-05



# -- money to people (CONTRACT additions 2026-12: claims, decisions, payment instructions) --------

class ClaimKind(StrEnum):
    CROSS_REGION_ENROLMENT = "CROSS_REGION_ENROLMENT"  # 异地参保: paid in full elsewhere, claims at the certifying county
    EMPLOYEE_INSURANCE = "EMPLOYEE_INSURANCE"  # enrolled individually in employee insurance (渝 三)
    PAID_IN_FULL = "PAID_IN_FULL"  # paid the full premium before being certified (事后补助)


class Scheme(StrEnum):
    RESIDENT = "RESIDENT"
    EMPLOYEE = "EMPLOYEE"


class ClaimOutcome(StrEnum):
    APPROVED = "APPROVED"
    REFUSED = "REFUSED"
    REVIEW = "REVIEW"


class ClaimReason(StrEnum):
    NOT_ASSISTED_IN_YEAR = "NOT_ASSISTED_IN_YEAR"
    ALREADY_SUBSIDISED = "ALREADY_SUBSIDISED"
    NOT_ENROLLED = "NOT_ENROLLED"
    NOT_ALLOWED_BY_POLICY = "NOT_ALLOWED_BY_POLICY"
    AMOUNT_ABOVE_PAID = "AMOUNT_ABOVE_PAID"
    DUPLICATE_CLAIM = "DUPLICATE_CLAIM"
    AFTER_DEADLINE = "AFTER_DEADLINE"
    ENROLLED_IN_HOME_REGION = "ENROLLED_IN_HOME_REGION"


class InstructionKind(StrEnum):
    CROSS_REGION_SUBSIDY = "CROSS_REGION_SUBSIDY"
    EMPLOYEE_INSURANCE_REFUND = "EMPLOYEE_INSURANCE_REFUND"
    POST_HOC_SUBSIDY = "POST_HOC_SUBSIDY"
    LATE_DATA_REFUND = "LATE_DATA_REFUND"


class Channel(StrEnum):
    SOCIAL_SECURITY_CARD = "SOCIAL_SECURITY_CARD"  # 一卡通, to the social-security card's bank account
    TAX_REFUND = "TAX_REFUND"
    PAYROLL_BANK_CARD = "PAYROLL_BANK_CARD"  # the bank card that pays the person's contribution


class SettlementKind(StrEnum):
    """A settlement line's money: an enrolment subsidy (through the fee standard) or an instruction's kind."""

    ENROLMENT_SUBSIDY = "ENROLMENT_SUBSIDY"
    CROSS_REGION_SUBSIDY = "CROSS_REGION_SUBSIDY"
    EMPLOYEE_INSURANCE_REFUND = "EMPLOYEE_INSURANCE_REFUND"
    POST_HOC_SUBSIDY = "POST_HOC_SUBSIDY"
    LATE_DATA_REFUND = "LATE_DATA_REFUND"


# What an approved claim of each kind pays as.
PAYS_AS: dict[ClaimKind, InstructionKind] = {
    ClaimKind.CROSS_REGION_ENROLMENT: InstructionKind.CROSS_REGION_SUBSIDY,
    ClaimKind.EMPLOYEE_INSURANCE: InstructionKind.EMPLOYEE_INSURANCE_REFUND,
    ClaimKind.PAID_IN_FULL: InstructionKind.POST_HOC_SUBSIDY,
}

CATEGORY_ZH: dict[Category, str] = {
    Category.EXTREME_POVERTY: "特困",
    Category.MINIMUM_LIVING: "低保",
    Category.LOW_INCOME_MARGINAL: "低保边缘",
    Category.ORPHAN: "孤儿",
    Category.DE_FACTO_UNSUPPORTED_CHILD: "事实无人抚养儿童",
    Category.MONITORED_RELAPSE_RISK: "监测对象",
    Category.RELAPSED_INTO_POVERTY: "返贫致贫",
    Category.STABLY_OUT_OF_POVERTY: "已稳定脱贫",
    Category.SEVERE_DISABILITY: "重度残疾",
    Category.GENERAL_DISABILITY: "一般残疾",
    Category.ENTITLED_VETERAN: "优抚对象",
    Category.REGISTERED_POOR: "建档立卡贫困人口",
    Category.ILLNESS_INDUCED_POVERTY: "因病致贫重病患者",
}

# Chinese names accepted in department files (import), besides the enum symbols.
CATEGORY_BY_ZH: dict[str, Category] = {
    **{zh: cat for cat, zh in CATEGORY_ZH.items()},
    "特困人员": Category.EXTREME_POVERTY,
    "特困供养人员": Category.EXTREME_POVERTY,
    "低保对象": Category.MINIMUM_LIVING,
    "低保家庭成员": Category.MINIMUM_LIVING,
    "低保边缘家庭成员": Category.LOW_INCOME_MARGINAL,
    "防止返贫监测对象": Category.MONITORED_RELAPSE_RISK,
    "返贫致贫人口": Category.RELAPSED_INTO_POVERTY,
    "已稳定脱贫人口": Category.STABLY_OUT_OF_POVERTY,
    "脱贫人口": Category.STABLY_OUT_OF_POVERTY,
    "重度残疾人员": Category.SEVERE_DISABILITY,
    "一般残疾人员": Category.GENERAL_DISABILITY,
    "农村建档立卡贫困人口": Category.REGISTERED_POOR,
    "因病致贫家庭重病患者": Category.ILLNESS_INDUCED_POVERTY,
}
