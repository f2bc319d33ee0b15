"""The worker gives the documents' answers for all four seed regions, on real Kafka."""

from __future__ import annotations

import datetime as dt

from tests.fixtures import CHONGQING, HENAN, PANZHIHUA, WEIHAI, event, new_id

# (region, identities, student, expected: year, category, level, premium, subsidy, payable, funding, policy)
REGION_CASES = [
    (HENAN, ["MINIMUM_LIVING", "MONITORED_RELAPSE_RISK"], False,
     (2025, "MINIMUM_LIVING", 1, 40000, 28000, 12000, "MEDICAL_ASSISTANCE_FUND", "410000-2025@")),  # 豫 三 最高标准
    (WEIHAI, ["ORPHAN"], False,
     (2025, "ORPHAN", 1, 40000, 40000, 0, "MEDICAL_ASSISTANCE_FUND", "371000-2025@")),  # 鲁 二 全额资助孤儿
    (CHONGQING, ["ENTITLED_VETERAN"], False,
     (2020, "ENTITLED_VETERAN", 1, 28000, 14000, 14000, "OTHER", "500000-2020@")),  # 渝 一(二)
    (PANZHIHUA, ["GENERAL_DISABILITY", "EXTREME_POVERTY"], False,
     (2022, "EXTREME_POVERTY", 1, 32000, 32000, 0, "MEDICAL_ASSISTANCE_FUND", "510400-2022@")),  # 攀 四(二)
    (PANZHIHUA, ["SEVERE_DISABILITY"], False,
     (2022, "SEVERE_DISABILITY", 2, 52000, 52000, 0, "COUNTY_BUDGET", "510400-2022@")),  # 攀 三(二)
]


def test_documents_answers_for_every_seed_region(running):
    people = []
    for region, categories, student, expected in REGION_CASES:
        idn = new_id(region)
        people.append((idn, expected))
        for cat in categories:
            running.send_identity(event(idn, cat, region=region, is_student=student))
    keys = {running.key(idn): expected for idn, expected in people}

    def finals(recs):
        out = {}
        for key, fee, _ in recs:
            if key in keys and (key not in out or fee["version"] > out[key]["version"]):
                out[key] = fee
        return out

    def settled(recs) -> bool:
        got = finals(recs)
        return len(got) == len(keys) and all(got[k]["category"] == keys[k][1] for k in keys)

    running.read(running.topics.fee_standard, "FeeStandard", until=settled, timeout_s=90)
    for key, final in finals(running.read(running.topics.fee_standard, "FeeStandard", timeout_s=10, idle_s=1)).items():
        expected = keys[key]
        got = (final["insurance_year"], final["category"], final["contribution_level"], final["premium_fen"],
               final["subsidy_fen"], final["payable_fen"], final["funding_source"])
        assert got == expected[:7], final["basis"]
        assert final["policy_id"].startswith(expected[7])
        assert final["basis"].startswith("持有: ")


def test_region_without_a_policy_for_the_year_is_a_review_case(running):
    idn = new_id(HENAN)
    running.send_identity(event(idn, "MINIMUM_LIVING", effective=dt.date(2025, 4, 1)))  # Henan -> 2026: none shipped
    other = new_id("130102")  # Hebei: no policy at all
    running.send_identity(event(other, "MINIMUM_LIVING", region="130102"))
    reviews = running.read(running.topics.review, "ReviewCase", until=lambda rs: len(rs) >= 2)
    by_key = {k: v for k, v, _ in reviews}
    assert by_key[running.key(idn)]["kind"] == "OTHER" and by_key[running.key(idn)]["insurance_year"] == 2026
    assert "NO_POLICY" in by_key[running.key(other)]["detail"]
    fees = running.read(running.topics.fee_standard, "FeeStandard", timeout_s=5, idle_s=1)
    assert not [k for k, _, _ in fees if k in (running.key(idn), running.key(other))]
