"""Policy files and decisions: a table of cases per region, each citing the clause it checks."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.departments import SHIPPED
from streams.domain.enums import Category as C
from streams.domain.enums import FundingSource as F
from streams.domain.exceptions import NoPolicy, PolicyError
from streams.domain.policy.decide import IN_TIME, ON_THE_SPOT, Held, decide, qualify
from streams.domain.timeline import Spell
from streams.policies import SHIPPED_POLICY_DIR, load_book
from tests.fixtures import shipped_book

# (region, year, identities held, student, expected category, level, subsidy fen, payable fen, funding, clause)
CASES = [
    # Henan 豫医保办〔2024〕65号
    ("410102", 2025, [C.EXTREME_POVERTY], False, C.EXTREME_POVERTY, 1, 40000, 0, F.MEDICAL_ASSISTANCE_FUND, "豫 三 全额资助特困人员"),
    ("410102", 2025, [C.MINIMUM_LIVING], False, C.MINIMUM_LIVING, 1, 28000, 12000, F.MEDICAL_ASSISTANCE_FUND, "豫 三 定额资助低保对象"),
    ("410102", 2025, [C.MONITORED_RELAPSE_RISK, C.MINIMUM_LIVING], False, C.MINIMUM_LIVING, 1, 28000, 12000, F.MEDICAL_ASSISTANCE_FUND, "豫 三 选择其中最高标准资助"),
    ("410102", 2025, [C.MINIMUM_LIVING, C.EXTREME_POVERTY, C.MONITORED_RELAPSE_RISK], False, C.EXTREME_POVERTY, 1, 40000, 0, F.MEDICAL_ASSISTANCE_FUND, "豫 三 选择其中最高标准资助"),
    # Shandong 鲁医保发〔2024〕22号
    ("370102", 2025, [C.ORPHAN], False, C.ORPHAN, 1, 40000, 0, F.MEDICAL_ASSISTANCE_FUND, "鲁 二 全额资助孤儿"),
    ("370102", 2025, [C.DE_FACTO_UNSUPPORTED_CHILD], False, C.DE_FACTO_UNSUPPORTED_CHILD, 1, 40000, 0, F.MEDICAL_ASSISTANCE_FUND, "鲁 二 全额资助事实无人抚养儿童"),
    ("370102", 2025, [C.LOW_INCOME_MARGINAL, C.MINIMUM_LIVING], False, C.MINIMUM_LIVING, 1, 30000, 10000, F.MEDICAL_ASSISTANCE_FUND, "鲁 二 就高不就低"),
    ("370102", 2025, [C.RELAPSED_INTO_POVERTY, C.MINIMUM_LIVING], False, C.MINIMUM_LIVING, 1, 30000, 10000, F.MEDICAL_ASSISTANCE_FUND, "鲁 二 就高, 平局按顺序"),
    # Weihai inherits Shandong and overrides the 低保 amount
    ("371002", 2025, [C.MINIMUM_LIVING], False, C.MINIMUM_LIVING, 1, 32000, 8000, F.MEDICAL_ASSISTANCE_FUND, "威 (覆盖) 鲁 二 适度提高定额"),
    ("371002", 2025, [C.ORPHAN], False, C.ORPHAN, 1, 40000, 0, F.MEDICAL_ASSISTANCE_FUND, "威 继承 鲁 二"),
    # Chongqing 渝医保发〔2019〕78号
    ("500101", 2020, [C.EXTREME_POVERTY], False, C.EXTREME_POVERTY, 1, 28000, 0, F.MEDICAL_ASSISTANCE_FUND, "渝 一(一) 二(二)2 零申报"),
    ("500101", 2020, [C.ENTITLED_VETERAN], False, C.ENTITLED_VETERAN, 1, 14000, 14000, F.OTHER, "渝 一(二) 优抚对象"),
    # Panzhihua 攀医保〔2021〕58号
    ("510402", 2022, [C.EXTREME_POVERTY], False, C.EXTREME_POVERTY, 1, 32000, 0, F.MEDICAL_ASSISTANCE_FUND, "攀 三(一) 特困一档全额"),
    ("510402", 2022, [C.GENERAL_DISABILITY], False, C.GENERAL_DISABILITY, 1, 32000, 0, F.COUNTY_BUDGET, "攀 三(一) 一般残疾一档全额; 二 县(区)财政"),
    ("510402", 2022, [C.SEVERE_DISABILITY], False, C.SEVERE_DISABILITY, 2, 52000, 0, F.COUNTY_BUDGET, "攀 三(二) 重度残疾二档全额"),
    ("510402", 2022, [C.SEVERE_DISABILITY], True, C.SEVERE_DISABILITY, 1, 32000, 0, F.COUNTY_BUDGET, "攀 三(一) 重度残疾学生儿童一档全额"),
    ("510402", 2022, [C.MINIMUM_LIVING], False, C.MINIMUM_LIVING, 1, 24000, 8000, F.MEDICAL_ASSISTANCE_FUND, "攀 三(三) 一档75%"),
    ("510402", 2022, [C.STABLY_OUT_OF_POVERTY], False, C.STABLY_OUT_OF_POVERTY, 1, 24000, 8000, F.MEDICAL_ASSISTANCE_FUND, "攀 三(三) 已稳定脱贫75%"),
    ("510402", 2022, [C.SEVERE_DISABILITY, C.EXTREME_POVERTY], False, C.SEVERE_DISABILITY, 2, 52000, 0, F.COUNTY_BUDGET, "攀 四(一) 重度残疾优先"),
    ("510402", 2022, [C.SEVERE_DISABILITY, C.MINIMUM_LIVING], True, C.SEVERE_DISABILITY, 1, 32000, 0, F.COUNTY_BUDGET, "攀 四(一) 重度残疾优先 (学生)"),
    ("510402", 2022, [C.GENERAL_DISABILITY, C.EXTREME_POVERTY], False, C.EXTREME_POVERTY, 1, 32000, 0, F.MEDICAL_ASSISTANCE_FUND, "攀 四(二) 一般残疾+特困按特困 (资金来源随类别)"),
    ("510402", 2022, [C.GENERAL_DISABILITY, C.MINIMUM_LIVING], False, C.GENERAL_DISABILITY, 1, 32000, 0, F.COUNTY_BUDGET, "攀 四(二) 一般残疾+低保按一般残疾"),
    ("510402", 2022, [C.GENERAL_DISABILITY, C.MONITORED_RELAPSE_RISK], False, C.GENERAL_DISABILITY, 1, 32000, 0, F.COUNTY_BUDGET, "攀 四(二) 一般残疾+监测按一般残疾"),
    ("510402", 2022, [C.MONITORED_RELAPSE_RISK, C.MINIMUM_LIVING], False, C.MINIMUM_LIVING, 1, 24000, 8000, F.MEDICAL_ASSISTANCE_FUND, "攀 四(三) 民政优先于乡村振兴"),
]


@pytest.mark.parametrize(("region", "year", "held", "student", "cat", "level", "subsidy", "payable", "funding", "clause"),
                         CASES, ids=[c[-1] for c in CASES])
def test_region_cases(region, year, held, student, cat, level, subsidy, payable, funding, clause):
    policy = shipped_book().lookup(region, year)
    decision = decide([Held(c, student) for c in held], policy, SHIPPED)
    assert decision is not None, clause
    assert (decision.category, decision.contribution_level, decision.subsidy_fen, decision.payable_fen,
            decision.funding_source) == (cat, level, subsidy, payable, funding), clause
    assert decision.premium_fen == decision.subsidy_fen + decision.payable_fen
    assert decision.policy_id == policy.policy_id and "@" in decision.policy_id
    assert decision.basis.startswith("持有: ")


def test_basis_reads_like_the_issue_example():
    policy = shipped_book().lookup("510402", 2022)
    decision = decide([Held(C.MINIMUM_LIVING), Held(C.MONITORED_RELAPSE_RISK)], policy, SHIPPED)
    assert decision is not None
    assert decision.basis.startswith("持有: 低保(民政), 监测对象(乡村振兴); 规则: 优先级 (攀医保〔2021〕58号 四)")
    assert "75%" in decision.basis


def test_lookup_goes_county_then_city_then_province():
    book = shipped_book()
    assert book.lookup("371002", 2025).region_code == "371000"  # Weihai's county -> city file
    assert book.lookup("370102", 2025).region_code == "370000"  # Jinan's county -> province file
    with pytest.raises(NoPolicy):
        book.lookup("410102", 2030)
    with pytest.raises(NoPolicy):
        book.lookup("130102", 2025)


def test_category_not_subsidised_in_region_decides_nothing():
    assert decide([Held(C.ENTITLED_VETERAN)], shipped_book().lookup("410102", 2025), SHIPPED) is None


def _spell(region: str, since: dt.date, category: str = "MINIMUM_LIVING") -> Spell:
    return Spell("CIVIL_AFFAIRS", category, since, 0, changes=[(since, region, False)])


def test_which_year_an_identity_counts_for_from_its_start_day():
    book = shipped_book()
    henan, shandong, panzhihua = (book.lookup(r, y) for r, y in (("410102", 2025), ("371002", 2025), ("510402", 2022)))
    # Henan: before or in the window -> 2025 in time; after it -> not 2025 (次年起)
    assert qualify(_spell("410102", dt.date(2023, 3, 1)), 2025, henan) == IN_TIME
    assert qualify(_spell("410102", dt.date(2024, 12, 31)), 2025, henan) == IN_TIME
    assert qualify(_spell("410102", dt.date(2025, 2, 1)), 2025, henan) is None
    # Shandong: outside the window within the year -> on the spot (随参随缴), up to on_the_spot_until
    assert qualify(_spell("371002", dt.date(2025, 3, 1)), 2025, shandong) == ON_THE_SPOT
    assert qualify(_spell("371002", dt.date(2025, 9, 15)), 2025, shandong) is None
    # Panzhihua: identity cutoff 2021-08-31 (攀医保〔2021〕58号 一)
    assert qualify(_spell("510402", dt.date(2021, 8, 31)), 2022, panzhihua) == IN_TIME
    assert qualify(_spell("510402", dt.date(2021, 9, 1)), 2022, panzhihua) is None
    with pytest.raises(NoPolicy):
        book.lookup("410102", 2026)


# -- properties -------------------------------------------------------------------------------
REGION_YEARS = [("410102", 2025), ("371002", 2025), ("500101", 2020), ("510402", 2022)]
held_sets = st.lists(st.tuples(st.sampled_from(list(C)), st.booleans()), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(region_year=st.sampled_from(REGION_YEARS), held=held_sets, data=st.data())
def test_decision_does_not_depend_on_arrival_order(region_year, held, data):
    policy = shipped_book().lookup(*region_year)
    shuffled = data.draw(st.permutations(held))
    assert decide([Held(c, s) for c, s in held], policy, SHIPPED) == decide([Held(c, s) for c, s in shuffled], policy, SHIPPED)


@settings(max_examples=200, deadline=None)
@given(region_year=st.sampled_from([("410102", 2025), ("371002", 2025), ("500101", 2020)]), held=held_sets,
       extra=st.sampled_from(list(C)))
def test_under_highest_adding_an_identity_never_lowers_the_subsidy(region_year, held, extra):
    policy = shipped_book().lookup(*region_year)
    assert policy.spec.resolution.rule == "highest"
    before = decide([Held(c, s) for c, s in held], policy, SHIPPED)
    after = decide([Held(c, s) for c, s in held] + [Held(extra)], policy, SHIPPED)
    assert (after.subsidy_fen if after else 0) >= (before.subsidy_fen if before else 0)


# -- broken files -----------------------------------------------------------------------------
@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    for f in SHIPPED_POLICY_DIR.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_broken_file_error_names_file_path_and_problem(policy_copy):
    path = policy_copy / "510400-2022.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("percent: 75", "percent: 175"), encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_book(policy_copy)
    text = str(err.value)
    assert "510400-2022.yaml" in text and "subsidies.MINIMUM_LIVING.subsidy.percent.percent" in text
    assert "less than or equal to 100" in text


def test_unknown_key_and_missing_reference_are_errors(policy_copy):
    path = policy_copy / "410000-2025.yaml"
    text = path.read_text(encoding="utf-8").replace("allow_higher_level:", "allow_higer_level:")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_book(policy_copy)
    assert "410000-2025.yaml: allow_higer_level: Extra inputs are not permitted" in str(err.value)
    assert "410000-2025.yaml: allow_higher_level: Field required" in str(err.value)


def test_inheriting_a_missing_parent_is_an_error(policy_copy):
    (policy_copy / "370000-2025.yaml").unlink()
    with pytest.raises(PolicyError, match="371000-2025.yaml: inherits: no policy for region 370000 year 2025"):
        load_book(policy_copy)


def test_policy_id_changes_with_the_content(policy_copy):
    before = load_book(policy_copy).lookup("410102", 2025).policy_id
    path = policy_copy / "410000-2025.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("amount_fen: 28000", "amount_fen: 29000"), encoding="utf-8")
    after = load_book(policy_copy).lookup("410102", 2025).policy_id
    assert before != after and before.split("@")[0] == after.split("@")[0] == "410000-2025"
