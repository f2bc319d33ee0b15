"""The timeline's rules on real Kafka (issue #11): each shown end to end through the worker.

The same rules are table-tested in tests/cases/*.yaml through the pure domain; here they go
through the intake, the person stage's RocksDB/changelog state, a worker restart and the
operators' commands."""

from __future__ import annotations

import datetime as dt
import shutil
import time

from streams.policies import SHIPPED_POLICY_DIR
from tests.fixtures import HENAN, PANZHIHUA, WEIHAI, event, new_id, payment
from tests.unit.streams.domain.test_policy_tables import shifted_policy

TODAY = dt.date(2025, 8, 1)


def test_next_years_policy_added_worker_restarted_open_year_issues_the_waiting_person(stack, tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(SHIPPED_POLICY_DIR, policies)
    stack.start_worker(ZHUCAN_POLICY_DIR=str(policies))
    late, before = new_id(HENAN), new_id(HENAN)
    # certified outside Henan's 2025 window (豫医保办〔2024〕65号 三: 次年起), no 2026 policy yet
    stack.send_identity(event(late, "MINIMUM_LIVING", effective=dt.date(2025, 3, 1)))
    stack.send_identity(event(before, "EXTREME_POVERTY"))
    assert [f["insurance_year"] for f in stack.fees_for(before)] == [2025]
    (case,) = [c for c in stack.reviews() if c["id_number"] == late]
    assert (case["code"], case["insurance_year"]) == ("WAITING_FOR_POLICY", 2026)
    assert stack.fees_for(late, at_least=0, settle_s=0.5) == []  # waits in the timeline, not dropped
    # the bureau loads next year's notice and restarts the worker
    stack.stop_worker()
    shifted_policy(policies, "410000-2026")
    stack.start_worker(ZHUCAN_POLICY_DIR=str(policies))
    stack.send_control("OPEN_YEAR", "410000", 2026, TODAY)
    (fee,) = stack.fees_for(late)
    assert (fee["insurance_year"], fee["version"], fee["subsidy_fen"], fee["on_the_spot"]) == (2026, 1, 28000, False)
    assert fee["policy_id"].startswith("410000-2026@")
    both = stack.fees_for(before, at_least=2)
    assert [(f["insurance_year"], f["version"]) for f in both] == [(2025, 1), (2026, 1)]


def test_dated_ends_and_category_changes_on_kafka(running):
    # a death on 1 January 2025 or later leaves 2025 as it is; one before it withdraws 2025
    stays, goes = new_id(HENAN), new_id(HENAN)
    for idn in (stays, goes):
        running.send_identity(event(idn, "EXTREME_POVERTY"))
        running.fees_for(idn, settle_s=0)
    running.send_identity(event(stays, "EXTREME_POVERTY", change="DECEASED", effective=dt.date(2025, 2, 1)))
    running.send_identity(event(goes, "EXTREME_POVERTY", change="DECEASED", effective=dt.date(2024, 12, 20)))
    assert [f["payment_mode"] for f in running.fees_for(goes, at_least=2)] == ["ZERO_DECLARATION", "WITHDRAWN"]
    assert [f["payment_mode"] for f in running.fees_for(stays, settle_s=1)] == ["ZERO_DECLARATION"]
    # UPDATED of one civil-affairs identity keeps the other (a child who is 事实无人抚养儿童 and 低保)
    child = new_id(WEIHAI, born=dt.date(2015, 1, 1))
    running.send_identity(event(child, "DE_FACTO_UNSUPPORTED_CHILD", region=WEIHAI))
    running.send_identity(event(child, "MINIMUM_LIVING", region=WEIHAI))
    running.send_identity(event(child, "MINIMUM_LIVING", region=WEIHAI, change="UPDATED", effective=dt.date(2024, 7, 1)))
    fees = running.fees_for(child, settle_s=1.5)
    assert [(f["version"], f["payment_mode"]) for f in fees] == [(1, "ZERO_DECLARATION")]
    # a change of category (previous_category) mid-year keeps the running year's class
    changed = new_id(HENAN)
    running.send_identity(event(changed, "MINIMUM_LIVING"))
    running.fees_for(changed, settle_s=0)
    update = event(changed, "EXTREME_POVERTY", change="UPDATED", effective=dt.date(2025, 3, 1))
    running.send_identity({**update, "previous_category": "MINIMUM_LIVING"})
    time.sleep(1.5)
    assert [f["category"] for f in running.fees_for(changed, settle_s=0)] == ["MINIMUM_LIVING"]


def test_payments_freeze_what_was_paid_and_settlement_reports_it(running, monkeypatch, capsys):
    from connectors.ops.cli import main

    # Panzhihua: a level-1 person who chooses 二档 and pays the excess (攀医保〔2021〕58号 三(四))
    chooser = new_id(PANZHIHUA)
    running.send_identity(event(chooser, "EXTREME_POVERTY", region=PANZHIHUA))
    running.fees_for(chooser, settle_s=0)
    running.send_payment({**payment(chooser, 2022, 1, "PAID", 20000), "contribution_level": 2})
    # an ack of an older version freezes the year at that version's class and subsidy
    older = new_id(PANZHIHUA)
    running.send_identity(event(older, "MINIMUM_LIVING", region=PANZHIHUA))
    running.fees_for(older, settle_s=0)
    running.send_identity(event(older, "GENERAL_DISABILITY", region=PANZHIHUA))
    running.fees_for(older, at_least=2, settle_s=0)
    running.send_payment(payment(older, 2022, 1, "PAID", 8000, ack_id="older-v1"))
    (case,) = running.reviews()
    assert (case["code"], case["id_number"]) == ("SUPERSEDED_VERSION", older)
    assert "version 1" in case["detail"] and "version 2" in case["detail"]
    time.sleep(1)
    running.cli_env(monkeypatch)
    assert main(["settle", "--region", "510400", "--year", "2022", "--as-of", "2022-07-01"]) == 0
    out = capsys.readouterr().out
    # the chooser's 320.00 at level 1 is still the subsidy; the older payer settles as 低保 240.00, not 一般残疾
    assert "total MEDICAL_ASSISTANCE_FUND: 560.00元" in out and "COUNTY_BUDGET" not in out
    assert main(["coverage", "--region", "510400", "--year", "2022", "--json"]) == 0


def test_records_of_the_pre_addition_schemas_are_decided_as_before(running):
    """A department and a tax system still writing the schemas published before 2026-12."""
    from schemas import load_history

    old = {s.name: s for s in load_history()}
    codec = running.codec
    idn = new_id(HENAN)
    ev = {k: v for k, v in event(idn, "MINIMUM_LIVING").items()
          if k in {f["name"] for f in old["IdentityEvent"].raw["fields"]}}
    data = b"\xc3\x01" + old["IdentityEvent"].fingerprint + codec.encode_body(old["IdentityEvent"], ev)
    running.send_raw(running.topics.identity["CIVIL_AFFAIRS"], data, key=b"old-writer")
    (fee,) = running.fees_for(idn)
    assert (fee["insurance_year"], fee["subsidy_fen"], fee["payable_fen"]) == (2025, 28000, 12000)
    ack = {k: v for k, v in payment(idn, 2025, 1, "PAID", 12000).items()
           if k in {f["name"] for f in old["PaymentStatus"].raw["fields"]}}
    running.send_raw(running.topics.payment_status,
                     b"\xc3\x01" + old["PaymentStatus"].fingerprint + codec.encode_body(old["PaymentStatus"], ack))
    time.sleep(2)
    assert running.read(running.topics.review, "ReviewCase", timeout_s=5, idle_s=1.0) == []  # an ordinary payment
    assert running.read(running.topics.dead_letter, "IdentityEvent", timeout_s=5, idle_s=1.0) == []
    from connectors.ops.ledger import ledger

    # the ledger (ledger.v1) says the same: paid at version 1
    assert [(e["paid_version"], e["state"]) for e in ledger(running.settings) if e["id_number"] == idn] == [(1, "PAID")]
    # the worker's own state froze the year too: a later identity changes nothing for 2025
    running.send_identity(event(idn, "EXTREME_POVERTY"))
    time.sleep(2)
    assert [f["version"] for f in running.fees_for(idn, settle_s=0)] == [1]


def test_a_monthly_file_a_death_and_a_move_on_kafka(running, tmp_path, monkeypatch, capsys):
    """Issue #19 end to end: ``zhucan import`` of a monthly file that lists each person's entry and
    exit (half the file lists the exit first) keeps no one's subsidy; another department's
    routine ALIVE after a death restores nothing and raises LIVING_STATUS_CONFLICT; a move to
    another province dated after the window leaves the year to the old county."""
    import csv

    from connectors.ops.cli import main

    people = [new_id(HENAN) for _ in range(12)]
    path = tmp_path / "民政-2024-12.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["姓名", "身份证号", "身份类别", "认定地区划代码", "生效日期", "变动类型", "学生儿童"])
        for n, idn in enumerate(people):
            entry = ["甲", idn, "特困人员", HENAN, "2024-06-01", "认定", "否"]
            leave = ["甲", idn, "特困人员", HENAN, "2024-12-01", "退出", "否"]
            w.writerows([leave, entry] if n % 2 else [entry, leave])
        stayers = [new_id(HENAN) for _ in range(4)]  # only an entry: they show the file was decided
        for idn in stayers:
            w.writerow(["乙", idn, "特困人员", HENAN, "2024-06-01", "认定", "否"])
    running.cli_env(monkeypatch)
    assert main(["import", "--source", "civil-affairs", str(path)]) == 0
    waited = {running.key(idn) for idn in stayers}
    running.read(running.topics.fee_standard, "FeeStandard", until=lambda rs: waited <= {k for k, _, _ in rs})
    time.sleep(2.0)
    modes: dict[str, list[str]] = {}
    for key, fee, _ in running.read(running.topics.fee_standard, "FeeStandard", timeout_s=10, idle_s=1.0):
        modes.setdefault(key, []).append(fee["payment_mode"])
    assert all(modes[running.key(idn)] == ["ZERO_DECLARATION"] for idn in stayers)
    # (the importer keys rows by event id, so an entry and its exit may reach the worker in either
    # order): with the exit first no standard is issued; with the entry first it is withdrawn
    for idn in people:
        assert modes.get(running.key(idn), []) in ([], ["ZERO_DECLARATION", "WITHDRAWN"]), modes.get(running.key(idn))

    dead = new_id(PANZHIHUA)
    running.send_identity(event(dead, "EXTREME_POVERTY", region=PANZHIHUA))
    running.fees_for(dead, settle_s=0)
    running.send_identity(event(dead, "EXTREME_POVERTY", region=PANZHIHUA, change="DECEASED",
                                effective=dt.date(2021, 10, 1), occurred=dt.datetime(2021, 10, 5, tzinfo=dt.UTC)))
    running.fees_for(dead, at_least=2, settle_s=0)
    alive = event(dead, "MONITORED_RELAPSE_RISK", region=PANZHIHUA, occurred=dt.datetime(2021, 11, 1, tzinfo=dt.UTC))
    running.send_identity({**alive, "living_status": "ALIVE"})
    cases = [c for _, c, _ in running.read(running.topics.review, "ReviewCase", timeout_s=30, idle_s=2.0)
             if c["id_number"] == dead]
    assert [c["code"] for c in cases] == ["LIVING_STATUS_CONFLICT"]
    assert "CIVIL_AFFAIRS" in cases[0]["detail"] and "RURAL_REVITALIZATION" in cases[0]["detail"]
    assert [f["payment_mode"] for f in running.fees_for(dead, settle_s=1)] == ["ZERO_DECLARATION", "WITHDRAWN"]

    mover = new_id(HENAN)
    running.send_identity(event(mover, "MINIMUM_LIVING"))
    running.send_identity(event(mover, "MINIMUM_LIVING", change="UPDATED", region=WEIHAI,
                                effective=dt.date(2025, 2, 1)))
    fees = running.fees_for(mover, settle_s=1.5)
    assert [(f["version"], f["region_code"], f["subsidy_fen"]) for f in fees] == [(1, HENAN, 28000)]
