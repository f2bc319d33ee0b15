"""Policy revisions on real Kafka (issue #22): the preview by the workers, REDECIDE with a worker
killed mid-way and again, one book across workers, and the history of policy ids.

2,400 Henan people: 2,200 低保 (100 of them paid) and 200 特困. The candidate policies raise the
低保 amount from 280 to 300 yuan; 特困 (全额) is unchanged."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from connectors.dev.workers import start_worker, stop_worker
from connectors.ops.cli import main
from connectors.ops.control import wait_for_control
from streams.policies import SHIPPED_POLICY_DIR
from tests.fixtures import event, new_id, payment
from tests.integration.test_policy_tables_on_kafka import Barrier

LOW, POOR, PAID = 2200, 200, 100


def _raise_low(directory: Path) -> None:
    path = directory / "410000-2025.yaml"
    text = path.read_text(encoding="utf-8")
    assert "amount_fen: 28000" in text
    path.write_text(text.replace("amount_fen: 28000", "amount_fen: 30000"), encoding="utf-8")


def _status(capsys) -> dict:
    main(["policy", "status", "--json"])
    return json.loads(capsys.readouterr().out)


def _wait(condition, timeout_s: float = 90.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.long
def test_preview_then_redecide_twice_with_a_worker_killed_mid_way(stack, tmp_path, monkeypatch, capsys):
    live, candidates = tmp_path / "live", tmp_path / "candidates"
    shutil.copytree(SHIPPED_POLICY_DIR, live)
    shutil.copytree(SHIPPED_POLICY_DIR, candidates)
    _raise_low(candidates)
    stack.cli_env(monkeypatch)
    stack.start_worker(ZHUCAN_POLICY_DIR=str(live))
    barrier = Barrier(stack)
    low = [new_id() for _ in range(LOW)]
    poor = [new_id() for _ in range(POOR)]
    for idn in low:
        stack.producer.send(stack.topics.identity["CIVIL_AFFAIRS"], value=stack.codec.encode(
            "IdentityEvent", event(idn, "MINIMUM_LIVING")))
    for idn in poor:
        stack.producer.send(stack.topics.identity["CIVIL_AFFAIRS"], value=stack.codec.encode(
            "IdentityEvent", event(idn, "EXTREME_POVERTY")))
    stack.producer.flush()
    stack.read(stack.topics.fee_standard, "FeeStandard", timeout_s=120, until=lambda rs: len(rs) >= LOW + POOR)
    for idn in low[:PAID]:
        stack.producer.send(stack.topics.payment_status, value=stack.codec.encode(
            "PaymentStatus", payment(idn, 2025, 1, "PAID", 12000)))
    stack.producer.flush()
    barrier.wait()
    _wait(lambda: _status(capsys)["one_book"], what="the worker's policy ids")

    # the preview: computed by the workers from the live states, nothing written
    assert main(["policy", "diff", str(candidates), "--region", "410000", "--year", "2025", "--json", "--people"]) == 0
    preview = json.loads(capsys.readouterr().out)
    assert preview["scanned"] == LOW + POOR and preview["changed"] == LOW - PAID
    assert preview["by_class"] == {"MINIMUM_LIVING": {"person_years": LOW - PAID, "old_fen": (LOW - PAID) * 28000,
                                                      "new_fen": (LOW - PAID) * 30000,
                                                      "change_fen": (LOW - PAID) * 2000}}
    assert preview["frozen_raised"] == {"MINIMUM_LIVING": {"person_years": PAID, "difference_fen": PAID * 2000}}
    assert len(preview["people"]) == LOW and all("********" in row["id"] for row in preview["people"])
    assert main(["policy", "diff", str(live), "--region", "410000", "--year", "2025", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] == 0  # an unchanged directory changes nothing
    fees_before = len(stack.read(stack.topics.fee_standard, "FeeStandard", timeout_s=30, idle_s=1.0))
    assert fees_before == LOW + POOR  # the previews sent tax nothing

    # the revision goes live; the worker dies once partition 0's REDECIDE has committed 1,000 people
    stack.stop_worker()
    _raise_low(live)
    stack.start_worker(ZHUCAN_POLICY_DIR=str(live), ZHUCAN_FAULTS="die_scan:0:1000")
    _wait(lambda: _status(capsys)["one_book"] and any(
        "410000-2025@" in pid and pid in preview["candidates"] for w in _status(capsys)["workers"]
        for pid in w["policy_ids"]), what="the restarted worker's new policy ids")
    assert main(["control", "redecide", "--region", "410000", "--year", "2025"]) == 0
    command_id = capsys.readouterr().out.split()[2]
    worker = stack.worker
    assert worker is not None
    _wait(lambda: worker.poll() is not None, what="the worker to die mid-way")
    assert worker.returncode == 137 and "FAULT: the worker dies after partition 0's scan committed 1000" in \
        stack.worker_log()
    stack.worker = None
    stack.start_worker(ZHUCAN_POLICY_DIR=str(live))
    assert wait_for_control(stack.settings, command_id, timeout_s=120), "the REDECIDE did not complete after the restart"

    def versions() -> dict[str, dict[int, set[int]]]:
        out: dict[str, dict[int, set[int]]] = {}
        for key, fee, _ in stack.read(stack.topics.fee_standard, "FeeStandard", timeout_s=30, idle_s=1.0):
            out.setdefault(key, {}).setdefault(fee["version"], set()).add(fee["subsidy_fen"])
        return out

    got = versions()
    for idn in low[PAID:]:
        assert got[stack.key(idn)] == {1: {28000}, 2: {30000}}, idn[:6]  # one new version, never two contents
    for idn in low[:PAID] + poor:
        assert set(got[stack.key(idn)]) == {1}  # paid, or unchanged: no new version
    cases = {c["case_id"]: c for c in stack.reviews(at_least=PAID) if c["code"] == "POLICY_REVISION"}
    assert len(cases) == PAID and {c["amount_fen"] for c in cases.values()} == {2000}

    # the same REDECIDE again changes nothing
    assert main(["control", "redecide", "--region", "410000", "--year", "2025"]) == 0
    again = capsys.readouterr().out.split()[2]
    assert wait_for_control(stack.settings, again, timeout_s=120)
    assert versions() == got
    assert {c["case_id"] for c in stack.reviews(at_least=PAID) if c["code"] == "POLICY_REVISION"} == set(cases)

    # which policy decided what
    assert main(["policy", "history", "--region", "410000", "--year", "2025", "--json"]) == 0
    history = {row["policy_id"].split("@")[1]: row["person_years"] for row in json.loads(capsys.readouterr().out)}
    assert sorted(history.values()) == [LOW - PAID, LOW + POOR]

    # a second worker with other policies: no REDECIDE and no preview while they disagree
    other_dir = tmp_path / "other-worker"
    other_dir.mkdir(mode=0o700)
    other = start_worker(stack.settings.model_copy(update={"data_dir": other_dir / "data"}), other_dir / "worker.log",
                         {"ZHUCAN_POLICY_DIR": str(SHIPPED_POLICY_DIR)})
    try:
        _wait(lambda: not _status(capsys)["one_book"], what="the second worker's policy ids")
        assert main(["control", "redecide", "--region", "410000", "--year", "2025"]) == 1
        refused = capsys.readouterr().err
        assert "hold different policies" in refused and "410000-2025@" in refused
        assert main(["policy", "diff", str(candidates), "--region", "410000", "--year", "2025"]) == 1
        assert "hold different policies" in capsys.readouterr().err
    finally:
        stop_worker(other)
    barrier.close()
