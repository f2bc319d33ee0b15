"""What a payment freezes: the figures of the version tax acted on, as the person really paid.

One pure function, ``settle``, used by the person stage (to freeze the year and raise the
cases a payment calls for) and by the ledger and settlement (to report what was given), so
the two can never disagree. Rules:

- The year freezes at the acknowledged version's figures and class, not the newest version's
  (豫医保办〔2024〕65号 三: 已享受的资助参保补贴不调整).
- A PAID at level 2 where the region allows the choice (攀医保〔2021〕58号 三(四)) is an
  ordinary payment of the level-2 premium minus the same subsidy; the year records level 2.
- The full premium paid by a person whose standard carried a subsidy follows the region's
  ``paid_in_full`` rule: subsidised from the next year and nothing back (鲁医保发〔2024〕22号
  二、三: 次年起; no 先缴后补), a tax refund of the difference (攀医保〔2021〕58号 五(三)), or a
  post-hoc subsidy (渝医保发〔2019〕78号 二(三); 豫医保办〔2024〕65号 六).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from streams.domain.enums import PaymentMode, PaymentState, ReviewKind
from streams.domain.policy.decide import yuan
from streams.domain.policy.spec import Policy
from streams.domain.timeline import Timeline

FULL_PAYMENTS = (PaymentState.PAID, PaymentState.ALREADY_PAID)
# Findings that leave money owed to the person (the year keeps the amount for the reports).
OWED_CODES = ("POST_HOC_SUBSIDY", "TAX_REFUND", "OWED_TO_PERSON")


@dataclass(frozen=True, slots=True)
class Figures:
    """One version of a person-year's fee standard (or, frozen, what the year was paid at)."""

    version: int
    mode: str
    category: str
    funding_source: str
    level: int
    premium_fen: int
    subsidy_fen: int
    payable_fen: int
    on_the_spot: bool
    policy_id: str
    region_code: str

    def to_list(self) -> list[object]:
        return [self.version, self.mode, self.category, self.funding_source, self.level, self.premium_fen,
                self.subsidy_fen, self.payable_fen, self.on_the_spot, self.policy_id, self.region_code]

    @classmethod
    def from_list(cls, values: list[object]) -> Figures:
        """From a v2 state's positional list."""
        return cls(*values)  # type: ignore[arg-type]

    def to_doc(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]

    @classmethod
    def from_doc(cls, doc: dict[str, object]) -> Figures:
        return cls(**doc)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Finding:
    """Something about a payment that a person must look at (a review case)."""

    kind: ReviewKind
    code: str
    detail: str
    amount_fen: int | None = None


def in_group_by_figures(fig: Figures, policy: Policy) -> bool:
    """Whether ``fig``'s person is in the group the region's ``paid_in_full`` clause names, as far
    as the figures tell (the person stage knows the certification day and says it exactly):
    the frozen figures are the same either way, only the case differs."""
    group = policy.spec.paid_in_full_group.value
    if group == "on_the_spot":
        return fig.on_the_spot
    if group == "in_time":
        return not fig.on_the_spot
    return True


def settle(fig: Figures, status: PaymentState, amount_fen: int, level: int | None,
           policy: Policy | None, in_group: bool | None = None) -> tuple[Figures, list[Finding]]:
    """The figures a freezing acknowledgement of ``fig`` leaves the year at, and the findings.

    A full premium paid where a subsidy was due: for the group the region's ``paid_in_full``
    clause names (``in_group``), that rule (next year and nothing back; a tax refund of the
    difference, the subsidy given through it; a post-hoc subsidy, not also settled as an
    enrolment subsidy); for anyone else the subsidy was not given and is owed to the person
    (``charged_in_full``), a case with the amount."""
    findings: list[Finding] = []
    if level is not None and level != fig.level:
        allowed = policy is not None and policy.spec.allow_higher_level.value and 2 in policy.spec.premiums
        if allowed and level == 2 and fig.level == 1 and fig.mode != PaymentMode.WITHDRAWN:
            assert policy is not None
            premium = policy.premium(2)
            fig = replace(fig, level=2, premium_fen=premium, payable_fen=premium - fig.subsidy_fen,
                          mode=PaymentMode.DIFFERENCE.value)
        else:
            findings.append(Finding(ReviewKind.PAYMENT_MISMATCH, "LEVEL_NOT_ALLOWED",
                                    f"enrolled at level {level}, the standard is level {fig.level} and the "
                                    f"region's policy does not allow that choice"))
    expected = fig.payable_fen
    if status in FULL_PAYMENTS and amount_fen > expected and fig.subsidy_fen > 0 and amount_fen >= fig.premium_fen:
        due = min(amount_fen - expected, fig.subsidy_fen)
        unsubsidised = replace(fig, subsidy_fen=0, payable_fen=fig.premium_fen)
        if policy is None:
            findings.append(Finding(ReviewKind.PAYMENT_MISMATCH, "AMOUNT_MISMATCH",
                                    f"paid {yuan(amount_fen)}, payable {yuan(expected)}; no policy says what is owed"))
            return fig, findings
        rule = policy.spec.paid_in_full
        if not (in_group if in_group is not None else in_group_by_figures(fig, policy)):
            owed = policy.spec.charged_in_full
            findings.append(Finding(ReviewKind.PAYMENT_MISMATCH, "OWED_TO_PERSON",
                                    f"charged the full premium {yuan(amount_fen)} though subsidised (payable "
                                    f"{yuan(expected)}): the subsidy of {yuan(due)} was not given and is owed to "
                                    f"the person ({owed.reference})", due))
            fig = unsubsidised
        elif rule.value == "next_year":
            fig = unsubsidised  # already enrolled and paid: subsidised from the next year, nothing back
        elif rule.value == "tax_refund":
            findings.append(Finding(ReviewKind.OTHER, "TAX_REFUND",
                                    f"paid {yuan(amount_fen)} but payable is {yuan(expected)}: tax refunds "
                                    f"{yuan(due)} ({rule.reference})", due))
        else:
            findings.append(Finding(ReviewKind.OTHER, "POST_HOC_SUBSIDY",
                                    f"paid {yuan(amount_fen)} but payable is {yuan(expected)}: post-hoc subsidy "
                                    f"of {yuan(due)} due ({rule.reference})", due))
            fig = unsubsidised  # paid by the post-hoc subsidy: not also an enrolment subsidy
    elif status in FULL_PAYMENTS or status is PaymentState.ZERO_DECLARED:
        if amount_fen != expected:
            findings.append(Finding(ReviewKind.PAYMENT_MISMATCH, "AMOUNT_MISMATCH",
                                    f"amount {yuan(amount_fen)} differs from payable {yuan(expected)} "
                                    f"of version {fig.version}"))
    return fig, findings


def in_paid_in_full_group(timeline: Timeline, fig: Figures, policy: Policy | None) -> bool:
    """Whether the person is in the group the region's ``paid_in_full`` clause names (by the
    certification day, which the figures alone do not tell: ``payments.in_group_by_figures``)."""
    if policy is None:
        return False
    group = policy.spec.paid_in_full_group.value
    if group == "on_the_spot":
        return in_group_by_figures(fig, policy)
    spells = [s for s in timeline.spells if s.category == fig.category]
    if not spells:
        return False
    since = min(s.since for s in spells)
    if group == "in_time":
        return since <= policy.in_time_until
    window = policy.spec.window  # certified_in_window
    return window.start <= since <= window.end
