"""Money to people on real Kafka (issue #23; CONTRACT additions 2026-12, rules 7-10): one claim
of each kind end to end, payments that leave money owed, another channel, bad input, the
county's claim file, the operators' views, and a worker killed after an instruction was
acknowledged by the broker but before its state was written (no second instruction: the same
id, which finance, 一卡通 and tax pay once, and which the settlement counts once)."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from connectors.ops.cli import main
from connectors.ops.ledger import settlement
from tests.fixtures import event, new_id, payment
from tests.integration.fixtures import full_ids
from tests.integration.test_policy_tables_on_kafka import Barrier

AS_OF = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)


def claim(claim_id: str, idn: str, kind: str, year: int, paid: int, *, enrolled: str = "440106",
          scheme: str | None = None, submitted: dt.date | None = None, evidence: str = "T-9") -> dict[str, Any]:
    return {"claim_id": claim_id, "kind": kind, "id_number": idn, "name": "测试", "insurance_year": year,
            "enrolled_region_code": enrolled,
            "scheme": scheme or ("EMPLOYEE" if kind == "EMPLOYEE_INSURANCE" else "RESIDENT"),
            "amount_paid_fen": paid, "paid_at": dt.datetime(year - 1, 12, 1, tzinfo=dt.UTC), "evidence": evidence,
            "submitted_at": dt.datetime.combine(submitted or dt.date(year, 3, 1), dt.time(9), tzinfo=dt.UTC)}


def by_claim(stack) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, d, _ in stack.read(stack.topics.claim_decisions, "ClaimDecision", timeout_s=30, idle_s=2.0):
        out[d["claim_id"]].append(d)
    return out


def instructions(stack) -> list[dict[str, Any]]:
    return [i for _, i, _ in stack.read(stack.topics.instructions, "PaymentInstruction", timeout_s=30, idle_s=2.0)]


def standard(stack, idn: str) -> None:
    stack.read(stack.topics.fee_standard, "FeeStandard", timeout_s=60,
               until=lambda rs: any(k == stack.key(idn) for k, _, _ in rs))


@pytest.mark.long
def test_one_of_each_flow_end_to_end(stack, tmp_path: Path, monkeypatch, capsys) -> None:
    stack.cli_env(monkeypatch)
    stack.start_worker()
    barrier = Barrier(stack)
    away, window, emp, late, pzh_away, other = (new_id("410102"), new_id("410102"), new_id("500101"),
                                                  new_id("510402"), new_id("510402"), new_id("410102"))
    civil = stack.topics.identity["CIVIL_AFFAIRS"]
    for idn, region, day in ((away, "410102", dt.date(2024, 6, 1)), (window, "410102", dt.date(2024, 10, 1)),
                             (emp, "500101", dt.date(2019, 7, 1)), (late, "510402", dt.date(2021, 5, 1)),
                             (pzh_away, "510402", dt.date(2021, 5, 1)), (other, "410102", dt.date(2024, 6, 1))):
        stack.producer.send(civil, value=stack.codec.encode("IdentityEvent", event(
            idn, "MINIMUM_LIVING", region=region, effective=day)))
    stack.producer.flush()
    for idn in (away, window, emp, late, pzh_away, other):
        standard(stack, idn)

    # claims: a cross-region one (sent twice: one decision), an employee-insurance one, one
    # Panzhihua refuses (六(二)), one with an invalid ID number
    stack.send_claim(claim("henan-away-1", away, "CROSS_REGION_ENROLMENT", 2025, 40000))
    stack.send_claim(claim("henan-away-1", away, "CROSS_REGION_ENROLMENT", 2025, 40000))
    stack.send_claim(claim("cq-emp-1", emp, "EMPLOYEE_INSURANCE", 2020, 180000, enrolled="500103",
                           submitted=dt.date(2020, 5, 20)))
    stack.send_claim(claim("pzh-away-1", pzh_away, "CROSS_REGION_ENROLMENT", 2022, 32000, enrolled="410102"))
    stack.send_claim(claim("bad-id-1", "41010219700101001", "PAID_IN_FULL", 2025, 40000))
    # payments that leave money owed: Henan's post-hoc subsidy, Panzhihua's late-data refund
    stack.send_payment(payment(window, 2025, 1, "ALREADY_PAID", 40000))
    stack.send_payment(payment(late, 2022, 1, "ALREADY_PAID", 32000))
    # another channel subsidises a premium the standard subsidises too
    stack.send_other_channel({"record_id": "charity-1", "funder": "慈善总会", "id_number": other,
                              "insurance_year": 2025, "amount_fen": 10000,
                              "reported_at": dt.datetime(2024, 11, 1, tzinfo=dt.UTC)})
    # the county's claim file: one good row (the other channel's person: already subsidised) and
    # one bad row, in the error report
    sheet = tmp_path / "claims.csv"
    sheet.write_text("申请编号,申请类型,姓名,身份证号,参保年度,参保地区划代码,险种,已缴金额(元),缴费日期,缴费凭证\n"
                     f"file-1,异地参保,测试,{other},2025,440106,居民,400.00,2024-12-01,粤税-1\n"
                     f"file-2,补贴,测试,{other},2025,440106,居民,400.00,2024-12-01,粤税-2\n", encoding="utf-8")
    assert main(["import", "--claims", str(sheet)]) == 3  # a bad row
    report = (tmp_path / "claims.csv.errors.csv").read_text(encoding="utf-8-sig")
    assert "UNKNOWN_KIND" in report and other not in report
    assert main(["import", "--claims", str(sheet)]) == 0  # the same file again: nothing sent
    assert "already imported" in capsys.readouterr().out
    barrier.inputs[stack.settings.app_id] += [stack.topics.claims, stack.topics.other_channel]
    barrier.wait()

    decisions = by_claim(stack)
    assert {k: [(d["outcome"], sorted(d["reasons"]), d["amount_fen"], d["code"]) for d in v]
            for k, v in decisions.items()} == {
        "henan-away-1": [("APPROVED", [], 28000, "")],  # sent twice, decided once (rule 7)
        "cq-emp-1": [("APPROVED", [], 14000, "")],
        "pzh-away-1": [("REFUSED", ["NOT_ALLOWED_BY_POLICY"], 0, "")],  # 攀医保〔2021〕58号 六(二)
        "bad-id-1": [("REFUSED", ["NOT_ASSISTED_IN_YEAR"], 0, "INVALID_ID")],
        "file-1": [("REFUSED", ["ALREADY_SUBSIDISED"], 0, "")],  # the other channel paid that year
    }
    paid = {(i["kind"], i["cause_id"]): (i["amount_fen"], i["channel"], i["notify_sms"], i["region_code"])
            for i in instructions(stack)}
    ack_of = {i["cause_id"] for i in instructions(stack) if i["kind"] in ("POST_HOC_SUBSIDY", "LATE_DATA_REFUND")}
    assert len(ack_of) == 2
    assert sorted(paid.values()) == sorted([
        (28000, "SOCIAL_SECURITY_CARD", False, "410102"),  # cross-region, 一卡通 (豫 六)
        (14000, "PAYROLL_BANK_CARD", True, "500101"),  # employee insurance, with an SMS (渝 三)
        (28000, "SOCIAL_SECURITY_CARD", False, "410102"),  # post-hoc subsidy (豫 六)
        (24000, "TAX_REFUND", False, "510402"),  # late-data refund by tax (攀 五(三))
    ])
    assert paid[("CROSS_REGION_SUBSIDY", "henan-away-1")][0] == 28000
    assert paid[("EMPLOYEE_INSURANCE_REFUND", "cq-emp-1")][0] == 14000
    cases = [c for c in stack.reviews(at_least=3) if c["code"] == "DOUBLE_SUBSIDY"]
    assert [(c["amount_fen"], "慈善总会" in c["detail"]) for c in cases] == [(10000, True)]

    # the settlement: instructions apart from enrolment subsidies, never both for one person-year
    lines = settlement(stack.settings, None, None, AS_OF)
    kinds = {(x["region_code"], x["kind"]): (x["persons"], x["subsidy_fen"]) for x in lines}
    assert kinds[("410102", "CROSS_REGION_SUBSIDY")] == (1, 28000)
    assert kinds[("410102", "POST_HOC_SUBSIDY")] == (1, 28000)
    assert kinds[("510402", "LATE_DATA_REFUND")] == (1, 24000)
    assert ("510402", "ENROLMENT_SUBSIDY") not in kinds  # the refunded year is settled as the refund only
    assert {x["department"] for x in lines if x["region_code"] == "500101"} == {"CIVIL_AFFAIRS"}  # 渝 二(二)2

    # the operators' views: masked IDs only
    assert main(["claims", "list"]) == 0
    listed = capsys.readouterr().out
    assert "5 claims decided: APPROVED 2, REFUSED 3" in listed and not full_ids(listed)
    assert main(["claims", "show", "cq-emp-1", "--json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert shown["instruction"]["channel"] == "PAYROLL_BANK_CARD" and not full_ids(json.dumps(shown))
    assert main(["settle", "--year", "2020"]) == 0
    assert "EMPLOYEE_INSURANCE_REFUND" in capsys.readouterr().out
    from connectors.ops.dashboard import DashboardState

    state = DashboardState(stack.settings, coverage_every_s=3600)
    try:
        state.refresh()
        assert state.snapshot()["claims"] == {"APPROVED": 2, "REFUSED": 3}
    finally:
        state.stop()
    barrier.close()


def test_a_worker_killed_after_the_instruction_was_acknowledged_pays_once(stack) -> None:
    """The instruction reached the broker, the worker died before the claim was written to the
    person's state: after the restart the claim is applied again and gives the same instruction
    id and the same decision (a record again, at least once), never a second payment."""
    idn = new_id("410102")
    stack.start_worker(ZHUCAN_FAULTS="die_sent:instructions:1")
    stack.send_identity(event(idn, "MINIMUM_LIVING", effective=dt.date(2024, 6, 1)))
    standard(stack, idn)
    stack.send_claim(claim("crash-1", idn, "CROSS_REGION_ENROLMENT", 2025, 40000))
    assert stack.worker is not None and stack.worker.wait(60) == 137
    assert "FAULT: the worker dies after a unit's records for instructions were acknowledged" in stack.worker_log()
    stack.start_worker()
    stack.read(stack.topics.claim_decisions, "ClaimDecision", timeout_s=60, until=lambda rs: len(rs) >= 2)
    barrier = Barrier(stack)
    barrier.inputs[stack.settings.app_id] += [stack.topics.claims]
    barrier.wait()
    barrier.close()
    sent = instructions(stack)
    assert len(sent) == 2  # the first unit's record, and the same again after the restart
    assert {(i["instruction_id"], i["kind"], i["cause_id"], i["amount_fen"]) for i in sent} == {
        (sent[0]["instruction_id"], "CROSS_REGION_SUBSIDY", "crash-1", 28000)}
    assert {(d["outcome"], d["amount_fen"]) for d in by_claim(stack)["crash-1"]} == {("APPROVED", 28000)}
    lines = settlement(stack.settings, None, 2025, AS_OF)
    assert [(x["kind"], x["persons"], x["subsidy_fen"]) for x in lines] == [("CROSS_REGION_SUBSIDY", 1, 28000)]
    # and a redelivery now (the state holds the claim) adds nothing
    stack.send_claim(claim("crash-1", idn, "CROSS_REGION_ENROLMENT", 2025, 40000))
    barrier = Barrier(stack)
    barrier.inputs[stack.settings.app_id] += [stack.topics.claims]
    barrier.wait()
    barrier.close()
    assert len(instructions(stack)) == 2
