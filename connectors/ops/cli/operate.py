"""Operators' commands: tax-sim, control, lag, dlq, import, dashboard."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from connectors.ops.cli.common import _as_of, _settings


def cmd_tax_sim(args: argparse.Namespace) -> int:
    from connectors.taxsim import TaxBehaviour, run_tax_sim

    behaviour = TaxBehaviour(pay_share=args.pay_share, reject_share=args.reject_share,
                             already_paid_share=args.already_paid_share, delay_s=args.delay, seed=args.seed)
    counts = run_tax_sim(_settings(), behaviour, group=args.group, idle_exit_s=args.idle_exit)
    print("tax-sim answered: " + (", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing"))
    return 0


def cmd_control(args: argparse.Namespace) -> int:
    from connectors.ops.control import send_control
    from connectors.ops.revision import RevisionError, covered, one_book

    settings = _settings()
    if args.command == "redecide":  # the running workers must hold one book, and it must cover the year
        try:
            live = one_book(settings)
            if not covered(live, args.region, args.year):
                raise RevisionError(f"no policy the workers hold covers region {args.region} in {args.year}")
        except RevisionError as exc:
            print(f"control redecide refused: {exc}", file=sys.stderr)
            return 1
    command_id = send_control(settings, args.command.upper().replace("-", "_"), args.region, args.year, _as_of(args.as_of))
    print(f"sent {args.command.upper()} {command_id} for region {args.region} year {args.year} to {settings.topics.control}")
    return 0


def cmd_lag(args: argparse.Namespace) -> int:
    import time

    from connectors.ops.lag import format_report
    from streams.kafka.lag import LagMonitor

    settings = _settings()
    monitor = LagMonitor(settings.kafka_bootstrap_servers, allowed_lag=args.allowed_lag)
    try:
        groups = args.group or monitor.groups()
        rounds = 0
        while True:
            monitor.sample(groups)
            rounds += 1
            if args.watch or rounds < args.samples:
                if args.watch and rounds >= args.samples:
                    report = monitor.report(groups)
                    print(json.dumps([g.as_dict() for g in report]) if args.json else
                          f"--- {dt.datetime.now():%H:%M:%S}\n" + format_report(report), flush=True)
                time.sleep(args.interval)
                continue
            report = monitor.report(groups)
            if args.json:
                print(json.dumps({"groups": [g.as_dict() for g in report]}, ensure_ascii=False))
            else:
                print(format_report(report) if report else "no consumer groups")
            return 0 if all(g.status == "OK" for g in report) else 1
    finally:
        monitor.close()


def cmd_dlq(args: argparse.Namespace) -> int:
    from connectors.ops.dlq import dead_letters, describe, replay

    settings = _settings()
    letters = dead_letters(settings)
    if args.action == "list":
        shown = letters[-args.limit:] if args.limit else letters
        if args.json:
            print(json.dumps([d.as_dict() for d in shown], ensure_ascii=False))
            return 0
        print(f"{len(letters)} dead letters on {settings.topics.dead_letter}")
        for d in shown:
            info = d.as_dict()
            print(f"  {d.coordinate:<8} {info['at'][:19]}  {d.origin:<45} {info['error_class']}: {(info['error'] or '')[:70]}")
        return 0
    wanted = set(args.coordinates)
    chosen = letters if args.all else [d for d in letters if d.coordinate in wanted]
    missing = wanted - {d.coordinate for d in letters}
    if missing:
        print(f"no such dead letter: {', '.join(sorted(missing))} (use `zhucan dlq list`)", file=sys.stderr)
        return 1
    if args.action == "show":
        for d in chosen:
            print(describe(d))
        return 0
    if not chosen:
        print("name dead letters as PARTITION:OFFSET, or --all", file=sys.stderr)
        return 2
    done = replay(settings, chosen, dry_run=args.dry_run)
    verb = "would replay" if args.dry_run else "replayed"
    print(f"{verb} {len(done.sent)}: {' '.join(done.sent) or '-'}; "
          f"already replayed {len(done.skipped)}: {' '.join(done.skipped) or '-'}")
    for coordinate, why in done.failed:
        print(f"NOT replayed {coordinate}: {why} (the origin topic is a department's or tax's: replay as "
              f"admin or as that party)", file=sys.stderr)
    return 1 if done.failed else 0


def cmd_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from connectors.claims_import import TEMPLATE as CLAIMS_TEMPLATE
    from connectors.claims_import import run_claims_import
    from connectors.importer import TEMPLATE, run_import

    if args.template:
        print(CLAIMS_TEMPLATE if args.claims else TEMPLATE, end="")
        return 0
    if not args.file or not (args.source or args.claims):
        print("import needs --source and FILE, or --claims FILE (or --template)", file=sys.stderr)
        return 2
    path = Path(args.file)
    if not path.is_file():
        print(f"import: {path} does not exist", file=sys.stderr)
        return 2
    report = Path(args.report) if args.report else None
    try:
        if args.claims:  # a county bureau's claims (subsidy-claim.v1)
            result = run_claims_import(_settings(), path, report=report, force=args.force)
        else:
            result = run_import(_settings(), args.source, path, report=report, force=args.force)
    except ValueError as exc:
        print(f"import: {path}: {exc}", file=sys.stderr)
        return 1
    if result.already_imported:
        print(f"{path} was already imported for {'the county bureau' if args.claims else args.source}: nothing "
              f"published (use --force to send it again)")
        return 0
    print(f"{result.rows} rows: {result.published} published, {result.bad_rows} bad "
          f"({', '.join(f'{k}={v}' for k, v in sorted(result.by_reason.items())) or 'none'}) in {result.seconds:.1f}s")
    if result.bad_rows:
        print(f"error report: {result.report}")
    return 0 if result.bad_rows == 0 else 3


def cmd_dashboard(args: argparse.Namespace) -> int:
    from connectors.ops.dashboard import run_dashboard

    run_dashboard(_settings(), host=args.host, port=args.port)
    return 0


def cmd_person(args: argparse.Namespace) -> int:
    """zhucan person ID: the person from the owning worker's state (masked unless --full)."""
    from connectors.ops.person import find
    from streams.domain.ids import normalize_id, scrub

    settings = _settings()
    id18, problem = normalize_id(args.id_number)
    if id18 is None:
        print(f"zhucan person: not an ID number: {problem}", file=sys.stderr)
        return 2
    found = find(settings, id18)
    show = (lambda text: text) if args.full else scrub
    for why in found.tried:
        print(show(f"note: {why}"), file=sys.stderr)
    if args.json:
        print(show(json.dumps({"source": found.source, "person": found.person, "ledger": found.ledger},
                              ensure_ascii=False, default=str)))
        return 0 if (found.person or found.ledger) else 1
    if found.person is None and not found.ledger:
        print(show(f"no such person in this deployment ({found.source})"), file=sys.stderr)
        return 1
    print(show("\n".join(describe_person(found))))
    return 0


def describe_person(found) -> list[str]:  # type: ignore[no-untyped-def]
    from streams.domain.policy.decide import yuan

    p = found.person
    if p is None:
        out = [f"person (from {found.source}: the ledger's lines; the worker holding them did not answer)"]
        for e in found.ledger:
            out.append(f"  {e['insurance_year']} {e['region_code']} {e['category']} {e['state']} live v{e['live_version']}"
                       f" paid v{e['paid_version'] or '-'} subsidy {yuan(e['subsidy_fen'])} payable {yuan(e['payable_fen'])}"
                       f" policy {e['policy_id']}")
            out.append(f"       basis: {e['basis']}")
        return out
    out = [f"person {p['id_number']} {p['name']} (from {found.source})",
           f"held now: {', '.join(p['held_now']) or '-'}" + (f"; died {p['death']}" if p["death"] else ""),
           "timeline (事实):"]
    for f in p["timeline"]:
        extra = "".join(f" {k}={f[k]}" for k in ("previous_category", "living_status") if f.get(k))
        out.append(f"  {f['effective']} {f['source']:<21} {f['change']:<9} {f['category']:<26} {f['region_code']}"
                   f"{extra}  (event {f['event_id']})")
    for year, y in p["years"].items():
        line = y["ledger"] or {}
        out.append(f"{year}: {line.get('state', '-')}, live v{line.get('live_version', '-')}, paid "
                   f"v{line.get('paid_version') or '-'}; due {y['due'] or '-'}"
                   + (f"; suspected un-enrolled since {y['suspected_since']}" if y["suspected_since"] else ""))
        for v in y["versions"]:
            out.append(f"  v{v['version']} {v['mode']:<16} {v['category']:<26} level {v['level']} premium "
                       f"{yuan(v['premium_fen'])} subsidy {yuan(v['subsidy_fen'])} payable {yuan(v['payable_fen'])} "
                       f"{v['region_code']}{' 随参随缴' if v['on_the_spot'] else ''} ({v['policy_id']})")
        pay = y["payment"]
        if pay["state"] or pay["latest_ack"]:
            out.append(f"  payment: {pay['state'] or '-'} at v{pay['paid_version'] or '-'} {yuan(pay['paid_fen'])}; "
                       f"latest ack {pay['latest_ack'] or '-'}" + (f"; refunded {yuan(pay['refunded_fen'])}"
                                                                  if pay["refunded_fen"] else "")
                       + (f"; owed {yuan(pay['owed_fen'])} ({pay['owed_kind']})" if pay["owed_fen"] else ""))
        out.append(f"  basis: {y['basis'] or '-'}")
    if p["review_cases"]:
        out.append("review cases raised: " + "; ".join(p["review_cases"]))
    for cid, c in p["claims"].items():
        out.append(f"claim {cid}: {c['kind']} {c['year']} {c['outcome']}")
    for paid in p["paid_out"]:
        out.append(f"paid out: {paid['kind']} {paid['year']} {yuan(paid['amount_fen'])} (instruction "
                   f"{paid['instruction_id']})")
    return out
