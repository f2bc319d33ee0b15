"""Properties of the timeline: a replay, or any arrival order, decides the same."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.identity import Identity, validate_identity
from streams.domain.person import PersonState
from streams.domain.timeline import fold
from tests.fixtures import HENAN, PANZHIHUA, WEIHAI, event, new_id, shipped_book

_ids = itertools.count(1)
REGION_CATEGORIES = {
    HENAN: ["MINIMUM_LIVING", "EXTREME_POVERTY", "MONITORED_RELAPSE_RISK", "ORPHAN"],
    WEIHAI: ["MINIMUM_LIVING", "ORPHAN", "LOW_INCOME_MARGINAL", "DE_FACTO_UNSUPPORTED_CHILD"],
    PANZHIHUA: ["MINIMUM_LIVING", "SEVERE_DISABILITY", "GENERAL_DISABILITY", "EXTREME_POVERTY"],
}
DAYS = st.integers(min_value=0, max_value=900)  # days after 2023-12-01: before, in and after the windows


@st.composite
def timelines(draw):
    region = draw(st.sampled_from(sorted(REGION_CATEGORIES)))
    idn = new_id(region)
    events = []
    for n in range(draw(st.integers(min_value=1, max_value=6))):
        category = draw(st.sampled_from(REGION_CATEGORIES[region]))
        change = draw(st.sampled_from(["CERTIFIED", "CERTIFIED", "UPDATED", "REVOKED", "DECEASED"]))
        effective = dt.date(2023, 12, 1) + dt.timedelta(days=draw(DAYS))
        recorded = dt.datetime.combine(effective, dt.time(0, 0, n), tzinfo=dt.UTC) + dt.timedelta(
            days=draw(st.integers(min_value=0, max_value=30)))
        # An UPDATED may move the identity to another county, now and then in another province.
        county = draw(st.sampled_from([region, region, *sorted(REGION_CATEGORIES)])) if change == "UPDATED" else region
        raw = event(idn, category, region=county, change=change, effective=effective, occurred=recorded,
                    event_id=f"p-{next(_ids)}")
        result = validate_identity(raw)
        assert isinstance(result, Identity), result
        events.append(result)
    order = draw(st.permutations(events))
    return idn, events, order


def _decided(state: PersonState) -> dict[int, tuple]:
    """What each year gives the person in the end (a withdrawn year is the same as none)."""
    return {year: (rec.category, rec.level, rec.premium_fen, rec.subsidy_fen, rec.payable_fen, rec.mode)
            for year, rec in state.years.items() if rec.mode != "WITHDRAWN"}


def _replay(idn: str, events: list[Identity]) -> PersonState:
    state = PersonState(idn)
    for ev in events:
        state.apply_identity(ev, shipped_book(), "ab" * 32, 1)
        state = PersonState.loads(state.dumps())
    return state


@settings(max_examples=300, deadline=None)
@given(timelines())
def test_any_arrival_order_decides_the_same(case):
    idn, events, order = case
    in_recorded_order = _replay(idn, sorted(events, key=lambda e: (e.occurred_at, e.event_id)))
    as_arrived = _replay(idn, list(order))
    assert _decided(as_arrived) == _decided(in_recorded_order)
    assert fold(as_arrived.facts) == fold(in_recorded_order.facts)


@settings(max_examples=200, deadline=None)
@given(timelines())
def test_a_replay_of_the_same_events_changes_nothing(case):
    idn, events, order = case
    state = _replay(idn, list(order))
    before = state.dumps()
    for ev in order:  # every event redelivered
        assert state.apply_identity(ev, shipped_book(), "ab" * 32, 2) == []
    assert state.dumps() == before
