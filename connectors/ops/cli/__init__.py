"""The ``zhucan`` command: the parser here, the commands in a module per group
(``local``, ``policy``, ``money``, ``operate``)."""

from __future__ import annotations

import argparse
import logging
import sys

from kafka.errors import AuthorizationError, SaslAuthenticationFailedError

from connectors.ops.cli.local import cmd_acl, cmd_bench, cmd_demo, cmd_kafka, cmd_topics, cmd_worker
from connectors.ops.cli.money import cmd_budget, cmd_claims, cmd_coverage, cmd_ledger, cmd_settle
from connectors.ops.cli.operate import (
    cmd_control,
    cmd_dashboard,
    cmd_dlq,
    cmd_import,
    cmd_lag,
    cmd_person,
    cmd_tax_sim,
)
from connectors.ops.cli.policy import cmd_policy
from streams.domain.departments import DEPARTMENTS
from streams.kafka.security import SecurityConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zhucan", description="助参: subsidised-enrolment integration broker")
    sub = parser.add_subparsers(dest="command", required=True)

    k = sub.add_parser("kafka", help="the embedded local Kafka broker (KRaft, from Maven Central jars)")
    k.add_argument("action", choices=["up", "down", "status"])
    k.add_argument("--wipe", action="store_true", help="with down: delete the broker's data")
    k.add_argument("--json", action="store_true", help="with status: print JSON")
    k.add_argument("--nodes", type=int, default=1,
                   help="a local cluster of N combined broker/controller nodes (ports 9092.., controllers 9192..)")
    k.add_argument("--secure", action="store_true",
                   help="with up: SASL_SSL (SCRAM-SHA-512, TLS from a generated CA) and ACLs; fixed at first start")
    k.set_defaults(func=cmd_kafka)

    a = sub.add_parser("acl", help="make the cluster's ACLs match deploy/acl.yaml (idempotent); rotate a password")
    a.add_argument("action", choices=["apply", "show", "passwd"])
    a.add_argument("user", nargs="?", help="with passwd: the principal whose password is replaced")
    a.add_argument("--file", help="the principals file (default: deploy/acl.yaml)")
    a.add_argument("--dry-run", action="store_true", help="with apply: print the difference, change nothing")
    a.add_argument("--password-file", help="with passwd: write the new password here (0600); default: the local "
                   "broker's credentials file")
    a.set_defaults(func=cmd_acl)

    w = sub.add_parser("worker", help="run the stream processors")
    w.add_argument("--loglevel", choices=["debug", "info", "warning", "error"],
                   help="default: ZHUCAN_LOG_LEVEL (Settings.log_level), INFO")
    w.set_defaults(func=cmd_worker)

    d = sub.add_parser("demo", help="local Kafka + worker + sample people of the seed regions, with a summary")
    d.add_argument("--timeout", type=float, default=180.0)
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("topics", help="create the topics (raising partitions where safe), or check them against the spec")
    t.add_argument("action", choices=["create", "check"])
    t.add_argument("--json", action="store_true", help="with check: print JSON")
    t.set_defaults(func=cmd_topics)

    p = sub.add_parser("policy", help="validate, explain and revise region-year policies")
    p.add_argument("action", choices=["check", "explain", "diff", "status", "history"])
    p.add_argument("dir", nargs="?", help="with check: the policy directory (default: ZHUCAN_POLICY_DIR or shipped); "
                                          "with diff: the candidate policy directory")
    p.add_argument("--region", help="6-digit region code")
    p.add_argument("--year", type=int)
    p.add_argument("--category", action="append", default=[], help="a category symbol or its Chinese name; repeatable")
    p.add_argument("--student", action="store_true", help="the person is a student or child")
    p.add_argument("--people", action="store_true", help="with diff: each person's change (masked ID)")
    p.add_argument("--json", action="store_true", help="with diff, status, history: print JSON")
    p.add_argument("--timeout", type=float, default=600.0, help="with diff: how long to wait for the workers")
    p.set_defaults(func=cmd_policy)
    ts = sub.add_parser("tax-sim", help="simulate the tax bureau: answer fee standards with payment status")
    ts.add_argument("--pay-share", type=float, default=0.9)
    ts.add_argument("--reject-share", type=float, default=0.0)
    ts.add_argument("--already-paid-share", type=float, default=0.0,
                    help="answer ALREADY_PAID with the full premium (paid in full: a post-hoc subsidy, a refund or "
                         "money owed, by the region's rule, then a payment instruction)")
    ts.add_argument("--delay", type=float, default=0.0, help="seconds to wait after a person-year's last version")
    ts.add_argument("--seed", default="zhucan")
    ts.add_argument("--group", default="tax-sim", help="its consumer group (the tax principal may use tax*)")
    ts.add_argument("--idle-exit", type=float, default=None, help="stop after this many idle seconds")
    ts.set_defaults(func=cmd_tax_sim)

    c = sub.add_parser("control", help="send an operator's command to the worker")
    c.add_argument("command", choices=["open-year", "check-coverage", "redecide", "close-window", "settle"])
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
    im = sub.add_parser("import", help="a department's CSV/XLSX file (the template) to its identity topic, or a "
                                       "county's claims (--claims) to subsidy-claim.v1")
    im.add_argument("file", nargs="?")
    im.add_argument("--claims", action="store_true", help="FILE is a county bureau's claims (template: --claims --template)")
    im.add_argument("--source", choices=[d.slug for d in DEPARTMENTS])
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
    bn.add_argument("--latency-client", choices=["librdkafka", "kafka-python"], default="librdkafka",
                    help="the producer that offers the latency run's events: librdkafka (confluent-kafka) where it "
                         "can run, else kafka-python (whose Python sender takes more of the cores measured)")
    bn.add_argument("--batch-client", choices=["librdkafka", "kafka-python"], default="librdkafka",
                    help="the producer of the batch: librdkafka (confluent-kafka) where it can run, else kafka-python "
                         "(whose Python sender shares the workers' cores in live mode and bounded the figure)")
    bn.add_argument("--backlog", action="store_true",
                    help="produce the batch before the workers start; the clock starts at the first record any "
                         "worker takes in")
    bn.add_argument("--revision", action="store_true",
                    help="after the batch: the workers' preview of a revision of every region-year, then its REDECIDE")
    bn.add_argument("--kill", action="store_true",
                    help="SIGKILL one worker a third of the way through the batch and start it again at once; "
                         "report the longest wait for a fee standard after it")
    bn.add_argument("--in-process", action="store_true",
                    help="no broker: CPU per event of the intake and the person stage's own code, in this process")
    bn.add_argument("--clients", action="store_true",
                    help="the Kafka clients alone: CPU per record consumed and produced by aiokafka (as the stages "
                         "call it) and by librdkafka, on the bench's records")
    bn.add_argument("--keep-topics", action="store_true",
                    help="keep the run's topics and consumer groups (deleted at the end otherwise)")
    bn.add_argument("--spread-days", type=int, default=0,
                    help="certify each region's synthetic people on any of this many days (a first roster, certified "
                         "over the years) instead of one (a monthly file): newcomers of the same facts are fewer")
    bn.add_argument("--static-members", action="store_true",
                    help="give each worker its own ZHUCAN_INSTANCE_ID (static group membership), kept across a restart")
    bn.set_defaults(func=cmd_bench)
    st = sub.add_parser("settle", help="settlement per class and funding source (资助汇总表) from the ledger")
    st.add_argument("--region")
    st.add_argument("--year", type=int)
    st.add_argument("--as-of", help="the date on the lines (YYYY-MM-DD); default today")
    st.add_argument("--publish", action="store_true",
                    help="also have the workers publish the lines to settlement.v1 (a SETTLE on control.v1)")
    st.add_argument("--timeout", type=float, default=60.0, help="with --publish: how long to wait for the workers")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_settle)

    bu = sub.add_parser("budget", help="budget estimate (资金支出测算), optionally under what-if policies")
    bu.add_argument("--region", required=True)
    bu.add_argument("--year", type=int, required=True, help="the insurance year whose people are counted")
    bu.add_argument("--what-if", help="a directory of policy files: what the same people would cost if the workers "
                                      "re-decided them with it (computed by the workers; the live policies untouched)")
    bu.add_argument("--timeout", type=float, default=600.0, help="with --what-if: how long to wait for the workers")
    bu.add_argument("--claims", action="store_true",
                    help="include the money paid to people by instruction (claims, post-hoc subsidies, refunds), "
                         "per kind, instead of counting those person-years through their standards")
    bu.add_argument("--json", action="store_true")
    bu.set_defaults(func=cmd_budget)

    le = sub.add_parser("ledger", help="the ledger (台账): check recounts the totals from ledger.v1 and compares "
                                       "them with the live ones the reports read")
    le.add_argument("action", choices=["check"])
    le.add_argument("--json", action="store_true")
    le.set_defaults(func=cmd_ledger)

    pe = sub.add_parser("person", help="one person: timeline, years, versions, payments, review cases, basis "
                                       "(from the worker that holds them; masked unless --full)")
    pe.add_argument("id_number")
    pe.add_argument("--full", action="store_true", help="print the full ID numbers (the default masks them)")
    pe.add_argument("--json", action="store_true")
    pe.set_defaults(func=cmd_person)

    cl = sub.add_parser("claims", help="claims for money to people: each one's decision and instruction (masked IDs)")
    cl.add_argument("action", choices=["list", "show"])
    cl.add_argument("claim_ids", nargs="*", help="with show: the claim ids")
    cl.add_argument("--year", type=int)
    cl.add_argument("--outcome", choices=["APPROVED", "REFUSED", "REVIEW"])
    cl.add_argument("--limit", type=int, default=50, help="with list: the newest N (0: all)")
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(func=cmd_claims)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python is chatty at INFO
    # kafka-python 3 warns whenever its IO thread waited >0.1 s for the GIL ("a tight sync loop
    # inside a coroutine"): on a busy host that is this process computing, not a fault.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SecurityConfigError as exc:  # a KAFKA_* setting, named in the message
        print(f"zhucan {args.command}: {exc}", file=sys.stderr)
        return 2
    except (AuthorizationError, SaslAuthenticationFailedError) as exc:
        print(f"zhucan {args.command}: Kafka refused: {type(exc).__name__}: {exc} (who: KAFKA_SASL_USERNAME; "
              "what it may do: deploy/acl.yaml)", file=sys.stderr)
        return 2
