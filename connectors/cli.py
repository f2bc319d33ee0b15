"""The ``zhucan`` command."""

from __future__ import annotations

import argparse
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


def cmd_demo(args: argparse.Namespace) -> int:
    from connectors.demo import run_demo
    from connectors.localkafka import LocalKafkaError

    try:
        settings = _ensure_broker(_settings())
    except LocalKafkaError as exc:
        print(f"zhucan demo: {exc}", file=sys.stderr)
        return 2
    return run_demo(settings, timeout_s=args.timeout)


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
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python is chatty at INFO
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
