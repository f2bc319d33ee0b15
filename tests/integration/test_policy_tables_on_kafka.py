"""The policy table tests (tests/cases/*.yaml) played on real Kafka through one worker.

Every case's person gets its own ID number; the cases run side by side, step by step: step
n of every case is sent, then the driver waits until the worker has consumed and committed
everything (each input partition's committed offset at its end, twice in a row). A
``policy`` step is next year's file added: the worker is stopped, the files are written and
the worker restarted (its state comes back from RocksDB and the changelog), as a bureau
would do, once per stage (a case that adds a file and later another plays its later steps
after a second restart). Then each case's fee standards (every version, from fee-standard.v1), frozen years
(the ledger, read as `zhucan settle` reads it), review codes (review.v1), claim decisions
(subsidy-claim.decided.v1) and payment instructions (payment-instruction.v1) are checked
against the same expectations the pure-domain runner checks.

One difference from the unit runner: OPEN_YEAR is an order for a whole region, so here it
also reaches the other cases' people of that region; a case's review codes are therefore
compared as a set (the unit runner counts them exactly).
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from connectors.ops.ledger import ledger
from streams.policies import SHIPPED_POLICY_DIR, load_book
from tests.unit.streams.domain.test_policy_tables import (
    FIELDS,
    RECORD_FIELDS,
    case_id_number,
    check_money,
    check_standards,
    load_cases,
    raw_claim,
    raw_identity,
    raw_other,
    raw_payment,
    shifted_policy,
)

AS_OF = dt.date(2025, 8, 1)


class Barrier:
    """Waits until the worker's groups have committed every input partition to its end."""

    def __init__(self, stack: Any) -> None:
        s = stack.settings
        t = stack.topics
        # the intake loop reads the departments', tax's and the operators' topics; the Faust app
        # the person commands (issue #26)
        self.inputs = {s.app_id: [*t.identity.values(), t.payment_status, t.control, t.claims, t.other_channel],
                       s.streams_app_id: [t.person_commands]}
        self.admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap_servers, client_id="zhucan-test-barrier")
        self.consumer = KafkaConsumer(bootstrap_servers=s.kafka_bootstrap_servers, group_id=None)

    def caught_up(self) -> bool:
        for group, topics in self.inputs.items():
            tps = [TopicPartition(topic, p) for topic in topics for p in sorted(self.consumer.partitions_for_topic(topic) or [])]
            ends = self.consumer.end_offsets(tps)
            try:
                committed = self.admin.list_group_offsets({group: None}).get(group, {})
            except KafkaError:  # the group or its coordinator is not there yet (the worker is starting)
                return False
            for tp in tps:
                done = committed[tp].offset if tp in committed else 0
                if done < ends[tp]:
                    return False
        return True

    def wait(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        streak = 0
        while time.monotonic() < deadline:
            streak = streak + 1 if self.caught_up() else 0
            if streak >= 2:
                return
            time.sleep(0.5)
        raise AssertionError("the worker did not catch up with its inputs in time")

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()


@pytest.mark.long
def test_every_policy_table_case_on_real_kafka(stack, tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(SHIPPED_POLICY_DIR, policies)
    cases = load_cases()
    people = {name: case_id_number(case) for name, case in cases}
    stack.start_worker(ZHUCAN_POLICY_DIR=str(policies))
    barrier = Barrier(stack)
    # Each case's steps, split where it adds next year's policy. A stage is a set of added files:
    # the worker is restarted once per stage, with the files of every stage so far, smaller sets
    # first, so a case that adds one file and later another sees the first alone for a while.
    # (Others may see more files than they added; the cases are written so that does not matter.)
    runs: dict[str, list[tuple[frozenset[str], list[tuple[int, str, dict[str, Any]]]]]] = {}
    for name, case in cases:
        split: list[tuple[frozenset[str], list[tuple[int, str, dict[str, Any]]]]] = [(frozenset(), [])]
        for n, step in enumerate(case["steps"], start=1):
            (kind, body), = step.items()
            if kind == "policy":
                added_so_far = split[-1][0] | {body["add"]}
                if split[-1][1] or len(split) == 1:
                    split.append((added_so_far, []))
                else:  # two policy steps in a row: one restart
                    split[-1] = (added_so_far, [])
                continue
            split[-1][1].append((n, kind, body))
        runs[name] = split
    stages = [frozenset()] + sorted({added for split in runs.values() for added, _ in split if added},
                                    key=lambda a: (len(a), sorted(a)))
    phases = {name: [[] for _ in stages] for name in runs}
    for name, split in runs.items():
        for added, steps in split:
            phases[name][stages.index(added)] = steps
    written: set[str] = set()
    try:
        for phase, added in enumerate(stages):
            if phase:  # the bureau adds next year's files and restarts the worker
                stack.stop_worker()
                for name in sorted(added - written, key=lambda n: (n.split("-")[1], n)):  # provinces before cities
                    shifted_policy(policies, name)
                written |= added
                load_book(policies)  # valid before the worker sees them
                stack.start_worker(ZHUCAN_POLICY_DIR=str(policies))
            depth = max(len(p[phase]) for p in phases.values())
            for i in range(depth):
                controls = set()
                for name, case in cases:
                    steps = phases[name][phase]
                    if i >= len(steps):
                        continue
                    n, kind, body = steps[i]
                    idn = people[name]
                    if kind == "identity":
                        stack.send_identity(raw_identity(case, idn, body, n))
                    elif kind == "payment":
                        stack.send_payment(raw_payment(idn, body))
                    elif kind == "claim":
                        claim = raw_claim(case, idn, body, n)
                        claim["claim_id"] = f"{idn[-6:]}-{claim['claim_id']}"  # the cases reuse short claim ids
                        stack.send_claim(claim)
                    elif kind == "other_channel":
                        stack.send_other_channel(raw_other(idn, body, n))
                    elif kind in ("open_year", "redecide"):
                        controls.add((kind.upper(), str(body["region"]), int(body["year"])))
                barrier.wait()
                for command, region, year in sorted(controls):
                    stack.send_control(command, region, year, AS_OF)
                barrier.wait()
        by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for key, fee, _ in stack.read(stack.topics.fee_standard, "FeeStandard", timeout_s=30, idle_s=2.0):
            by_key[key].append(fee)
        codes: dict[str, set[str]] = defaultdict(set)
        for _, case_rec, _ in stack.read(stack.topics.review, "ReviewCase", timeout_s=30, idle_s=2.0):
            codes[case_rec["id_number"]].add(case_rec["code"])
        decisions: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for _, decided, _ in stack.read(stack.topics.claim_decisions, "ClaimDecision", timeout_s=30, idle_s=2.0):
            decisions[decided["id_number"]].append(decided)
        instructions: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for _, instruction, _ in stack.read(stack.topics.instructions, "PaymentInstruction", timeout_s=30, idle_s=2.0):
            instructions[instruction["id_number"]].append(instruction)
        # the ledger's line of each paid year (ledger.v1), its figures the paid version's
        frozen = {(e["id_number"], e["insurance_year"]): {**e, "version": e["paid_version"]}
                  for e in ledger(stack.settings) if e["paid_version"] is not None}
    finally:
        barrier.close()
    failures = []
    for name, case in cases:
        idn = people[name]
        try:
            check_standards(case, by_key.get(stack.key(idn), []))
            for year, want in (case.get("paid") or {}).items():
                fee = frozen.get((idn, year))
                assert fee is not None, f"{year}: not frozen in the ledger"
                got = {k: fee[RECORD_FIELDS[k]] for k in want if k in FIELDS}
                assert got == want, f"{year}: the ledger has {fee}"
            assert codes.get(idn, set()) == set(case.get("reviews") or []), f"review codes {codes.get(idn)}"
            check_money(case, decisions.get(idn, []), instructions.get(idn, []))
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    assert not failures, "\n".join(failures)
