"""Commands that run things: the local Kafka, the worker, the demo, topics, the bench."""

from __future__ import annotations

import argparse
import json
import sys

from connectors.ops.cli.common import _broker_settings, _settings


def cmd_kafka(args: argparse.Namespace) -> int:
    from connectors.dev.localkafka import LocalKafkaError, default_broker

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


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.worker import run_worker

    run_worker(_settings(), loglevel=args.loglevel)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from connectors.dev.demo import run_demo

    settings = _broker_settings("demo")
    return run_demo(settings, timeout_s=args.timeout) if settings else 2


def cmd_topics(args: argparse.Namespace) -> int:
    from streams.kafka.admin import ensure_topics

    settings = _settings()
    created = ensure_topics(settings)
    print(f"{len(created)} topics created on {settings.kafka_bootstrap_servers}")
    for name in created:
        print(f"  {name}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from connectors.dev.bench import bench_main

    settings = _broker_settings("bench")
    if settings is None:
        return 2
    return bench_main(settings, args.events, args.json, args.workers, args.rate, args.latency_seconds, args.backlog)
