"""``zhucan policy check|explain|diff|status|history``."""

from __future__ import annotations

import argparse

from connectors.ops.cli.common import _settings


def cmd_policy(args: argparse.Namespace) -> int:
    from connectors.ops import policy_cli

    actions = {
        "check": lambda: policy_cli.policy_check(args.dir or _settings().policy_dir),
        "explain": lambda: policy_cli.policy_explain(_settings().policy_dir, args.region, args.year, args.category,
                                                     args.student),
        "diff": lambda: policy_cli.policy_diff(_settings(), args.dir, args.region, args.year, args.people, args.json,
                                               args.timeout),
        "status": lambda: policy_cli.policy_status(_settings(), args.json),
        "history": lambda: policy_cli.policy_history(_settings(), args.region, args.year, args.json),
    }
    return actions[args.action]()
