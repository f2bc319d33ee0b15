"""Pure decision functions: which identities count for a year, and (identities, policy) -> a fee decision."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from streams.domain.departments import Departments
from streams.domain.enums import (
    CATEGORY_ZH,
    Category,
    FundingSource,
    PaymentMode,
)
from streams.domain.ids import birth_date
from streams.domain.policy.spec import (
    CategoryRule,
    FixedSubsidy,
    FullSubsidy,
    PercentSubsidy,
    Policy,
)
from streams.domain.timeline import Spell, held_through

_CATEGORY_ORDER = list(Category)


class Held(NamedTuple):
    """One identity the person holds, as the decision needs it (a NamedTuple: built per
    identity and year on the hot path, hashed as part of the decision's memo key)."""

    category: Category
    is_student: bool = False  # a student or, by the policy's child age, a child (学生儿童)


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
        """What, if changed, makes a new version: the figures, class, level and mode. Neither the
        basis text nor the policy's id does (an edited note or reference sends tax nothing)."""
        return (self.category, self.funding_source, self.contribution_level, self.premium_fen,
                self.subsidy_fen, self.payable_fen, self.payment_mode)

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
    example = " [示例值]" if (rule.example or policy.spec.premiums[sub.level].example) else ""
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


_MEMO: dict[tuple[str, frozenset[Held], Departments], Decision | None] = {}
_MEMO_LIMIT = 100_000


def decide(held: Iterable[Held], policy: Policy, departments: Departments) -> Decision | None:
    """The decision for a person holding ``held`` under ``policy``; None when no identity is
    subsidised here. ``departments`` name who reports each class, in the ``basis`` (the policy
    book's, ``PolicyBook.departments``).

    It depends only on the set of identities, never on the order they arrived in, so it is
    memoised per policy (content hash) and set: a province has few distinct combinations.
    """
    key = (policy.policy_id, frozenset(held), departments)  # the Departments object: hashed by identity, cheaply
    if key in _MEMO:
        return _MEMO[key]
    decision = _decide(key[1], policy, departments)
    if len(_MEMO) >= _MEMO_LIMIT:
        _MEMO.clear()
    _MEMO[key] = decision
    return decision


def _decide(held: frozenset[Held], policy: Policy, departments: Departments) -> Decision | None:
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
    if spec.resolution.example and len(candidates) > 1:
        rule_zh += " [示例值]"
    payable = best.premium - best.subsidy
    held_text = ", ".join(
        f"{CATEGORY_ZH[h.category]}({departments.zh_of_category[h.category]})" for h in unique
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


IN_TIME, ON_THE_SPOT = "in_time", "on_the_spot"


def qualify(spell: Spell, year: int, policy: Policy) -> str | None:
    """Whether an identity counts for ``year`` under the region-year's ``policy``, and how.

    From its start day (never the wall clock): on or before the cutoff (the window's end, or
    an earlier identity cutoff) it counts at the normal rate. After it, inside the year, the
    region's rule decides: on the spot (随参随缴) up to ``on_the_spot_until``, or nothing
    this year (次年起; Panzhihua's cutoff), except the categories a late exception names.
    A revocation dated in the year withdraws it; a change of class after the year's enrolment
    does not (``held_through``)."""
    if spell.since > policy.in_time_until:
        if spell.since > dt.date(year, 12, 31):
            return None
        late = late_until(spell.category, policy)
        if late is None or spell.since > late:
            spec = policy.spec
            if spec.outside_window.value != "on_the_spot" or spec.on_the_spot_until is None:
                return None
            if spell.since > spec.on_the_spot_until.value:
                return None
        how = ON_THE_SPOT
    else:
        how = IN_TIME
    return how if held_through(spell, year, enrolment_day(spell, policy)) else None


def enrolment_day(spell: Spell, policy: Policy) -> dt.date:
    """The day a year's enrolment is judged for ``spell`` (CONTRACT additions 2026-12-05): the
    payment window's last day, or the day certified for someone certified later."""
    return max(policy.spec.window.end, spell.since)


def late_until(category: str, policy: Policy) -> dt.date | None:
    """The last day a late exception keeps ``category`` subsidised (Chongqing's 脱贫攻坚期)."""
    days = [ex.until for ex in policy.spec.late_exceptions if category in ex.categories]
    return max(days) if days else None


def is_child(id_number: str, year: int, policy: Policy) -> bool:
    """Below the policy's child age on 1 January of ``year``, by the birth date in the ID number."""
    limit = policy.spec.child_age_below
    born = birth_date(id_number) if limit is not None else None
    if limit is None or born is None:
        return False
    first = dt.date(year, 1, 1)
    age = first.year - born.year - ((first.month, first.day) < (born.month, born.day))
    return age < limit.value
