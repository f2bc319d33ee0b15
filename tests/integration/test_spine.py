"""The spine on real Kafka: produce with kafka-python, read what the worker publishes."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time

from connectors.dev.sample import make_id
from connectors.kafka_io import read_topic
from streams.domain.ids import check_char
from tests.fixtures import HENAN, PANZHIHUA, WEIHAI, event, in_window, new_id, payment
from tests.integration.fixtures import full_ids


def test_redelivered_event_gives_one_version(running):
    idn = new_id()
    ev = event(idn, "MINIMUM_LIVING")
    running.send_identity(ev)
    running.send_identity(dict(ev))  # the department redelivers the same event id
    fees = running.fees_for(idn)
    assert [f["version"] for f in fees] == [1]
    fee = fees[0]
    assert (fee["insurance_year"], fee["premium_fen"], fee["subsidy_fen"], fee["payable_fen"]) == (2025, 40000, 28000, 12000)
    assert fee["premium_fen"] == fee["subsidy_fen"] + fee["payable_fen"]
    assert fee["policy_id"].startswith("410000-2025@") and fee["basis"].startswith("持有: 低保(民政)")
    assert fee["id_number"] == idn


def test_same_person_from_two_departments_gives_one_standard(running):
    idn = new_id()
    running.send_identity(event(idn, "EXTREME_POVERTY"))
    assert len(running.fees_for(idn)) == 1
    running.send_identity(event(idn, "MONITORED_RELAPSE_RISK"))  # lower subsidy: highest wins, nothing changes
    fees = running.fees_for(idn, settle_s=4.0)
    assert len(fees) == 1 and fees[0]["category"] == "EXTREME_POVERTY" and fees[0]["payment_mode"] == "ZERO_DECLARATION"


def test_better_identity_from_a_second_department_is_a_new_version(running):
    idn = new_id(PANZHIHUA)
    running.send_identity(event(idn, "MONITORED_RELAPSE_RISK", region=PANZHIHUA))
    running.fees_for(idn)
    running.send_identity(event(idn, "MINIMUM_LIVING", region=PANZHIHUA))  # 民政 over 乡村振兴 (攀 四(三))
    fees = running.fees_for(idn, at_least=2)
    assert [f["version"] for f in fees] == [1, 2]
    assert fees[-1]["category"] == "MINIMUM_LIVING" and fees[-1]["subsidy_fen"] == 24000
    assert fees[0]["message_id"] != fees[1]["message_id"]


def test_garbage_goes_to_dead_letter_and_the_next_record_is_processed(running):
    topic = running.topics.identity["CIVIL_AFFAIRS"]
    running.send_raw(topic, b"\x00\x01 garbage that is not avro", key=b"same-key")
    idn = new_id()
    running.producer.send(topic, key=b"same-key", value=running.codec.encode("IdentityEvent", event(idn, "ORPHAN", region=WEIHAI)))
    running.producer.flush()
    assert len(running.fees_for(idn)) == 1
    letters = read_topic(running.settings.kafka_bootstrap_servers, running.topics.dead_letter, timeout_s=30,
                         until=lambda rs: len(rs) >= 1)
    assert len(letters) == 1
    headers = {k: v.decode() for k, v in letters[0].headers}
    assert headers["zhucan.origin.topic"] == topic
    assert headers["zhucan.origin.partition"].isdigit() and headers["zhucan.origin.offset"].isdigit()
    assert headers["zhucan.error.class"] in {"FRAMING", "UNKNOWN_SCHEMA"}
    assert letters[0].value == b"\x00\x01 garbage that is not avro"


def test_bad_records_go_back_to_their_sender_with_typed_reasons(running):
    good = new_id()
    bad_sum = new_id()
    bad_sum = bad_sum[:17] + ("1" if bad_sum[17] != "1" else "2")
    running.send_identity(event(bad_sum, "MINIMUM_LIVING", event_id="bad-1"))
    running.send_identity(event(new_id(), "EXTREME_POVERTY", source="RURAL_REVITALIZATION", event_id="bad-2"))
    late = event(new_id(), "MINIMUM_LIVING", event_id="bad-3", effective=dt.date(1900, 1, 1))
    running.send_identity(late)
    running.send_identity(event(good, "MINIMUM_LIVING"))
    rejections = running.read(running.topics.rejected, "Rejection", until=lambda rs: len(rs) >= 3)
    by_id = {v["event_id"]: v for _, v, _ in rejections}
    assert by_id["bad-1"]["reasons"] == ["ID_CHECKSUM"] and by_id["bad-1"]["source"] == "CIVIL_AFFAIRS"
    assert by_id["bad-1"]["id_number"] == bad_sum  # as received, for the sender to find
    assert by_id["bad-2"]["reasons"] == ["CATEGORY_NOT_OF_SOURCE"] and by_id["bad-2"]["source"] == "RURAL_REVITALIZATION"
    assert "DATE_INVALID" in by_id["bad-3"]["reasons"]
    for key, _, _ in rejections:
        assert key is not None and len(key) == 64  # keyed by person key, never the ID
    # each department's own topic has its own people's rejections, and only those
    own = running.read(running.topics.rejected_of["RURAL_REVITALIZATION"], "Rejection", until=lambda rs: len(rs) >= 1)
    assert [v["event_id"] for _, v, _ in own] == ["bad-2"]
    civil = running.read(running.topics.rejected_of["CIVIL_AFFAIRS"], "Rejection", until=lambda rs: len(rs) >= 2)
    assert sorted(v["event_id"] for _, v, _ in civil) == ["bad-1", "bad-3"]
    assert len(running.fees_for(good)) == 1


def test_digits_other_than_0_to_9_go_back_to_their_sender(running):
    """A full-width digit in an ID number (its check character right) was taken as another
    person, and one in a county code as a county (str.isdigit): both go back as typed rejections."""
    idn = new_id()
    wide = idn[:8] + chr(ord(idn[8]) - ord("0") + 0xFF10) + idn[9:17]  # one digit full-width
    running.send_identity(event(wide + check_char(wide), "MINIMUM_LIVING", event_id="wide-id"))
    running.send_identity(event(new_id(), "MINIMUM_LIVING", event_id="wide-region", region=HENAN[:2] + "\uff10" + HENAN[3:],
                                effective=in_window(HENAN)))
    rejections = running.read(running.topics.rejected, "Rejection", until=lambda rs: len(rs) >= 2)
    by_id = {v["event_id"]: v for _, v, _ in rejections}
    assert by_id["wide-id"]["reasons"] == ["ID_FORMAT"]
    assert by_id["wide-region"]["reasons"] == ["UNKNOWN_REGION"]


def test_payment_freezes_the_year(running):
    idn = new_id()
    running.send_identity(event(idn, "MINIMUM_LIVING"))
    (fee,) = running.fees_for(idn)
    running.send_payment(payment(idn, 2025, fee["version"], "PAID", fee["payable_fen"], ack_id="ack-freeze"))
    time.sleep(2)
    running.send_identity(event(idn, "EXTREME_POVERTY"))  # after payment: next year only
    running.send_payment(payment(idn, 2025, 7, "PAID", 1, ack_id="ack-wrong-version"))
    reviews = running.read(running.topics.review, "ReviewCase", until=lambda rs: len(rs) >= 2)
    # a version tax never had, and a second payment of a paid person-year (人费对应, issue #19)
    assert sorted((v["kind"], v["code"], v["amount_fen"]) for _, v, _ in reviews) == [
        ("PAYMENT_MISMATCH", "DUPLICATE_PAYMENT", 1), ("PAYMENT_MISMATCH", "SUPERSEDED_VERSION", None)]
    assert all(idn not in v["detail"] for _, v, _ in reviews)
    assert [f["version"] for f in running.fees_for(idn, settle_s=3)] == [1]


def test_worker_restart_recovers_state_and_changes_no_outcome(running):
    idn = new_id()
    first = event(idn, "MONITORED_RELAPSE_RISK")
    running.send_identity(first)
    running.fees_for(idn)
    running.stop_worker()
    running.send_identity(dict(first))  # redelivered while the worker is down
    running.send_identity(event(idn, "MINIMUM_LIVING"))
    running.start_worker()
    fees = running.fees_for(idn, at_least=2, timeout_s=90)
    assert [f["version"] for f in fees] == [1, 2]  # the redelivery was recognised after recovery
    assert fees[-1]["category"] == "MINIMUM_LIVING"


def test_no_full_id_number_in_the_worker_log(running):
    ids = [new_id(), make_id(HENAN, dt.date(1961, 2, 17), 52)]
    bad = new_id()
    bad = bad[:17] + ("1" if bad[17] != "1" else "2")
    running.send_identity(event(ids[0], "MINIMUM_LIVING", name="甲"))
    running.send_identity(event(ids[0], "MONITORED_RELAPSE_RISK", name="乙"))  # name conflict review (logged)
    legacy15 = ids[1][:6] + ids[1][8:17]
    running.send_identity(event(legacy15, "MINIMUM_LIVING"))
    running.send_identity(event(bad, "MINIMUM_LIVING"))
    # a rejected event whose department event id holds a valid ID number (issue #20: it was logged whole)
    running.send_identity({**event(ids[0], "ORPHAN", source="RURAL_REVITALIZATION"), "event_id": f"{ids[0]}-20241201"})
    running.send_identity(event(new_id(), "MINIMUM_LIVING", effective=dt.date(2025, 5, 1)))  # no-policy review
    running.fees_for(ids[0])
    running.fees_for(ids[1])
    running.read(running.topics.rejected, "Rejection", until=lambda rs: len(rs) >= 2)
    time.sleep(1)
    cases = running.reviews(at_least=2)
    assert {"NAME_CONFLICT", "OTHER"} <= {c["kind"] for c in cases}  # name conflict raised, processing went on
    log = running.worker_log()
    assert "rejected event" in log and "ReviewCase" in log  # the worker did log about these people (review cases by record name)
    for idn in [*ids, legacy15, bad]:
        assert idn not in log
    assert full_ids(log) == []


def test_demo_command_shows_fee_standards(kafka_bootstrap, tmp_path):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "ZHUCAN_TOPIC_PREFIX": f"demo{os.getpid()}.",
           "ZHUCAN_APP_ID": f"zhucan-demo-{os.getpid()}", "ZHUCAN_DATA_DIR": str(tmp_path), "ZHUCAN_PARTITIONS": "2"}
    proc = subprocess.run([sys.executable, "-m", "connectors.ops.cli", "demo", "--timeout", "120"], env=env,
                          capture_output=True, text=True, timeout=240)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "fee standards (一人一档)" in out and "(no standard yet)" not in out
    assert "攀医保〔2021〕58号" in out and "随参随缴" in out
    assert "ID_CHECKSUM" in out and "CATEGORY_NOT_OF_SOURCE" in out
    assert "coverage (参保率)" in out and "suspected un-enrolled (疑似未参保)" in out
    assert "settlement (资助汇总表)" in out and "COUNTY_BUDGET" in out
    # money to people (issue #23): one of each flow
    money = out[out.index("== claims decided"):]
    assert "CROSS_REGION_SUBSIDY" in money and "via SOCIAL_SECURITY_CARD" in money  # 豫 三、六
    assert "EMPLOYEE_INSURANCE_REFUND" in money and "PAYROLL_BANK_CARD + SMS" in money  # 渝 三
    assert "POST_HOC_SUBSIDY" in money  # 豫 六: paid in full in the window
    assert "NOT_ALLOWED_BY_POLICY" in money  # 攀 六(二): nobody enrolled elsewhere is paid
    assert "DOUBLE_SUBSIDY review cases: 1" in money and "慈善总会" in money
    assert full_ids(out) == []


def test_the_stall_report_says_where_a_missing_persons_commands_are(running):
    """What a failed ``assert_whole`` prints to tell a loss at the intake from a skip at the person
    stage (a run once had 166 people without a standard, with nothing to say which)."""
    from streams.runtime.partitioning import partition_for
    from tests.integration.fixtures import whereabouts

    decided, never_sent = new_id(), new_id()
    running.send_identity(event(decided, "MINIMUM_LIVING"))
    running.fees_for(decided)
    report = "\n".join(whereabouts(running, {running.key(decided)}))
    partition = partition_for(running.key(decided).encode(), running.settings.partitions)
    assert re.search(rf"person-commands\[{partition}\]: 1 record\(s\) carry a missing person, offsets \d+-\d+ of \d+; "
                     r"its changelog's applied marker: \d+$", report, re.M), report
    assert "missing people with a state on the changelog: 1 of 1" in report
    report = "\n".join(whereabouts(running, {running.key(never_sent)}))
    assert "no record of zhucan.person-commands carries a missing person" in report
    assert "missing people with a state on the changelog: 0 of 1" in report
