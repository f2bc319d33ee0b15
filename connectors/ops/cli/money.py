"""The ledger's commands: coverage, settle, budget (and how their rows print)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from connectors.ops.cli.common import _as_of, _settings


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def cmd_coverage(args: argparse.Namespace) -> int:
    from connectors.ops.control import send_control, wait_for_control
    from connectors.ops.ledger import coverage, live, suspected

    settings = _settings()
    if args.check:
        if not args.region or not args.year:
            print("coverage --check needs --region and --year", file=sys.stderr)
            return 2
        command_id = send_control(settings, "CHECK_COVERAGE", args.region, args.year, _as_of(args.as_of))
        if not wait_for_control(settings, command_id, timeout_s=args.timeout):
            print(f"the worker did not finish CHECK_COVERAGE {command_id} in {args.timeout:.0f}s; is it running?",
                  file=sys.stderr)
            return 1
    rows = coverage(settings, args.region, args.year, by=args.by, totals=live(settings, warn=_warn))
    people = suspected(settings, args.region, args.year) if args.check or args.list else []
    if args.json:
        print(json.dumps({"coverage": [r.as_dict() for r in rows], "suspected_unenrolled": len(people)},
                         ensure_ascii=False))
        return 0
    print_coverage(rows)
    if people:
        print_suspected(people)
    return 0


def print_coverage(rows) -> None:  # type: ignore[no-untyped-def]
    """Each row against its region's target (the policy's ``coverage_target``, with its clause below)."""
    print(f"{'region':<8} {'year':<5} {'live':>6} {'enrolled':>9} {'rate':>8} {'target':>7}  {'':<11} by status")
    clauses = {}
    for r in rows:
        mark = "no policy" if r.meets_target is None else "ok" if r.meets_target else "BELOW"
        target = "-" if r.target is None else f"{r.target:.0%}"
        status = ", ".join(f"{k}={v}" for k, v in sorted(r.by_status.items()))
        print(f"{r.region_code:<8} {r.insurance_year:<5} {r.live:>6} {r.enrolled:>9} {r.rate:>8.1%} {target:>7}  "
              f"{mark:<11} {status}")
        if r.target_reference:
            clauses.setdefault(r.target_reference, []).append(r.region_code)
    for reference, regions in clauses.items():
        print(f"  target of {', '.join(sorted(set(regions)))}: {reference}")


def print_suspected(people) -> None:  # type: ignore[no-untyped-def]
    from streams.domain.ids import mask_id

    print(f"\nsuspected un-enrolled (疑似未参保): {len(people)}")
    for p in sorted(people, key=lambda p: (p["region_code"], p["insurance_year"], p["name"])):
        print(f"  {mask_id(p['id_number']):<20} {p['name']:<4} {p['region_code']} {p['insurance_year']} "
              f"v{p['fee_version']} since {p['since']}: {p['reason']}")


def cmd_settle(args: argparse.Namespace) -> int:
    from connectors.ops.control import control_progress, send_control, wait_for_control
    from connectors.ops.ledger import live, settlement
    from streams.domain.policy.decide import yuan

    settings = _settings()
    lines = settlement(settings, args.region, args.year, _as_of(args.as_of), totals=live(settings, warn=_warn))
    if args.json:
        print(json.dumps(lines, ensure_ascii=False, default=str))
    else:
        print(f"{'region':<8} {'year':<5} {'class':<28} {'funding':<24} {'spot':<5} {'kind':<26} "
              f"{'department':<21} {'persons':>8} {'subsidy':>14}")
        for line in lines:
            print(f"{line['region_code']:<8} {line['insurance_year']:<5} {line['category']:<28} "
                  f"{line['funding_source']:<24} {'yes' if line['on_the_spot'] else 'no':<5} {line['kind']:<26} "
                  f"{line['department'] or '-':<21} {line['persons']:>8} {yuan(line['subsidy_fen']):>14}")
        by_fund: dict[str, int] = {}
        by_kind: dict[tuple[str, str], int] = {}
        for line in lines:
            by_fund[line["funding_source"]] = by_fund.get(line["funding_source"], 0) + line["subsidy_fen"]
            slot = (line["funding_source"], line["kind"])
            by_kind[slot] = by_kind.get(slot, 0) + line["subsidy_fen"]
        for fund, total in sorted(by_fund.items()):
            print(f"total {fund}: {yuan(total)}")
            for (f, kind), part in sorted(by_kind.items()):  # money paid to people apart from enrolment subsidies
                if f == fund and kind != "ENROLMENT_SUBSIDY":
                    print(f"  of which {kind}: {yuan(part)}")
        by_department: dict[str, int] = {}
        for line in lines:
            if line["department"]:
                by_department[line["department"]] = by_department.get(line["department"], 0) + line["subsidy_fen"]
        for dept, total in sorted(by_department.items()):  # 资助汇总表 per funding department (渝 二(二)2)
            print(f"total department {dept}: {yuan(total)}")
    if args.publish:  # the workers write settlement.v1 (its one writer): a SETTLE asks them to
        command_id = send_control(settings, "SETTLE", args.region or "", args.year or 0, _as_of(args.as_of))
        if not wait_for_control(settings, command_id, timeout_s=args.timeout, parts=1):
            print(f"the workers did not answer SETTLE {command_id} in {args.timeout:.0f}s; are they running?",
                  file=sys.stderr)
            return 1
        done = control_progress(settings, command_id)[0]
        print(f"SETTLE {command_id}: the workers published {done['lines']} lines to {settings.topics.settlement}",
              file=sys.stderr)
    return 0


def cmd_budget(args: argparse.Namespace) -> int:
    from connectors.ops.ledger import budget
    from connectors.ops.revision import RevisionError, request_preview
    from streams.domain.policy.decide import yuan
    from streams.domain.reports import BudgetRow

    settings = _settings()
    if args.what_if:  # the workers re-decide the same people with the candidate files, nothing written
        try:
            preview = request_preview(settings, Path(args.what_if), args.region, args.year, timeout_s=args.timeout)
        except RevisionError as exc:
            print(f"budget: {exc}", file=sys.stderr)
            return 1
        rows = [BudgetRow(c, f, n, fen) for (c, f), (n, fen) in sorted(preview.budget_new.items())]
    else:
        rows = budget(settings, args.region, args.year, with_claims=args.claims)
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], ensure_ascii=False))
        return 0
    what = f"if re-decided with {args.what_if} (preview by the workers)" if args.what_if else "as issued"
    print(f"budget estimate (资金支出测算) for region {args.region}, people of {args.year}, {what}")
    for r in rows:
        kind = "" if r.kind == "ENROLMENT_SUBSIDY" else f" ({r.kind})"
        print(f"  {r.category:<28} {r.funding_source:<24} {r.persons:>8} persons {yuan(r.subsidy_fen):>14}{kind}")
    print(f"  total {yuan(sum(r.subsidy_fen for r in rows))}")
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    """zhucan ledger check: the totals counted again from ledger.v1 (and the instructions) against
    the live ones; any difference is a bug, exit 1."""
    from connectors.ops.ledger import check
    from streams.domain.ledger import VALUES

    settings = _settings()
    print(f"counting the ledger again from {settings.topics.ledger} ...", file=sys.stderr)
    result = check(settings)
    rows = [{"key": k._asdict(), "live": dict(zip(VALUES, a, strict=True)), "recounted": dict(zip(VALUES, b, strict=True))}
            for k, a, b in result.differences]
    warnings = result.live.warnings()
    if args.json:
        print(json.dumps({"lines": result.lines, "instructions": result.instructions, "rows": len(result.counted),
                          "differences": rows, "warnings": warnings}, ensure_ascii=False))
    else:
        print(f"{result.lines} person-year lines and {result.instructions} instructions recounted into "
              f"{len(result.counted)} rows; the live totals from {result.live.partitions} of "
              f"{result.live.expected} partitions")
        for w in warnings:
            print(f"warning: {w}")
        for row in rows:
            print(f"DIFFERENT {row['key']}: live {row['live']} recounted {row['recounted']}")
        print("the live totals equal the recount" if not rows else f"{len(rows)} row(s) differ: a bug, please report it")
    return 1 if rows or warnings else 0


def cmd_claims(args: argparse.Namespace) -> int:
    """zhucan claims list|show: the claims' decisions and the instructions that paid them (masked IDs)."""
    from connectors.ops.claims import claim_rows, describe, outcomes
    from streams.domain.ids import mask_id
    from streams.domain.policy.decide import yuan

    settings = _settings()
    rows = claim_rows(settings, args.year, args.outcome)
    if args.action == "show":
        wanted = set(args.claim_ids)
        chosen = [r for r in rows if r.claim_id in wanted]
        missing = wanted - {r.claim_id for r in chosen}
        if missing:
            print(f"no decision for claim {', '.join(sorted(missing))} (yet): see `zhucan claims list`", file=sys.stderr)
        if args.json:
            print(json.dumps([r.as_dict() for r in chosen], ensure_ascii=False, default=str))
        else:
            for r in chosen:
                print(describe(r))
        return 1 if missing else 0
    shown = rows[-args.limit:] if args.limit else rows
    if args.json:
        print(json.dumps([r.as_dict() for r in shown], ensure_ascii=False, default=str))
        return 0
    counts = outcomes(rows)
    print(f"{len(rows)} claims decided: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for r in shown:
        d, i = r.decision, r.instruction
        why = ",".join(d["reasons"]) or d.get("code") or ""
        paid = f"{i['kind']} via {i['channel']}" if i else ""
        print(f"  {d['claim_id']:<24} {mask_id(d['id_number']):<20} {d['insurance_year']} {d['outcome']:<8} "
              f"{yuan(d['amount_fen']):>12} {why:<40} {paid}")
    return 0
