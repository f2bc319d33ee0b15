"""`zhucan policy check|explain`."""

from __future__ import annotations

import sys
from pathlib import Path

from streams.domain.enums import CATEGORY_BY_ZH, Category
from streams.domain.exceptions import DomainError
from streams.domain.policy.decide import Held, decide, yuan
from streams.policies import SHIPPED_POLICY_DIR, load_book


def policy_check(directory: Path | str | None) -> int:
    where = directory or SHIPPED_POLICY_DIR
    try:
        book = load_book(where)
    except DomainError as exc:
        print(f"policy check FAILED in {where}:\n{exc}", file=sys.stderr)
        return 1
    for policy in book:
        examples = policy.spec.examples()
        print(f"ok  {policy.policy_id:<28} {policy.spec.region_name} {Path(policy.origin).name}")
        for path in examples:  # every value the notices do not give: the bureau must set it
            print(f"      example value (示例值, not from the notice): {path}")
    return 0


def parse_category(text: str) -> Category:
    if text in Category.__members__:
        return Category(text)
    if text in CATEGORY_BY_ZH:
        return CATEGORY_BY_ZH[text]
    raise ValueError(f"unknown category {text!r}; use a symbol ({', '.join(Category)}) or its Chinese name")


def policy_explain(directory: Path | None, region: str | None, year: int | None, categories: list[str],
                   student: bool) -> int:
    if not region or not year or not categories:
        print("policy explain needs --region, --year and at least one --category", file=sys.stderr)
        return 2
    try:
        book = load_book(directory)
        policy = book.lookup(region, year)
        held = [Held(parse_category(c), student) for c in categories]
    except (DomainError, ValueError) as exc:
        print(f"policy explain: {exc}", file=sys.stderr)
        return 1
    decision = decide(held, policy, book.departments)
    if decision is None:
        print(f"{policy.policy_id}: none of {', '.join(categories)} is subsidised in region {region} year {year}")
        return 0
    print(f"policy     {policy.policy_id} ({policy.spec.region_name}, {Path(policy.origin).name})")
    print(f"category   {decision.category}  funding {decision.funding_source}")
    print(f"level      {decision.contribution_level}")
    print(f"premium    {yuan(decision.premium_fen)}  subsidy {yuan(decision.subsidy_fen)}  payable {yuan(decision.payable_fen)}  ({decision.payment_mode})")
    print(f"basis      {decision.basis}")
    return 0
