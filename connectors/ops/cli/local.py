"""Commands that run things: the local Kafka, the worker, the demo, topics, the bench."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from connectors.ops.cli.common import _broker_settings, _settings


def cmd_kafka(args: argparse.Namespace) -> int:
    from connectors.dev.localkafka import LocalKafka, LocalKafkaError, default_broker

    try:
        broker = default_broker(args.nodes, secure=getattr(args, "secure", False))
        if args.action == "up":
            broker.start()
            print(f"export KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}")
            if isinstance(broker, LocalKafka) and broker.secured:
                print(f"# secured: clients find {broker.credentials_file} by themselves (as admin unless "
                      "KAFKA_SASL_USERNAME names another user); `zhucan acl apply` grants the principals")
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


def cmd_acl(args: argparse.Namespace) -> int:
    from streams.kafka.acl import ACL_FILE, AclFileError, apply_acls, grants, load_acl_file

    settings = _settings()
    if args.action == "passwd":
        return _passwd(settings.kafka_bootstrap_servers, args.user, args.password_file)
    try:
        wanted = grants(load_acl_file(Path(args.file) if args.file else ACL_FILE), settings.topics,
                        settings.departments, settings.app_id)
    except AclFileError as exc:
        print(f"zhucan acl: {exc}", file=sys.stderr)
        return 2
    if args.action == "show":
        for b in sorted(wanted):
            print(b)
        return 0
    plan = apply_acls(settings.kafka_bootstrap_servers, wanted, dry_run=args.dry_run)
    verb = ("would add", "would remove") if args.dry_run else ("added", "removed")
    for b in plan.add:
        print(f"{verb[0]:>12}  {b}")
    for b in plan.remove:
        print(f"{verb[1]:>12}  {b}")
    for other in plan.untouched:
        print(f"{'left alone':>12}  {other} (a DENY: it only takes away)")
    print(f"{len(wanted)} ACLs for {len({b.principal for b in wanted})} principals; "
          f"{len(plan.add)} {verb[0]}, {len(plan.remove)} {verb[1]}")
    return 0


def _passwd(bootstrap: str, user: str | None, password_file: str | None) -> int:
    """A new generated password for ``user``: set on the cluster, then written (never printed) to
    ``password_file`` or, on the secured local broker, into its credentials file."""
    import secrets

    from streams.kafka.acl import set_password
    from streams.kafka.security import CREDENTIALS_FILE, embedded_credentials, embedded_home

    if not user:
        print("zhucan acl passwd: name the user (e.g. `zhucan acl passwd tax`)", file=sys.stderr)
        return 2
    local = embedded_credentials(bootstrap)
    if password_file is None and local is None:
        print("zhucan acl passwd: not the secured local broker; say where the new password goes: --password-file",
              file=sys.stderr)
        return 2
    password = secrets.token_hex(16)
    set_password(bootstrap, user, password)
    if password_file is not None:
        target = Path(password_file)
        target.touch(mode=0o600)
        target.chmod(0o600)
        target.write_text(password + "\n", encoding="utf-8")
    else:
        assert local is not None
        local["users"][user] = password
        target = embedded_home() / CREDENTIALS_FILE
        target.write_text(json.dumps(local, indent=2) + "\n", encoding="utf-8")
    print(f"new password of {user} set on {bootstrap}, written to {target}; restart its processes")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.worker import run_worker

    settings = _settings()
    run_worker(settings, loglevel=args.loglevel or settings.log_level.lower())
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
            width = max([len("topic"), *(len(c.name) for c in checks)])  # a long prefix keeps the columns
            print(f"{'topic':<{width}} {'parts':>5} {'RF':>3} {'ISR':>3} {'min.isr':>7} {'cleanup':<8}  status")
            for c in checks:
                cleanup = c.configs.get("cleanup.policy", "-")
                status = "ok" if not c.problems else "DRIFT: " + "; ".join(c.problems)
                print(f"{c.name:<{width}} {c.partitions:>5} {c.replication_factor:>3} {c.min_isr_seen:>3} "
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

    def written(found: dict[str, Any]) -> int:
        if args.json:
            Path(args.json).write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
        return 0

    if args.in_process:  # no broker: the intake and the person stage's own code
        from connectors.dev.bench import interpreter
        from connectors.dev.hotpath import measure

        found: dict[str, Any] = {**measure(args.events, args.spread_days), "machine": interpreter()}  # the build moves the figures
        width = max(map(len, found))
        for k, v in found.items():
            print(f"{k:<{width}} {v}" if isinstance(v, str) else f"{k:<{width}} {v:,}")
        return written(found)
    settings = _broker_settings("bench")
    if settings is None:
        return 2
    if args.clients:  # the Kafka clients alone, no worker
        from connectors.dev.clients import measure_clients, print_clients

        found = measure_clients(settings, args.events, keep_topics=args.keep_topics)
        print_clients(found)
        return written(found)
    return bench_main(settings, args.events, args.json, args.workers, args.rate, args.latency_seconds, args.backlog,
                      args.revision, args.kill, args.static_members, args.keep_topics, args.latency_client,
                      args.spread_days, args.batch_client)
