"""``zhucan policy check|explain``."""

from __future__ import annotations

import argparse

from connectors.ops.cli.common import _settings


def cmd_policy(args: argparse.Namespace) -> int:
    from connectors.ops.policy_cli import policy_check, policy_explain

    if args.action == "check":
        return policy_check(args.dir or _settings().policy_dir)
    return policy_explain(_settings().policy_dir, args.region, args.year, args.category, args.student)
