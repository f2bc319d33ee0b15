"""Pure decision functions: (identities held, policy, date) -> a fee decision with its basis."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from streams.domain.categories import (
    CATEGORY_SOURCE,
    CATEGORY_ZH,
    SOURCE_ZH,
    Category,
    FundingSource,
    PaymentMode,
)
from streams.domain.exceptions import NoPolicy
from streams.domain.policy import (
    CategoryRule,
    FixedSubsidy,
    FullSubsidy,
    PercentSubsidy,
    Policy,
    PolicyBook,
)

_CATEGORY_ORDER = list(Category)


@dataclass(frozen=True)
class Held:
    """One identity the person holds, as the decision needs it."""

    category: Category
    is_student: bool = False


@dataclass(frozen=True)
class Decision:
    category: Category
    funding_source: FundingSource
    contribution_level: int
    premium_fen: int
    subsidy_fen: int
    payable_fen: int
    payment_mode: PaymentMode
    policy_id: str
    basis: str

    def fingerprint(self) -> tuple[object, ...]:
        """What, if changed, makes a new version (the basis text alone does not)."""
        return (self.category, self.funding_source, self.contribution_level, self.premium_fen,
                self.subsidy_fen, self.payable_fen, self.payment_mode, self.policy_id)

    @cached_property
    def fingerprint_text(self) -> str:
        return "|".join(str(x) for x in self.fingerprint())


def cite(reference: str) -> str:
    """The document and clause of a reference, without its quoted gloss."""
    return reference.split(" (", 1)[0]


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}元"


def _percent_of(amount: int, percent: int) -> int:
    """Integer percentage, rounded half up (money stays in whole fen)."""
    return (amount * percent + 50) // 100


@dataclass(frozen=True)
class _Candidate:
    held: Held
    rule: CategoryRule
    level: int
    premium: int
    subsidy: int
    text: str


def _candidate(held: Held, rule: CategoryRule, policy: Policy) -> _Candidate:
    sub = rule.student if (held.is_student and rule.student is not None) else rule.subsidy
    premium = policy.premium(sub.level)
    level_zh = "一档" if sub.level == 1 else "二档"
    example = " [示例值]" if rule.example else ""
    if isinstance(sub, FullSubsidy):
        subsidy, text = premium, f"{level_zh}全额资助 {yuan(premium)}"
    elif isinstance(sub, FixedSubsidy):
        subsidy = min(sub.amount_fen, premium)
        text = f"{level_zh}定额资助 {yuan(subsidy)}"
    elif isinstance(sub, PercentSubsidy):
        subsidy = _percent_of(premium, sub.percent)
        text = f"{level_zh} {sub.percent}% 定额资助 {yuan(subsidy)}"
    else:  # pragma: no cover - the union is closed
        raise TypeError(sub)
    if held.is_student and rule.student is not None:
        text += " (学生儿童)"
    return _Candidate(held, rule, sub.level, premium, subsidy, text + example)


def _rank(order: list[Category], category: Category) -> int:
    return order.index(category) if category in order else len(order) + _CATEGORY_ORDER.index(category)


_MEMO: dict[tuple[str, frozenset[Held]], Decision | None] = {}
_MEMO_LIMIT = 100_000


def decide(held: Iterable[Held], policy: Policy) -> Decision | None:
    """The decision for a person holding ``held`` under ``policy``; None when no identity is subsidised here.

    It depends only on the set of identities, never on the order they arrived in, so it is
    memoised per policy (content hash) and set: a province has few distinct combinations.
    """
    key = (policy.policy_id, frozenset(held))
    if key in _MEMO:
        return _MEMO[key]
    decision = _decide(key[1], policy)
    if len(_MEMO) >= _MEMO_LIMIT:
        _MEMO.clear()
    _MEMO[key] = decision
    return decision


def _decide(held: frozenset[Held], policy: Policy) -> Decision | None:
    spec = policy.spec
    unique = sorted(held, key=lambda h: (_rank(spec.resolution.order, h.category), h.is_student))
    if not unique:
        return None
    candidates = [_candidate(h, spec.subsidies[h.category], policy) for h in unique if h.category in spec.subsidies]
    if not candidates:
        return None
    if spec.resolution.rule == "highest":
        best = min(candidates, key=lambda c: (-c.subsidy, _rank(spec.resolution.order, c.held.category)))
        rule_zh = "就高"
    else:
        best = min(candidates, key=lambda c: _rank(spec.resolution.order, c.held.category))
        rule_zh = "优先级"
    payable = best.premium - best.subsidy
    held_text = ", ".join(
        f"{CATEGORY_ZH[h.category]}({SOURCE_ZH[CATEGORY_SOURCE[h.category]]})" for h in unique
    )
    basis = (
        f"持有: {held_text}; 规则: {rule_zh} ({cite(spec.resolution.reference)}); "
        f"按{CATEGORY_ZH[best.held.category]}: {best.text} ({cite(best.rule.reference)})"
    )
    return Decision(
        category=best.held.category,
        funding_source=best.rule.funding_source,
        contribution_level=best.level,
        premium_fen=best.premium,
        subsidy_fen=best.subsidy,
        payable_fen=payable,
        payment_mode=PaymentMode.ZERO_DECLARATION if payable == 0 else PaymentMode.DIFFERENCE,
        policy_id=policy.policy_id,
        basis=basis,
    )


@dataclass(frozen=True)
class YearAssignment:
    year: int
    on_the_spot: bool


def assign_year(book: PolicyBook, region_code: str, effective: dt.date) -> YearAssignment:
    """The first insurance year an identity starting on ``effective`` counts for.

    Certified before or inside a year's window (up to its identity cutoff): that
    year. After it but within the year: the region's outside-window rule, either
    that year on the spot (随参随缴) or the next year (次年起). Decided from the
    event's own date, never the wall clock.
    """
    years = book.years(region_code)
    if not years:
        raise NoPolicy(region_code, None)
    for year in years:
        policy = book.lookup(region_code, year)
        if effective <= policy.in_time_until:
            return YearAssignment(year, False)
        if effective <= dt.date(year, 12, 31) and policy.spec.outside_window.value == "on_the_spot":
            return YearAssignment(year, True)
    raise NoPolicy(region_code, max(years) + 1, f"identity starting {effective} is after every policy year")
