"""Commands that run things: the local Kafka, the worker, the demo, topics, the bench."""

from __future__ import annotations

import argparse
import json
import sys

from connectors.ops.cli.common import _broker_settings, _settings


def cmd_kafka(args: argparse.Namespace) -> int:
    from connectors.dev.localkafka import LocalKafkaError, default_broker

    broker = default_broker(args.nodes)
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
                    if k == "nodes":
                        for node in v:  # type: ignore[attr-defined]
                            print(f"node {node['node']}: {'up' if node['answers'] else 'DOWN'} on {node['bootstrap']} "
                                  f"(pid {node['pid']}, data in {node['data_dir']})")
                    else:
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
    from streams.kafka.admin import check_topics, ensure_topics, raise_partitions

    settings = _settings()
    if args.action == "check":
        checks = check_topics(settings)
        if args.json:
            print(json.dumps([c.as_dict() for c in checks], ensure_ascii=False))
        else:
            print(f"{'topic':<44} {'parts':>5} {'RF':>3} {'ISR':>3} {'min.isr':>7} {'cleanup':<8}  status")
            for c in checks:
                cleanup = c.configs.get("cleanup.policy", "-")
                status = "ok" if not c.problems else "DRIFT: " + "; ".join(c.problems)
                print(f"{c.name:<44} {c.partitions:>5} {c.replication_factor:>3} {c.min_isr_seen:>3} "
                      f"{c.configs.get('min.insync.replicas', '-'):>7} {cleanup:<8}  {status}")
        drift = [c for c in checks if c.problems]
        if drift:
            print(f"{len(drift)} of {len(checks)} topics differ from the spec", file=sys.stderr)
        return 1 if drift else 0
    created = ensure_topics(settings)
    print(f"{len(created)} topics created on {settings.kafka_bootstrap_servers}")
    for name in created:
        print(f"  {name}")
    raised, refused = raise_partitions(settings)
    for line in raised:
        print(f"  raised {line}")
    for line in refused:
        print(f"  refused {line}", file=sys.stderr)
    return 1 if refused else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from connectors.dev.bench import bench_main

    settings = _broker_settings("bench")
    if settings is None:
        return 2
    return bench_main(settings, args.events, args.json, args.workers, args.rate, args.latency_seconds, args.backlog)
