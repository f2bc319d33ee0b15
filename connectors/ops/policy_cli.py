"""`zhucan policy check|explain|diff|status|history`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from streams.domain.enums import CATEGORY_BY_ZH, Category
from streams.domain.exceptions import DomainError
from streams.domain.policy.decide import Held, decide, yuan
from streams.policies import SHIPPED_POLICY_DIR, load_book
from streams.settings import Settings


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


def _masked_money(fen: int | None) -> str:
    return "-" if fen is None else yuan(fen)


def policy_diff(settings: Settings, directory: str | None, region: str | None, year: int | None, people: bool,
                as_json: bool, timeout_s: float) -> int:
    """What a REDECIDE with the policies of ``directory`` would do, per class, from the workers."""
    from connectors.ops.revision import RevisionError, request_preview

    if not directory:
        print("policy diff needs the candidate policy directory", file=sys.stderr)
        return 2
    try:
        preview = request_preview(settings, Path(directory), region, year, people, timeout_s)
    except RevisionError as exc:
        print(f"policy diff: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(preview.as_dict(), ensure_ascii=False))
        return 0
    where = ", ".join(f"{r} {y}" for r, y in preview.targets)
    print(f"preview {preview.preview_id}: REDECIDE of {where} with {directory}")
    print(f"  {preview.scanned} people scanned by the workers; {preview.changed} person-years would change")
    if preview.by_class:
        print(f"  {'class':<28} {'person-years':>12} {'subsidy now':>14} {'after':>14} {'change':>14}")
        for category, (n, old, new) in sorted(preview.by_class.items()):
            print(f"  {category:<28} {n:>12} {yuan(old):>14} {yuan(new):>14} {yuan(new - old):>14}")
        total_old = sum(v[1] for v in preview.by_class.values())
        total_new = sum(v[2] for v in preview.by_class.values())
        print(f"  {'total':<28} {'':>12} {yuan(total_old):>14} {yuan(total_new):>14} {yuan(total_new - total_old):>14}")
    for category, (n, fen) in sorted(preview.raised.items()):
        print(f"  frozen (paid) years of {category} whose raise would be a POLICY_REVISION case: {n}, "
              f"difference {yuan(fen)} (the years keep what was paid)")
    if people:
        for row in preview.people:
            masked, y, county, old_c, old_f, new_c, new_f, frozen, raised = row
            paid = f"  paid; raise {yuan(raised)}" if frozen else ""
            print(f"  {masked:<20} {y} {county} {old_c or '-'} {_masked_money(old_f)} -> {new_c or '-'} "
                  f"{_masked_money(new_f)}{paid}")
    return 0


def policy_status(settings: Settings, as_json: bool) -> int:
    """The running workers and their policy ids; exit 1 when they disagree or none runs."""
    from connectors.ops.revision import RevisionError, one_book, worker_policies

    workers = worker_policies(settings)
    try:
        one_book(settings, workers)
        agreed, why = True, ""
    except RevisionError as exc:
        agreed, why = False, str(exc)
    if as_json:
        print(json.dumps({"workers": [w.__dict__ for w in workers], "one_book": agreed, "problem": why},
                         ensure_ascii=False))
        return 0 if agreed else 1
    for w in workers:
        print(f"{w.worker:<32} {len(w.policy_ids)} policies: {', '.join(w.policy_ids)}")
    print("one book: every running worker holds the same policies" if agreed else f"NOT one book: {why}")
    return 0 if agreed else 1


def policy_history(settings: Settings, region: str | None, year: int | None, as_json: bool) -> int:
    from connectors.ops.revision import history

    if not region or not year:
        print("policy history needs --region and --year", file=sys.stderr)
        return 2
    rows = history(settings, region, year)
    if as_json:
        print(json.dumps([{"policy_id": r.policy_id, "first": r.first.isoformat(), "last": r.last.isoformat(),
                           "person_years": r.person_years} for r in rows], ensure_ascii=False))
        return 0
    print(f"policies that decided standards of {region} in {year}:")
    for r in rows:
        print(f"  {r.policy_id:<32} first {r.first:%Y-%m-%d %H:%M}  last {r.last:%Y-%m-%d %H:%M}  "
              f"{r.person_years} person-years")
    return 0
