"""Identity lifecycle and the tax exchange on real Kafka (issue: windows, freezing, reconciliation, coverage)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time

import yaml

from connectors.ops.ledger import coverage, suspected
from connectors.taxsim import TaxBehaviour, run_tax_sim
from streams.domain.identity import validate_identity
from streams.domain.messages import FeeStandardIssued
from streams.domain.person import PersonState
from streams.policies import SHIPPED_POLICY_DIR
from tests.fixtures import HENAN, PANZHIHUA, WEIHAI, event, new_id, payment, shipped_book

TODAY = dt.date(2026, 11, 23)


def policies_with_henan_2026(tmp_path):
    """The shipped policies plus a Henan 2026 file (a copy of 2025 moved one year on)."""
    target = tmp_path / "policies"
    shutil.copytree(SHIPPED_POLICY_DIR, target)
    doc = yaml.safe_load((target / "410000-2025.yaml").read_text(encoding="utf-8"))
    doc["insurance_year"] = 2026
    doc["window"]["start"], doc["window"]["end"] = dt.date(2025, 9, 1), dt.date(2025, 12, 31)
    doc["premiums"][1]["value"] = 41000
    (target / "410000-2026.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return target


def test_open_year_issues_the_new_year_for_active_people_of_the_region(stack, tmp_path):
    stack.start_worker(ZHUCAN_POLICY_DIR=str(policies_with_henan_2026(tmp_path)))
    active, gone, elsewhere = new_id(HENAN), new_id(HENAN), new_id(WEIHAI)
    late = new_id(HENAN)
    stack.send_identity(event(active, "MINIMUM_LIVING"))
    stack.send_identity(event(gone, "EXTREME_POVERTY"))
    stack.fees_for(gone, settle_s=0)
    stack.send_identity(event(gone, "EXTREME_POVERTY", change="DECEASED", effective=dt.date(2024, 7, 1)))
    stack.fees_for(gone, at_least=2, settle_s=0)
    stack.send_identity(event(elsewhere, "ORPHAN", region=WEIHAI))
    # certified outside Henan's 2025 window: counts from 2026 (次年起), decided from its own date
    stack.send_identity(event(late, "MINIMUM_LIVING", effective=dt.date(2025, 3, 1)))
    assert [f["insurance_year"] for f in stack.fees_for(late)] == [2026]
    stack.fees_for(active)
    stack.fees_for(elsewhere)
    stack.send_control("OPEN_YEAR", "410000", 2026, TODAY)
    stack.send_control("OPEN_YEAR", "410000", 2026, TODAY)  # a second order changes nothing
    fees = stack.fees_for(active, at_least=2)
    assert [(f["insurance_year"], f["version"]) for f in fees] == [(2025, 1), (2026, 1)]
    assert fees[1]["premium_fen"] == 41000 and fees[1]["policy_id"].startswith("410000-2026@")
    gone_fees = stack.fees_for(gone, settle_s=0.5)
    assert [(f["insurance_year"], f["payment_mode"]) for f in gone_fees] == [(2025, "ZERO_DECLARATION"), (2025, "WITHDRAWN")]
    assert [f["insurance_year"] for f in stack.fees_for(elsewhere, settle_s=0.5)] == [2025]
    assert [f["insurance_year"] for f in stack.fees_for(late, settle_s=0.5)] == [2026]
    assert "OPEN_YEAR region 410000 year 2026 partition" in stack.worker_log()  # progress in the log


def test_on_the_spot_outside_the_window_in_shandong(running):
    idn = new_id(WEIHAI)
    running.send_identity(event(idn, "MINIMUM_LIVING", region=WEIHAI, effective=dt.date(2025, 5, 20)))
    (fee,) = running.fees_for(idn)
    assert fee["on_the_spot"] and fee["insurance_year"] == 2025 and fee["payment_mode"] == "DIFFERENCE"


def test_revoke_recomputes_and_death_withdraws_before_payment(running):
    idn = new_id(PANZHIHUA)
    running.send_identity(event(idn, "GENERAL_DISABILITY", region=PANZHIHUA))
    running.fees_for(idn)
    running.send_identity(event(idn, "MINIMUM_LIVING", region=PANZHIHUA))  # no change: 一般残疾 wins (四(二))
    time.sleep(1)
    running.send_identity(event(idn, "GENERAL_DISABILITY", region=PANZHIHUA, change="REVOKED",
                                effective=dt.date(2021, 7, 1)))
    running.fees_for(idn, at_least=2)
    running.send_identity(event(idn, "MINIMUM_LIVING", region=PANZHIHUA, change="DECEASED",
                                effective=dt.date(2021, 8, 1)))
    fees = running.fees_for(idn, at_least=3)
    assert [(f["version"], f["category"], f["payment_mode"]) for f in fees] == [
        (1, "GENERAL_DISABILITY", "ZERO_DECLARATION"), (2, "MINIMUM_LIVING", "DIFFERENCE"),
        (3, "MINIMUM_LIVING", "WITHDRAWN")]
    assert fees[2]["subsidy_fen"] == 0 and fees[2]["payable_fen"] == fees[2]["premium_fen"]
    for f in fees:
        assert f["premium_fen"] == f["subsidy_fen"] + f["payable_fen"]


def test_acknowledgement_problems_are_review_cases_of_the_right_kind(running):
    idn = new_id(HENAN)
    running.send_identity(event(idn, "MONITORED_RELAPSE_RISK"))
    running.fees_for(idn)
    running.send_identity(event(idn, "MINIMUM_LIVING"))
    v2 = running.fees_for(idn, at_least=2)[-1]
    stranger = new_id(HENAN)
    running.send_payment(payment(idn, 2025, 1, "PAID", 20000, ack_id="a-superseded"))
    running.send_payment(payment(idn, 2031, 1, "PAID", 100, ack_id="a-unknown-year"))
    running.send_payment(payment(stranger, 2025, 1, "PAID", 100, ack_id="a-unknown-person"))
    running.send_payment(payment(idn, 2025, 1, "PAID", 20000, ack_id="a-superseded"))  # redelivered: ignored
    running.send_payment(payment(idn, 2025, 2, "PAID", 5000, ack_id="a-superseded"))  # same id, other content
    cases = running.reviews(at_least=4)
    time.sleep(2)
    cases = running.reviews(at_least=4)
    got = sorted((c["kind"], c["code"]) for c in cases)
    assert got == sorted([("PAYMENT_MISMATCH", "SUPERSEDED_VERSION"), ("UNKNOWN_PAYMENT", "UNKNOWN_PAYMENT"),
                          ("UNKNOWN_PAYMENT", "UNKNOWN_PAYMENT"), ("OTHER", "DUPLICATE_ACK_ID")])
    for c in cases:
        assert idn not in c["detail"] and stranger not in c["detail"]
    assert v2["version"] == 2


def test_frozen_year_ignores_later_changes_and_refund_is_recorded(running):
    idn = new_id(HENAN)
    running.send_identity(event(idn, "MINIMUM_LIVING"))
    (fee,) = running.fees_for(idn)
    running.send_payment(payment(idn, 2025, 1, "PAID", fee["payable_fen"]))
    running.send_payment(payment(idn, 2025, 1, "REFUNDED", 500))
    time.sleep(2)
    running.send_identity(event(idn, "EXTREME_POVERTY"))
    running.send_identity(event(idn, "MINIMUM_LIVING", change="REVOKED", effective=dt.date(2024, 7, 1)))
    assert [f["version"] for f in running.fees_for(idn, settle_s=4)] == [1]


def test_rejected_leaves_the_person_open(running):
    idn = new_id(HENAN)
    running.send_identity(event(idn, "MINIMUM_LIVING"))
    running.fees_for(idn)
    running.send_payment(payment(idn, 2025, 1, "REJECTED", 0))
    time.sleep(2)
    running.send_identity(event(idn, "EXTREME_POVERTY"))
    fees = running.fees_for(idn, at_least=2)
    assert fees[-1]["version"] == 2 and fees[-1]["payment_mode"] == "ZERO_DECLARATION"


def test_full_payment_by_a_person_certified_in_time_is_a_tax_refund_case(running):
    """攀医保〔2021〕58号 五(三): certified by 31 Aug but charged in full -> refund the difference."""
    idn = new_id(PANZHIHUA)
    running.send_identity(event(idn, "MINIMUM_LIVING", region=PANZHIHUA))
    (fee,) = running.fees_for(idn)
    running.send_payment(payment(idn, 2022, 1, "ALREADY_PAID", fee["premium_fen"], ack_id="paid-in-full"))
    (case,) = running.reviews()
    assert (case["kind"], case["code"], case["insurance_year"]) == ("OTHER", "TAX_REFUND", 2022)
    assert case["amount_fen"] == fee["subsidy_fen"] == 24000


def test_coverage_lists_suspected_unenrolled_after_the_window(running):
    paid, silent, rejected = new_id(HENAN), new_id(HENAN), new_id(HENAN)
    for idn in (paid, silent, rejected):
        running.send_identity(event(idn, "MINIMUM_LIVING"))
    fees = {idn: running.fees_for(idn, settle_s=0)[0] for idn in (paid, silent, rejected)}
    running.send_payment(payment(paid, 2025, 1, "PAID", fees[paid]["payable_fen"]))
    running.send_payment(payment(rejected, 2025, 1, "REJECTED", 0))
    time.sleep(2)
    # Inside the grace after the window (closes 2024-12-31, 15 days' grace): nobody is suspected yet.
    running.send_control("CHECK_COVERAGE", "410000", 2025, dt.date(2025, 1, 10))
    assert suspected(running.settings, "410000", 2025) == []
    running.send_control("CHECK_COVERAGE", "410000", 2025, dt.date(2025, 1, 20))
    people = suspected(running.settings, "410000", 2025)
    assert sorted(p["id_number"] for p in people) == sorted([silent, rejected])
    assert {p["since"] for p in people} == {dt.date(2025, 1, 16)}
    (row,) = coverage(running.settings, "410000", 2025, by="province")
    assert (row.live, row.enrolled, row.meets_target) == (3, 1, False)
    assert abs(row.rate - 1 / 3) < 1e-9


def test_tax_simulator_answers_and_freezes(running):
    people = [new_id(WEIHAI) for _ in range(6)]
    for idn in people:
        running.send_identity(event(idn, "ORPHAN", region=WEIHAI))
    for idn in people:
        running.fees_for(idn, settle_s=0)
    counts = run_tax_sim(running.settings, TaxBehaviour(pay_share=1.0), group="t-sim", idle_exit_s=3, max_seconds=60)
    assert counts == {"ZERO_DECLARED": 6}
    time.sleep(2)
    (row,) = coverage(running.settings, "371000", 2025, by="city")
    assert (row.live, row.enrolled, row.rate) == (6, 6, 1.0)
    # frozen: a later identity change gives no new version
    running.send_identity(event(people[0], "ORPHAN", region=WEIHAI, change="REVOKED", effective=dt.date(2025, 2, 1)))
    assert len(running.fees_for(people[0], settle_s=3)) == 1


def test_stopping_and_restarting_mid_stream_changes_no_outcome(running):

    events = []
    people = [new_id(PANZHIHUA) for _ in range(30)]
    for i, idn in enumerate(people):
        events.append(event(idn, "MONITORED_RELAPSE_RISK", region=PANZHIHUA))
        if i % 2 == 0:
            events.append(event(idn, "MINIMUM_LIVING", region=PANZHIHUA))
        if i % 3 == 0:
            events.append(event(idn, "SEVERE_DISABILITY", region=PANZHIHUA))
    half = len(events) // 2
    for ev in events[:half]:
        running.send_identity(ev)
    running.fees_for(people[0], settle_s=0)
    running.stop_worker()  # mid-stream
    for ev in events[half - 5:]:  # the tail, plus a few redeliveries of what was already processed
        running.send_identity(ev)
    running.start_worker()
    # Oracle: the pure domain applied per person in the order each person's events were sent per source.
    expected = {}
    for idn in people:
        state = PersonState(idn)
        last = None
        for ev in [e for e in events if e["id_number"] == idn]:
            for eff in state.apply_identity(validate_identity(ev), shipped_book(), "k" * 64, 0):
                if isinstance(eff, FeeStandardIssued):
                    last = eff
        expected[idn] = (last.category, last.contribution_level, last.subsidy_fen)

    def final(recs):
        out = {}
        for key, fee, _ in recs:
            if key not in out or fee["version"] > out[key]["version"]:
                out[key] = fee
        return out

    keys = {running.key(idn): idn for idn in people}

    def settled(recs) -> bool:
        got = final(recs)
        return all(k in got and (got[k]["category"], got[k]["contribution_level"], got[k]["subsidy_fen"])
                   == expected[keys[k]] for k in keys)

    recs = running.read(running.topics.fee_standard, "FeeStandard", until=settled, timeout_s=120)
    got = final(recs)
    wrong = {keys[k][-4:]: (expected[keys[k]], (got[k]["category"], got[k]["contribution_level"], got[k]["subsidy_fen"])
                            if k in got else None) for k in keys
             if k not in got or (got[k]["category"], got[k]["contribution_level"], got[k]["subsidy_fen"]) != expected[keys[k]]}
    assert not wrong, f"{len(wrong)} people differ (expected, got): {wrong}"
    by_person: dict[str, dict[int, dict]] = {}
    for key, fee, _ in recs:
        versions = by_person.setdefault(key, {})
        if fee["version"] in versions:  # a re-sent version must be the same version, not a different one
            old = versions[fee["version"]]
            assert (old["message_id"], old["category"], old["subsidy_fen"]) == (
                fee["message_id"], fee["category"], fee["subsidy_fen"])
        versions[fee["version"]] = fee
    for versions in by_person.values():
        assert sorted(versions) == list(range(1, len(versions) + 1))  # no gaps, never reused


def test_coverage_command_checks_and_reports(running, monkeypatch, capsys):
    from connectors.ops.cli import main

    idn = new_id(PANZHIHUA)
    running.send_identity(event(idn, "MINIMUM_LIVING", region=PANZHIHUA, name="未缴"))
    running.fees_for(idn, settle_s=0)
    running.cli_env(monkeypatch)
    assert main(["coverage", "--check", "--region", "510400", "--year", "2022", "--as-of", "2022-03-01"]) == 0
    out = capsys.readouterr().out
    assert "510402   2022       1         0     0.0%     99%  BELOW" in out  # against the region's coverage_target
    assert "target of 510402: 攀医保〔2021〕58号" in out  # and its clause
    assert "suspected un-enrolled (疑似未参保): 1" in out and "未缴" in out
    assert idn not in out and idn[:6] + "********" + idn[-4:] in out


def test_settlement_and_budget_estimate(running, tmp_path, monkeypatch, capsys):
    from connectors.ops.cli import main

    low, severe, silent = new_id(PANZHIHUA), new_id(PANZHIHUA), new_id(PANZHIHUA)
    running.send_identity(event(low, "MINIMUM_LIVING", region=PANZHIHUA))
    running.send_identity(event(severe, "SEVERE_DISABILITY", region=PANZHIHUA))
    running.send_identity(event(silent, "MONITORED_RELAPSE_RISK", region=PANZHIHUA))
    fees = {idn: running.fees_for(idn, settle_s=0)[0] for idn in (low, severe, silent)}
    running.send_payment(payment(low, 2022, 1, "PAID", fees[low]["payable_fen"]))
    running.send_payment(payment(severe, 2022, 1, "ZERO_DECLARED", 0))
    time.sleep(2)
    running.cli_env(monkeypatch)
    assert main(["settle", "--region", "510400", "--year", "2022", "--as-of", "2022-07-01", "--publish"]) == 0
    out = capsys.readouterr().out
    assert "total COUNTY_BUDGET: 520.00元" in out and "total MEDICAL_ASSISTANCE_FUND: 240.00元" in out
    lines = [v for _, v, _ in running.read(running.topics.settlement, "SettlementLine", until=lambda rs: len(rs) >= 2)]
    got = sorted((ln["category"], ln["funding_source"], ln["persons"], ln["subsidy_fen"]) for ln in lines)
    assert got == [("MINIMUM_LIVING", "MEDICAL_ASSISTANCE_FUND", 1, 24000), ("SEVERE_DISABILITY", "COUNTY_BUDGET", 1, 52000)]

    assert main(["budget", "--region", "510400", "--year", "2022"]) == 0
    assert "total 1000.00元" in capsys.readouterr().out  # 240 + 520 + 240, whoever paid
    assert main(["budget", "--region", "510400", "--year", "2022", "--json"]) == 0
    live_budget = json.loads(capsys.readouterr().out)
    what_if = tmp_path / "what-if"
    shutil.copytree(SHIPPED_POLICY_DIR, what_if)
    # the what-if runs on the workers' engine: with the live policies unchanged it is the live budget, exactly
    assert main(["budget", "--region", "510400", "--year", "2022", "--what-if", str(what_if), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == live_budget
    path = what_if / "510400-2022.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("percent: 75", "percent: 80"), encoding="utf-8")
    assert main(["budget", "--region", "510400", "--year", "2022", "--what-if", str(what_if), "--json"]) == 0
    rows = {(r["category"], r["subsidy_fen"]) for r in json.loads(capsys.readouterr().out)}
    # the paid 低保 year keeps what was paid (its raise is a POLICY_REVISION case); the unpaid one is re-decided
    assert rows == {("MINIMUM_LIVING", 24000), ("MONITORED_RELAPSE_RISK", 25600), ("SEVERE_DISABILITY", 52000)}
    live = (SHIPPED_POLICY_DIR / "510400-2022.yaml").read_text(encoding="utf-8")
    assert "percent: 75" in live  # the live policy is untouched
