"""The person aggregate: idempotence, dedupe across departments, versions, freezing, reviews."""

from __future__ import annotations

import datetime as dt

from streams.domain.identity import Identity, validate_identity
from streams.domain.messages import FeeStandardIssued, PaymentAck, ReviewRaised
from streams.domain.person import PersonState
from tests.fixtures import HENAN, PANZHIHUA, WEIHAI, event, new_id, payment, shipped_book

KEY = "ab" * 32
NOW = 1_700_000_000_000


def ident(raw) -> Identity:
    result = validate_identity(raw)
    assert isinstance(result, Identity), result
    return result


def apply(state: PersonState, raw) -> list:
    return state.apply_identity(ident(raw), shipped_book(), KEY, NOW)


def fees(effects) -> list[FeeStandardIssued]:
    return [e for e in effects if isinstance(e, FeeStandardIssued)]


def reviews(effects) -> list[ReviewRaised]:
    return [e for e in effects if isinstance(e, ReviewRaised)]


def test_first_certification_issues_version_1_with_money_that_adds_up():
    idn = new_id()
    state = PersonState(idn)
    (fee,) = fees(apply(state, event(idn, "MINIMUM_LIVING")))
    assert (fee.insurance_year, fee.version, fee.premium_fen, fee.subsidy_fen, fee.payable_fen) == (2025, 1, 40000, 28000, 12000)
    assert fee.payment_mode == "DIFFERENCE" and not fee.on_the_spot
    assert fee.message_id == f"{KEY[:32]}-2025-v1"
    assert fee.policy_id.startswith("410000-2025@") and fee.basis


def test_redelivered_event_changes_nothing():
    idn = new_id()
    state = PersonState(idn)
    ev = event(idn, "MINIMUM_LIVING")
    assert fees(apply(state, ev))
    assert apply(state, dict(ev)) == []


def test_second_department_with_no_better_subsidy_adds_no_version():
    idn = new_id()
    state = PersonState(idn)
    assert len(fees(apply(state, event(idn, "EXTREME_POVERTY")))) == 1
    assert apply(state, event(idn, "MONITORED_RELAPSE_RISK")) == []
    assert set(state.identities) == {"CIVIL_AFFAIRS/EXTREME_POVERTY", "RURAL_REVITALIZATION/MONITORED_RELAPSE_RISK"}


def test_better_identity_from_another_department_gives_version_2():
    idn = new_id()
    state = PersonState(idn)
    apply(state, event(idn, "MONITORED_RELAPSE_RISK"))
    (fee,) = fees(apply(state, event(idn, "EXTREME_POVERTY")))
    assert (fee.version, fee.payment_mode, fee.payable_fen, fee.category) == (2, "ZERO_DECLARATION", 0, "EXTREME_POVERTY")


def test_revoke_recomputes_from_the_remaining_identity_then_withdraws():
    idn = new_id()
    state = PersonState(idn)
    apply(state, event(idn, "MONITORED_RELAPSE_RISK"))
    apply(state, event(idn, "EXTREME_POVERTY"))
    (v3,) = fees(apply(state, event(idn, "EXTREME_POVERTY", change="REVOKED", effective=dt.date(2024, 7, 1))))
    assert (v3.version, v3.category, v3.subsidy_fen) == (3, "MONITORED_RELAPSE_RISK", 20000)
    (v4,) = fees(apply(state, event(idn, "MONITORED_RELAPSE_RISK", change="DECEASED", effective=dt.date(2024, 8, 1))))
    assert (v4.version, v4.payment_mode, v4.subsidy_fen, v4.payable_fen) == (4, "WITHDRAWN", 0, v4.premium_fen)
    assert apply(state, event(idn, "MINIMUM_LIVING", change="REVOKED")) == []  # already withdrawn


def test_paid_year_is_frozen_against_later_changes():
    idn = new_id()
    state = PersonState(idn)
    (fee,) = fees(apply(state, event(idn, "MINIMUM_LIVING")))
    assert state.apply_payment(PaymentAck.from_record(payment(idn, 2025, 1, "PAID", fee.payable_fen)), shipped_book(), NOW) == []
    assert state.years[2025].frozen
    assert fees(apply(state, event(idn, "EXTREME_POVERTY"))) == []
    assert fees(apply(state, event(idn, "MINIMUM_LIVING", change="REVOKED"))) == []


def test_rejected_ack_leaves_the_year_open():
    idn = new_id()
    state = PersonState(idn)
    apply(state, event(idn, "MINIMUM_LIVING"))
    state.apply_payment(PaymentAck.from_record(payment(idn, 2025, 1, "REJECTED")), shipped_book(), NOW)
    assert not state.years[2025].frozen
    assert fees(apply(state, event(idn, "EXTREME_POVERTY")))


def test_ack_problems_become_review_cases_once():
    idn = new_id()
    state = PersonState(idn)
    apply(state, event(idn, "MONITORED_RELAPSE_RISK"))
    apply(state, event(idn, "MINIMUM_LIVING"))  # now version 2
    ack = payment(idn, 2025, 1, "PAID", 20000)
    (case,) = reviews(state.apply_payment(PaymentAck.from_record(ack), shipped_book(), NOW))
    assert case.kind == "PAYMENT_MISMATCH" and "version 1" in case.detail
    assert state.apply_payment(PaymentAck.from_record(dict(ack)), shipped_book(), NOW) == []  # repeated ack id
    (unknown,) = reviews(state.apply_payment(PaymentAck.from_record(payment(idn, 2031, 1)), shipped_book(), NOW))
    assert unknown.kind == "UNKNOWN_PAYMENT"
    wrong_amount = payment(idn, 2025, 2, "PAID", 1)
    state2 = PersonState.loads(state.dumps())
    state2.years[2025].payment = ""
    (amount_case,) = reviews(state2.apply_payment(PaymentAck.from_record(wrong_amount), shipped_book(), NOW))
    assert "differs from payable" in amount_case.detail


def test_name_conflict_is_raised_and_processing_goes_on():
    idn = new_id()
    state = PersonState(idn)
    apply(state, event(idn, "MONITORED_RELAPSE_RISK", name="张三"))
    effects = apply(state, event(idn, "EXTREME_POVERTY", name="张叁"))
    (case,) = reviews(effects)
    assert case.kind == "NAME_CONFLICT" and idn not in case.detail
    assert fees(effects)


def test_outside_window_on_the_spot_in_shandong():
    idn = new_id(WEIHAI)
    state = PersonState(idn)
    (fee,) = fees(apply(state, event(idn, "MINIMUM_LIVING", region=WEIHAI, effective=dt.date(2025, 4, 2))))
    assert fee.on_the_spot and fee.insurance_year == 2025 and "随参随缴" in fee.basis


def test_outside_window_in_henan_waits_for_next_year_and_says_why():
    idn = new_id()
    state = PersonState(idn)
    effects = apply(state, event(idn, "MINIMUM_LIVING", effective=dt.date(2025, 3, 1)))
    assert fees(effects) == []
    (case,) = reviews(effects)
    assert (case.kind, case.code, case.insurance_year) == ("OTHER", "WAITING_FOR_POLICY", 2026)
    assert "open-year" in case.detail
    assert state.waiting == [2026] and state.identities  # kept in the timeline, not dropped
    assert apply(state, event(idn, "MONITORED_RELAPSE_RISK", effective=dt.date(2025, 4, 1))) == []  # one case only


def test_identity_after_the_window_does_not_change_the_running_year():
    """Henan: a new identity outside the window counts from the next year (豫医保办〔2024〕65号 三)."""
    idn = new_id()
    state = PersonState(idn)
    apply(state, event(idn, "MINIMUM_LIVING"))
    effects = apply(state, event(idn, "EXTREME_POVERTY", effective=dt.date(2025, 3, 1)))
    assert fees(effects) == []


def test_panzhihua_student_severe_disability_is_level_1():
    idn = new_id(PANZHIHUA, born=dt.date(2008, 1, 1))
    state = PersonState(idn)
    (fee,) = fees(apply(state, event(idn, "SEVERE_DISABILITY", region=PANZHIHUA, is_student=True)))
    assert (fee.contribution_level, fee.payable_fen, fee.funding_source) == (1, 0, "COUNTY_BUDGET")


def test_stale_update_is_ignored():
    idn = new_id()
    state = PersonState(idn)
    apply(state, event(idn, "MINIMUM_LIVING", occurred=dt.datetime(2024, 8, 1, tzinfo=dt.UTC)))
    late = event(idn, "MINIMUM_LIVING", change="REVOKED", occurred=dt.datetime(2024, 7, 1, tzinfo=dt.UTC))
    assert fees(apply(state, late)) == []
    assert "CIVIL_AFFAIRS/MINIMUM_LIVING" in state.identities


def test_state_survives_a_round_trip_and_stays_small():
    idn = new_id(HENAN)
    state = PersonState(idn)
    apply(state, event(idn, "MINIMUM_LIVING"))
    apply(state, event(idn, "MONITORED_RELAPSE_RISK"))
    data = state.dumps()
    assert PersonState.loads(data) == state
    assert len(data) < 1024


def test_events_out_of_order_across_partitions_do_not_resurrect():
    idn = new_id()
    state = PersonState(idn)
    start = event(idn, "MINIMUM_LIVING", occurred=dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    death = event(idn, "MINIMUM_LIVING", change="DECEASED", effective=dt.date(2024, 7, 1),
                  occurred=dt.datetime(2024, 7, 2, tzinfo=dt.UTC))
    assert apply(state, death) == []  # the death arrives first
    assert fees(apply(state, start)) == []  # the older certification is stale
    revoked = event(idn, "EXTREME_POVERTY", change="REVOKED", occurred=dt.datetime(2024, 8, 1, tzinfo=dt.UTC))
    apply(state, revoked)
    assert fees(apply(state, event(idn, "EXTREME_POVERTY", occurred=dt.datetime(2024, 7, 15, tzinfo=dt.UTC)))) == []
    # a certification recorded after the death does not bring the person back...
    assert fees(apply(state, event(idn, "EXTREME_POVERTY", occurred=dt.datetime(2024, 9, 1, tzinfo=dt.UTC)))) == []
    # ...nor does one saying ALIVE: a correction is an UPDATED of the reporting department's
    # identity (CONTRACT rule 12); anything else is a LIVING_STATUS_CONFLICT case
    alive = {**event(idn, "EXTREME_POVERTY", occurred=dt.datetime(2024, 9, 2, tzinfo=dt.UTC)), "living_status": "ALIVE"}
    out = apply(state, alive)
    assert fees(out) == [] and [e.code for e in out] == ["LIVING_STATUS_CONFLICT"]
    # the department that reported the death corrects it (生存状况, a data correction)
    correction = {**event(idn, "MINIMUM_LIVING", change="UPDATED", occurred=dt.datetime(2024, 9, 3, tzinfo=dt.UTC)),
                  "living_status": "ALIVE"}
    assert fees(apply(state, correction))


# ---- issue #19: the smaller items, and the state that stays small ----

def test_ten_years_of_monthly_restatements_keep_the_state_under_a_kibibyte():
    """Departments restate each identity every month (000 四; 002 二(二)1): 120 restatements, each
    with its own event id and recorded time, add nothing the fold can read."""
    import orjson

    idn = new_id()
    state = PersonState(idn)
    for month in range(120):
        at = dt.datetime(2015 + month // 12, month % 12 + 1, 20, tzinfo=dt.UTC)
        state.apply_identity(ident(event(idn, "MINIMUM_LIVING", effective=dt.date(2015, 1, 1), occurred=at)),
                             shipped_book(), "ab" * 32, 1)
        state = PersonState.loads(state.dumps())
    assert len(state.facts) == 2  # the first and the last recorded
    assert len(state.dumps()) < 1024, len(state.dumps())
    assert orjson.loads(state.dumps())["v"] == 3


def test_named_fields_in_the_stored_figures_and_a_v2_state_migrates():
    import orjson

    idn = new_id()
    state = PersonState(idn)
    apply(state, event(idn, "MINIMUM_LIVING"))
    apply(state, event(idn, "EXTREME_POVERTY"))
    state.apply_payment(PaymentAck.from_record(payment(idn, 2025, 2, "ZERO_DECLARED", 0)), shipped_book(), 1)
    doc = orjson.loads(state.dumps())
    year = doc["y"]["2025"]
    assert year["paid"]["subsidy_fen"] == 40000 and year["older"]["1"]["category"] == "MINIMUM_LIVING"
    # the same state as v2 wrote it: positional lists, the fingerprint without county and flag
    v2 = {**doc, "v": 2, "y": {"2025": {**year, "paid": list(year["paid"].values()),
                                        "older": {k: list(v.values()) for k, v in year["older"].items()},
                                        "fingerprint": year["fingerprint"].rsplit("|", 2)[0]}}}
    migrated = PersonState.loads(orjson.dumps(v2))
    assert migrated.years[2025].frozen_figures() == state.years[2025].frozen_figures()
    assert migrated.years[2025].fingerprint == state.years[2025].fingerprint  # the upgrade sends tax nothing
    assert migrated.dumps() == state.dumps()


def test_a_dead_person_is_not_on_the_suspected_list():
    idn = new_id()
    state = PersonState(idn)
    apply(state, event(idn, "MINIMUM_LIVING"))
    apply(state, event(idn, "MINIMUM_LIVING", change="DECEASED", effective=dt.date(2025, 2, 1),
                       occurred=dt.datetime(2025, 2, 2, tzinfo=dt.UTC)))
    assert state.years[2025].mode != "WITHDRAWN"  # died during the year: the year stands (攀医保 五(一) reading)
    assert state.check_coverage(2025, "410000", dt.date(2025, 6, 1), 30) == []
    alive = PersonState(new_id())
    apply(alive, event(alive.id_number, "MINIMUM_LIVING"))
    assert alive.check_coverage(2025, "410000", dt.date(2025, 6, 1), 30)  # the same without the death


def test_an_edited_gloss_does_not_raise_the_region_conflict_again(tmp_path):
    import shutil

    from streams.policies import SHIPPED_POLICY_DIR, load_book

    idn = new_id()
    state = PersonState(idn)
    apply(state, event(idn, "MINIMUM_LIVING"))
    first = apply(state, event(idn, "LOW_INCOME_MARGINAL", region=WEIHAI))
    assert [e.code for e in first if isinstance(e, ReviewRaised)] == ["REGION_CONFLICT"]
    shutil.copytree(SHIPPED_POLICY_DIR, tmp_path / "p")
    path = tmp_path / "p" / "410000-2025.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("(定额资助低保对象)", "(定额资助低保对象，)"), encoding="utf-8")
    edited = load_book(tmp_path / "p")
    assert edited.lookup(HENAN, 2025).policy_id != shipped_book().lookup(HENAN, 2025).policy_id
    again = state.apply_identity(ident(event(idn, "MONITORED_RELAPSE_RISK")), edited, "ab" * 32, 2)
    assert [e for e in again if isinstance(e, ReviewRaised)] == []


def test_a_withdrawn_year_after_a_death_reads_the_same_in_any_order():
    idn = new_id(PANZHIHUA)
    cert = event(idn, "SEVERE_DISABILITY", region=PANZHIHUA)
    poor = event(idn, "MINIMUM_LIVING", region=PANZHIHUA)
    death = event(idn, "MINIMUM_LIVING", region=PANZHIHUA, change="DECEASED", effective=dt.date(2021, 10, 1),
                  occurred=dt.datetime(2021, 10, 2, tzinfo=dt.UTC))
    outs = []
    for order in ([cert, poor, death], [poor, cert, death]):
        state = PersonState(idn)
        issued = [f for raw in order for f in fees(apply(state, raw))]
        last = issued[-1]
        outs.append((last.payment_mode, last.contribution_level, last.premium_fen, last.basis))
        assert "死亡核减" in last.basis and "按普通居民缴费" not in last.basis
    assert outs[0] == outs[1]


def test_a_waiting_identity_waits_for_its_own_first_year():
    """Issue #19 (8): the waiting year was 'last loaded year + 1'; it is the identity's first year,
    judged by the region's last policy moved to that year."""
    from streams.domain.years import waiting_year as _waiting_year
    from tests.fixtures import CHONGQING

    chongqing = shipped_book().lookup(CHONGQING, 2020)  # window 1 Sep - 30 Jun of the year
    henan = shipped_book().lookup(HENAN, 2025)  # in time to 31 Dec of the year before
    from streams.domain.timeline import Spell

    def spell(day):
        return Spell("CIVIL_AFFAIRS", "MINIMUM_LIVING", day, 0, changes=[(day, CHONGQING, False)])

    assert _waiting_year(spell(dt.date(2024, 6, 1)), chongqing, 2021) == 2024
    assert _waiting_year(spell(dt.date(2024, 10, 1)), chongqing, 2021) == 2025  # the 2025 window opened 1 Sep
    assert _waiting_year(spell(dt.date(2026, 3, 1)), henan, 2026) == 2027  # Henan: 次年起
    assert _waiting_year(spell(dt.date(2025, 11, 1)), henan, 2026) == 2026  # in the 2026 window
    idn = new_id(HENAN)
    state = PersonState(idn)
    out = apply(state, event(idn, "MINIMUM_LIVING", effective=dt.date(2026, 3, 1),
                             occurred=dt.datetime(2026, 3, 2, tzinfo=dt.UTC)))
    assert [(e.code, e.insurance_year) for e in out if isinstance(e, ReviewRaised)] == [("WAITING_FOR_POLICY", 2027)]


def test_a_later_identity_that_changes_no_figure_is_in_the_years_explanation():
    """Issue #19 (8): 李强 holds 特困 and 监测; the second changes no figure, so tax gets no new
    version, but the year's record of what it is decided on names both (for the ledger)."""
    idn = new_id()
    state = PersonState(idn)
    apply(state, event(idn, "EXTREME_POVERTY"))
    assert fees(apply(state, event(idn, "MONITORED_RELAPSE_RISK"))) == []
    assert state.years[2025].held == ["EXTREME_POVERTY", "MONITORED_RELAPSE_RISK"]


def test_another_departments_record_with_a_colliding_event_id_is_decided_on_its_own():
    """Issue #20 (5): disability sent first the event id that civil affairs' 退出 row would get;
    event ids were de-duplicated per person, so the exit was taken for a redelivery and the person
    kept the subsidy. A duplicate is now the same department's id again."""
    idn = new_id()
    state = PersonState(idn)
    apply(state, event(idn, "MINIMUM_LIVING", event_id="civ-1"))
    apply(state, event(idn, "GENERAL_DISABILITY", event_id="civ-exit", region=HENAN))  # the collision, first
    out = apply(state, event(idn, "MINIMUM_LIVING", change="REVOKED", effective=dt.date(2024, 12, 1),
                             occurred=dt.datetime(2024, 12, 2, tzinfo=dt.UTC), event_id="civ-exit"))
    assert [f.payment_mode for f in fees(out)] == ["WITHDRAWN"]
    # the same department's id again is still a redelivery
    assert apply(state, event(idn, "MINIMUM_LIVING", change="REVOKED", effective=dt.date(2024, 12, 1),
                              occurred=dt.datetime(2024, 12, 2, tzinfo=dt.UTC), event_id="civ-exit")) == []
