"""The ``zhucan`` command."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys

from streams.settings import Settings


def _settings() -> Settings:
    return Settings()


def cmd_kafka(args: argparse.Namespace) -> int:
    from connectors.localkafka import LocalKafkaError, default_broker

    broker = default_broker()
    try:
        if args.action == "up":
            broker.start()
            print(f"export KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}")
        elif args.action == "down":
            broker.stop(wipe=args.wipe)
        else:
            status = broker.status()
            if args.json:
                print(json.dumps(status))
            else:
                for k, v in status.items():
                    print(f"{k:<14} {v}")
            return 0 if status["running"] and status["answers"] else 3
    except LocalKafkaError as exc:
        print(f"zhucan kafka {args.action}: {exc}", file=sys.stderr)
        return 2
    return 0


def _ensure_broker(settings: Settings) -> Settings:
    """Without KAFKA_BOOTSTRAP_SERVERS, start the embedded local broker and use it."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return settings
    from connectors.localkafka import default_broker

    broker = default_broker()
    broker.start()
    return settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap})


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.app import run_worker

    run_worker(_settings(), loglevel=args.loglevel)
    return 0


def _broker_settings(command: str) -> Settings | None:
    """Settings with a reachable broker (the local one started when none is configured), or None."""
    from connectors.localkafka import LocalKafkaError

    try:
        return _ensure_broker(_settings())
    except LocalKafkaError as exc:
        print(f"zhucan {command}: {exc}", file=sys.stderr)
        return None


def cmd_demo(args: argparse.Namespace) -> int:
    from connectors.demo import run_demo

    settings = _broker_settings("demo")
    return run_demo(settings, timeout_s=args.timeout) if settings else 2


def cmd_topics(args: argparse.Namespace) -> int:
    from connectors.topics import ensure_topics

    settings = _settings()
    created = ensure_topics(settings)
    print(f"{len(created)} topics created on {settings.kafka_bootstrap_servers}")
    for name in created:
        print(f"  {name}")
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    from connectors.policy_cli import policy_check, policy_explain

    if args.action == "check":
        return policy_check(args.dir or _settings().policy_dir)
    return policy_explain(_settings().policy_dir, args.region, args.year, args.category, args.student)


def cmd_tax_sim(args: argparse.Namespace) -> int:
    from connectors.taxsim import TaxBehaviour, run_tax_sim

    behaviour = TaxBehaviour(pay_share=args.pay_share, reject_share=args.reject_share,
                             already_paid_share=args.already_paid_share, delay_s=args.delay, seed=args.seed)
    counts = run_tax_sim(_settings(), behaviour, group=args.group, idle_exit_s=args.idle_exit)
    print("tax-sim answered: " + (", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing"))
    return 0


def _as_of(text: str | None) -> dt.datetime:
    if not text:
        return dt.datetime.now(tz=dt.UTC)
    return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(12), tzinfo=dt.UTC)


def cmd_control(args: argparse.Namespace) -> int:
    from connectors.control import send_control

    settings = _settings()
    command_id = send_control(settings, args.command.upper().replace("-", "_"), args.region, args.year, _as_of(args.as_of))
    print(f"sent {args.command.upper()} {command_id} for region {args.region} year {args.year} to {settings.topics.control}")
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    from connectors.control import send_control, wait_for_control
    from connectors.ledger import COVERAGE_TARGET, coverage, suspected

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
    rows = coverage(settings, args.region, args.year, by=args.by)
    people = suspected(settings, args.region, args.year) if args.check or args.list else []
    if args.json:
        print(json.dumps({"coverage": [r.as_dict() for r in rows], "suspected_unenrolled": len(people)},
                         ensure_ascii=False))
        return 0
    print_coverage(rows, COVERAGE_TARGET)
    if people:
        print_suspected(people)
    return 0


def print_coverage(rows, target: float) -> None:  # type: ignore[no-untyped-def]
    print(f"{'region':<8} {'year':<5} {'live':>6} {'enrolled':>9} {'rate':>8}  target {target:.0%}  by status")
    for r in rows:
        mark = "ok" if r.meets_target else "BELOW"
        status = ", ".join(f"{k}={v}" for k, v in sorted(r.by_status.items()))
        print(f"{r.region_code:<8} {r.insurance_year:<5} {r.live:>6} {r.enrolled:>9} {r.rate:>8.1%}  {mark:<11} {status}")


def print_suspected(people) -> None:  # type: ignore[no-untyped-def]
    from streams.domain.ids import mask_id

    print(f"\nsuspected un-enrolled (疑似未参保): {len(people)}")
    for p in sorted(people, key=lambda p: (p["region_code"], p["insurance_year"], p["name"])):
        print(f"  {mask_id(p['id_number']):<20} {p['name']:<4} {p['region_code']} {p['insurance_year']} "
              f"v{p['fee_version']} since {p['since']}: {p['reason']}")


def cmd_lag(args: argparse.Namespace) -> int:
    import time

    from connectors.lag import LagMonitor, format_report

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
    from connectors.dlq import dead_letters, describe, replay

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
    sent, skipped = replay(settings, chosen, dry_run=args.dry_run)
    verb = "would replay" if args.dry_run else "replayed"
    print(f"{verb} {len(sent)}: {' '.join(sent) or '-'}; already replayed {len(skipped)}: {' '.join(skipped) or '-'}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from connectors.importer import TEMPLATE, run_import

    if args.template:
        print(TEMPLATE, end="")
        return 0
    if not args.source or not args.file:
        print("import needs --source and FILE (or --template)", file=sys.stderr)
        return 2
    path = Path(args.file)
    if not path.is_file():
        print(f"import: {path} does not exist", file=sys.stderr)
        return 2
    try:
        result = run_import(_settings(), args.source, path, report=Path(args.report) if args.report else None,
                            force=args.force)
    except ValueError as exc:
        print(f"import: {path}: {exc}", file=sys.stderr)
        return 1
    if result.already_imported:
        print(f"{path} was already imported for {args.source}: nothing published (use --force to send it again)")
        return 0
    print(f"{result.rows} rows: {result.published} published, {result.bad_rows} bad "
          f"({', '.join(f'{k}={v}' for k, v in sorted(result.by_reason.items())) or 'none'}) in {result.seconds:.1f}s")
    if result.bad_rows:
        print(f"error report: {result.report}")
    return 0 if result.bad_rows == 0 else 3


def cmd_dashboard(args: argparse.Namespace) -> int:
    from connectors.dashboard import run_dashboard

    run_dashboard(_settings(), host=args.host, port=args.port)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from connectors.bench import bench_main

    settings = _broker_settings("bench")
    if settings is None:
        return 2
    return bench_main(settings, args.events, args.json, args.workers, args.rate, args.latency_seconds, args.backlog)


def cmd_settle(args: argparse.Namespace) -> int:
    from connectors.ledger import publish_settlement, settlement
    from streams.domain.decision import yuan

    settings = _settings()
    lines = settlement(settings, args.region, args.year, _as_of(args.as_of))
    if args.json:
        print(json.dumps(lines, ensure_ascii=False, default=str))
    else:
        print(f"{'region':<8} {'year':<5} {'class':<28} {'funding':<24} {'spot':<5} {'persons':>8} {'subsidy':>14}")
        for line in lines:
            print(f"{line['region_code']:<8} {line['insurance_year']:<5} {line['category']:<28} "
                  f"{line['funding_source']:<24} {'yes' if line['on_the_spot'] else 'no':<5} {line['persons']:>8} "
                  f"{yuan(line['subsidy_fen']):>14}")
        by_fund: dict[str, int] = {}
        for line in lines:
            by_fund[line["funding_source"]] = by_fund.get(line["funding_source"], 0) + line["subsidy_fen"]
        for fund, total in sorted(by_fund.items()):
            print(f"total {fund}: {yuan(total)}")
    if args.publish:
        publish_settlement(settings, lines)
        print(f"published {len(lines)} lines to {settings.topics.settlement}", file=sys.stderr)
    return 0


def cmd_budget(args: argparse.Namespace) -> int:
    from connectors.ledger import budget
    from streams.domain.decision import yuan
    from streams.domain.exceptions import DomainError
    from streams.domain.policy import PolicyBook

    settings = _settings()
    try:
        overlay = PolicyBook.load(args.what_if) if args.what_if else None
    except DomainError as exc:
        print(f"budget: {exc}", file=sys.stderr)
        return 1
    rows = budget(settings, args.region, args.year, overlay, args.target_year)
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], ensure_ascii=False))
        return 0
    what = f"under {args.what_if} for {args.target_year or args.year}" if overlay else "as issued"
    print(f"budget estimate (资金支出测算) for region {args.region}, people of {args.year}, {what}")
    for r in rows:
        print(f"  {r.category:<28} {r.funding_source:<24} {r.persons:>8} persons {yuan(r.subsidy_fen):>14}")
    print(f"  total {yuan(sum(r.subsidy_fen for r in rows))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zhucan", description="助参: subsidised-enrolment integration broker")
    sub = parser.add_subparsers(dest="command", required=True)

    k = sub.add_parser("kafka", help="the embedded local Kafka broker (KRaft, from Maven Central jars)")
    k.add_argument("action", choices=["up", "down", "status"])
    k.add_argument("--wipe", action="store_true", help="with down: delete the broker's data")
    k.add_argument("--json", action="store_true", help="with status: print JSON")
    k.set_defaults(func=cmd_kafka)

    w = sub.add_parser("worker", help="run the stream processors")
    w.add_argument("--loglevel", default=os.environ.get("ZHUCAN_LOG_LEVEL", "info").lower())
    w.set_defaults(func=cmd_worker)

    d = sub.add_parser("demo", help="local Kafka + worker + sample people of the seed regions, with a summary")
    d.add_argument("--timeout", type=float, default=180.0)
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("topics", help="create the contract's and the internal topics")
    t.add_argument("action", choices=["create"])
    t.set_defaults(func=cmd_topics)

    p = sub.add_parser("policy", help="validate and explain region-year policies")
    p.add_argument("action", choices=["check", "explain"])
    p.add_argument("dir", nargs="?", help="with check: the policy directory (default: ZHUCAN_POLICY_DIR or shipped)")
    p.add_argument("--region", help="6-digit region code")
    p.add_argument("--year", type=int)
    p.add_argument("--category", action="append", default=[], help="a category symbol or its Chinese name; repeatable")
    p.add_argument("--student", action="store_true", help="the person is a student or child")
    p.set_defaults(func=cmd_policy)
    ts = sub.add_parser("tax-sim", help="simulate the tax bureau: answer fee standards with payment status")
    ts.add_argument("--pay-share", type=float, default=0.9)
    ts.add_argument("--reject-share", type=float, default=0.0)
    ts.add_argument("--already-paid-share", type=float, default=0.0)
    ts.add_argument("--delay", type=float, default=0.0, help="seconds to wait after a person-year's last version")
    ts.add_argument("--seed", default="zhucan")
    ts.add_argument("--group", default="zhucan-tax-sim")
    ts.add_argument("--idle-exit", type=float, default=None, help="stop after this many idle seconds")
    ts.set_defaults(func=cmd_tax_sim)

    c = sub.add_parser("control", help="send an operator's command to the worker")
    c.add_argument("command", choices=["open-year", "check-coverage", "close-window", "settle"])
    c.add_argument("--region", required=True)
    c.add_argument("--year", type=int, required=True)
    c.add_argument("--as-of", help="the command's date (YYYY-MM-DD); default today")
    c.set_defaults(func=cmd_control)

    cv = sub.add_parser("coverage", help="coverage rate per region and year; --check lists suspected un-enrolled")
    cv.add_argument("--region")
    cv.add_argument("--year", type=int)
    cv.add_argument("--by", choices=["county", "city", "province"], default="county")
    cv.add_argument("--check", action="store_true", help="send CHECK_COVERAGE first and wait for the worker")
    cv.add_argument("--list", action="store_true", help="print the suspected un-enrolled list")
    cv.add_argument("--as-of", help="with --check: the date to judge by (YYYY-MM-DD); default today")
    cv.add_argument("--timeout", type=float, default=120.0)
    cv.add_argument("--json", action="store_true")
    cv.set_defaults(func=cmd_coverage)
    lg = sub.add_parser("lag", help="consumer lag per group and partition, Burrow-style status")
    lg.add_argument("--group", action="append", help="a consumer group (repeatable); default: all")
    lg.add_argument("--json", action="store_true", help="one JSON document")
    lg.add_argument("--watch", action="store_true", help="keep sampling and print every interval")
    lg.add_argument("--samples", type=int, default=3, help="samples in the window before judging")
    lg.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    lg.add_argument("--allowed-lag", type=int, default=1000, help="lag at or below this is OK")
    lg.set_defaults(func=cmd_lag)
    dq = sub.add_parser("dlq", help="dead letters: list, show, replay to their origin topic")
    dq.add_argument("action", choices=["list", "show", "replay"])
    dq.add_argument("coordinates", nargs="*", help="dead letters as PARTITION:OFFSET (see list)")
    dq.add_argument("--all", action="store_true", help="with show/replay: every dead letter")
    dq.add_argument("--limit", type=int, default=50, help="with list: the newest N (0: all)")
    dq.add_argument("--dry-run", action="store_true")
    dq.add_argument("--json", action="store_true")
    dq.set_defaults(func=cmd_dlq)
    im = sub.add_parser("import", help="a department's CSV/XLSX file (the template) to its identity topic")
    im.add_argument("file", nargs="?")
    im.add_argument("--source", choices=["civil-affairs", "rural-revitalization", "disability", "veterans"])
    im.add_argument("--report", help="where the row-level error report goes (default FILE.errors.csv)")
    im.add_argument("--force", action="store_true", help="publish even if this file was imported before")
    im.add_argument("--template", action="store_true", help="print the template's header and an example row")
    im.set_defaults(func=cmd_import)
    db = sub.add_parser("dashboard", help="the operators' page: lag, throughput, rejections, coverage")
    db.add_argument("--host", default="127.0.0.1")
    db.add_argument("--port", type=int, default=8050)
    db.set_defaults(func=cmd_dashboard)
    bn = sub.add_parser("bench", help="throughput, latency, memory and state size on real Kafka")
    bn.add_argument("--events", type=int, default=100_000)
    bn.add_argument("--json", help="also write the result to this file")
    bn.add_argument("--workers", type=int, default=1)
    bn.add_argument("--rate", type=int, default=1000, help="offered events/s for the latency run")
    bn.add_argument("--latency-seconds", type=float, default=10.0)
    bn.add_argument("--backlog", action="store_true",
                    help="produce the batch before the workers start; the clock starts when their groups are stable")
    bn.set_defaults(func=cmd_bench)
    st = sub.add_parser("settle", help="settlement per class and funding source (资助汇总表) from the ledger")
    st.add_argument("--region")
    st.add_argument("--year", type=int)
    st.add_argument("--as-of", help="the date on the lines (YYYY-MM-DD); default today")
    st.add_argument("--publish", action="store_true", help="also publish the lines to settlement.v1")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_settle)

    bu = sub.add_parser("budget", help="budget estimate (资金支出测算), optionally under what-if policies")
    bu.add_argument("--region", required=True)
    bu.add_argument("--year", type=int, required=True, help="the insurance year whose people are counted")
    bu.add_argument("--what-if", help="a directory of policy files to apply instead (never the live ones)")
    bu.add_argument("--target-year", type=int, help="with --what-if: the year of those policies")
    bu.add_argument("--json", action="store_true")
    bu.set_defaults(func=cmd_budget)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python is chatty at INFO
    # kafka-python 3 warns whenever its IO thread waited >0.1 s for the GIL ("a tight sync loop
    # inside a coroutine"): on a busy host that is this process computing, not a fault.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
