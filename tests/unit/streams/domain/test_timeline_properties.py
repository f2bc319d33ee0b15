"""Properties of the timeline: a replay, any arrival order, any tie in recorded time, and any
interleaving with the operators' OPEN_YEAR decide the same (CONTRACT rules 11-13)."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import shutil
from pathlib import Path
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.dev.sample import raised_policies
from streams.domain.identity import Identity, validate_identity
from streams.domain.ledger import lines_of
from streams.domain.person import PersonState
from streams.domain.policy.spec import PolicyBook
from streams.domain.timeline import fold
from streams.policies import SHIPPED_POLICY_DIR, load_book
from tests.fixtures import HENAN, PANZHIHUA, WEIHAI, event, new_id, shipped_book
from tests.unit.streams.domain.test_policy_tables import shifted_policy

_ids = itertools.count(1)
REGION_CATEGORIES = {
    HENAN: ["MINIMUM_LIVING", "EXTREME_POVERTY", "MONITORED_RELAPSE_RISK", "ORPHAN"],
    WEIHAI: ["MINIMUM_LIVING", "ORPHAN", "LOW_INCOME_MARGINAL", "DE_FACTO_UNSUPPORTED_CHILD"],
    PANZHIHUA: ["MINIMUM_LIVING", "SEVERE_DISABILITY", "GENERAL_DISABILITY", "EXTREME_POVERTY"],
}
DAYS = st.integers(min_value=0, max_value=900)  # days after 2023-12-01: before, in and after the windows


CLASS_CHANGES = {HENAN: ("MINIMUM_LIVING", "EXTREME_POVERTY"), WEIHAI: ("MINIMUM_LIVING", "ORPHAN"),
                 PANZHIHUA: ("MINIMUM_LIVING", "EXTREME_POVERTY")}
OTHER_SOURCE = {HENAN: "MONITORED_RELAPSE_RISK", WEIHAI: "MONITORED_RELAPSE_RISK", PANZHIHUA: "SEVERE_DISABILITY"}


@st.composite
def timelines(draw):
    """A person's events in one region: certifications, changes (of county, now and then of
    province; of class), exits, deaths and living-status statements, recorded on a few shared
    instants (a batch file's rows tie) or apart, and an arrival order."""
    region = draw(st.sampled_from(sorted(REGION_CATEGORIES)))
    idn = new_id(region)
    events = []
    # a batch file's instants: every row of a file recorded at once (any effective date here is
    # within a year after them, as validation allows)
    instants = [dt.datetime(2025, 6, 1, tzinfo=dt.UTC), dt.datetime(2025, 7, 1, tzinfo=dt.UTC)]
    for n in range(draw(st.integers(min_value=1, max_value=6))):
        category = draw(st.sampled_from([*REGION_CATEGORIES[region], OTHER_SOURCE[region]]))
        change = draw(st.sampled_from(["CERTIFIED", "CERTIFIED", "UPDATED", "REVOKED", "DECEASED"]))
        effective = dt.date(2023, 12, 1) + dt.timedelta(days=draw(DAYS))
        if draw(st.booleans()):  # a batch file: recorded on one instant with other rows
            recorded = draw(st.sampled_from(instants))
        else:
            recorded = dt.datetime.combine(effective, dt.time(0, 0, n), tzinfo=dt.UTC) + dt.timedelta(
                days=draw(st.integers(min_value=0, max_value=30)))
        # An UPDATED may move the identity to another county, now and then in another province.
        county = draw(st.sampled_from([region, region, *sorted(REGION_CATEGORIES)])) if change == "UPDATED" else region
        raw = event(idn, category, region=county, change=change, effective=effective, occurred=recorded,
                    event_id=f"p-{next(_ids)}")
        pair = CLASS_CHANGES[region]
        if change == "UPDATED" and category in pair and draw(st.booleans()):
            raw["previous_category"] = pair[1 - pair.index(category)]  # a change of class (civil affairs)
        if change in ("CERTIFIED", "UPDATED"):
            raw["living_status"] = draw(st.sampled_from([None, None, "ALIVE", "DECEASED"]))
        result = validate_identity(raw)
        assert isinstance(result, Identity), result
        events.append(result)
        if change == "CERTIFIED" and draw(st.booleans()):  # the same file lists the exit with it
            leave = validate_identity(event(
                idn, category, region=region, change=draw(st.sampled_from(["REVOKED", "DECEASED"])),
                effective=min(effective + dt.timedelta(days=draw(st.integers(min_value=0, max_value=400))),
                              recorded.date() + dt.timedelta(days=360)),
                occurred=recorded, event_id=f"p-{next(_ids)}"))
            assert isinstance(leave, Identity), leave
            events.append(leave)
    order = draw(st.permutations(events))
    return idn, events, order


def _decided(state: PersonState) -> dict[int, tuple]:
    """What each year gives the person in the end (a withdrawn year is the same as none)."""
    return {year: (rec.category, rec.level, rec.premium_fen, rec.subsidy_fen, rec.payable_fen, rec.mode)
            for year, rec in state.years.items() if rec.mode != "WITHDRAWN"}


def _ledger(state: PersonState) -> dict[int, tuple]:
    """What the ledger says of each year (issue #24), basis included, but the version number (the
    count of changes on the way depends on the order); a withdrawn year is the same as none, as
    in ``_decided`` (a year withdrawn on the way is a WITHDRAWN line, one never issued no line)."""
    return {year: line._replace(live_version=0) for year, line in lines_of(state.years, state.paid_out).items()
            if line.state != "WITHDRAWN"}


def _replay(idn: str, events: list[Identity], book: PolicyBook | None = None) -> PersonState:
    state = PersonState(idn)
    for ev in events:
        state.apply_identity(ev, book or shipped_book(), "ab" * 32, 1)
        state = PersonState.loads(state.dumps())
    return state


@functools.cache
def two_year_book(root: str) -> PolicyBook:
    """The shipped policies and, for each seed region, next year's file (the same one year on)."""
    directory = Path(root) / "policies"
    shutil.copytree(SHIPPED_POLICY_DIR, directory)
    for name in ("410000-2026", "370000-2026", "371000-2026", "510400-2023"):
        shifted_policy(directory, name)
    return load_book(directory)


class Open(NamedTuple):
    region: str
    year: int


OPENS = {HENAN: [Open("410000", 2026)], WEIHAI: [Open("371000", 2026), Open("370000", 2026)],
         PANZHIHUA: [Open("510400", 2023)]}


@settings(max_examples=300, deadline=None)
@given(timelines())
def test_any_arrival_order_decides_the_same(case):
    idn, events, order = case
    in_recorded_order = _replay(idn, sorted(events, key=lambda e: (e.occurred_at, e.event_id)))
    as_arrived = _replay(idn, list(order))
    assert _decided(as_arrived) == _decided(in_recorded_order)
    assert fold(as_arrived.facts) == fold(in_recorded_order.facts)
    assert _ledger(as_arrived) == _ledger(in_recorded_order)  # the ledger's lines too, basis included
    # a tie in recorded time is never broken by the event id (a content hash): renamed ids decide the same
    renamed = _replay(idn, [ev._replace(event_id=f"z-{10**9 - int(ev.event_id[2:])}") for ev in order])
    assert _decided(renamed) == _decided(as_arrived)


@settings(max_examples=300, deadline=None)
@given(timelines(), st.data())
def test_open_year_before_after_or_between_the_events_decides_the_same(tmp_path_factory, case, data):
    """CONTRACT rule 13: the operators' OPEN_YEAR anywhere among a person's events gives the
    same standards as OPEN_YEAR after them all."""
    idn, events, order = case
    book = two_year_book(str(tmp_path_factory.getbasetemp() / "two-years"))
    region = idn[:6]
    opens = OPENS[region]
    steps: list = list(order)
    for n, command in enumerate(opens):
        steps.insert(data.draw(st.integers(min_value=0, max_value=len(steps)), label=f"open {n}"), command)

    def run(sequence: list) -> PersonState:
        state, opened = PersonState(idn), {}
        for step in sequence:
            if isinstance(step, Open):
                where, year = step
                before, lines = state.dumps(), lines_of(state.years, state.paid_out)
                effects = state.open_year(year, where, book, "ab" * 32, 1, f"cmd-{where}", opened)
                opened[where] = max(year, opened.get(where, year))
                if not effects and lines_of(state.years, state.paid_out) == lines:
                    state = PersonState.loads(before)  # the scan keeps only what changed (handlers.scan)
            else:
                state.apply_identity(step, book, "ab" * 32, 1, opened)
            state = PersonState.loads(state.dumps())
        return state

    interleaved = run(steps)
    opened_last = run([*order, *opens])
    assert _decided(interleaved) == _decided(opened_last)
    assert _ledger(interleaved) == _ledger(opened_last)


@settings(max_examples=200, deadline=None)
@given(timelines())
def test_a_replay_of_the_same_events_changes_nothing(case):
    idn, events, order = case
    state = _replay(idn, list(order))
    before = state.dumps()
    for ev in order:  # every event redelivered
        assert state.apply_identity(ev, shipped_book(), "ab" * 32, 2) == []
    assert state.dumps() == before


@functools.cache
def revised_book(root: str) -> PolicyBook:
    """The shipped policies, revised: every fixed amount 20 yuan higher (new policy ids)."""
    return load_book(raised_policies(Path(root) / "revised"))


class Redecide(NamedTuple):
    region: str
    year: int


EVERY_REGION_YEAR = [Redecide("410000", 2025), Redecide("370000", 2025), Redecide("510400", 2022)]


@settings(max_examples=200, deadline=None)
@given(timelines(), st.data())
def test_a_revision_then_redecide_anywhere_decides_as_the_revised_policies_alone(tmp_path_factory, case, data):
    """CONTRACT rules 13 and 14: the revised policies are loaded anywhere among a person's events
    and REDECIDE comes anywhere after that (more than once, and at the end): the years come out
    as if every event had come under the revised policies; a REDECIDE before the revision, with
    the old policies, changes nothing."""
    idn, events, order = case
    old = shipped_book()
    new = revised_book(str(tmp_path_factory.getbasetemp() / "revision"))
    switch = data.draw(st.integers(min_value=0, max_value=len(order)), label="revision after event")
    steps: list = list(order)
    for n in range(data.draw(st.integers(min_value=0, max_value=3), label="extra REDECIDEs")):
        where = data.draw(st.integers(min_value=0, max_value=len(steps)), label=f"redecide {n}")
        steps.insert(where, data.draw(st.sampled_from(EVERY_REGION_YEAR), label=f"which {n}"))
    steps.insert(min(switch + sum(isinstance(s, Redecide) for s in steps[:switch]), len(steps)), "revised")
    steps += EVERY_REGION_YEAR

    state, book = PersonState(idn), old
    for step in steps:
        if step == "revised":
            book = new
        elif isinstance(step, Redecide):
            before, lines = state.dumps(), lines_of(state.years, state.paid_out)
            if not state.redecide(step.year, step.region, book, "ab" * 32, 1) and lines_of(
                    state.years, state.paid_out) == lines:
                state = PersonState.loads(before)  # the scan keeps only what changed (handlers.scan)
        else:
            state.apply_identity(step, book, "ab" * 32, 1)
        state = PersonState.loads(state.dumps())
    assert _decided(state) == _decided(_replay(idn, list(order), new))
    # the ledger too, but its policy id: a revision that changes no figure sends no version (rule
    # 14), and the line names the policy of the version tax holds, as fee-standard.v1 does
    assert ({y: line._replace(policy_id="") for y, line in _ledger(state).items()}
            == {y: line._replace(policy_id="") for y, line in _ledger(_replay(idn, list(order), new)).items()})


def test_two_county_statements_of_one_instant_decide_the_same_whatever_their_ids():
    """Found by the arrival-order property: a file's rows recorded at one instant, two UPDATEDs of
    one identity naming two counties. The order of such a tie came from the event ids; renamed
    ids moved the person between Henan and Weihai. Now fixed content decides it, ids never."""
    idn = new_id(HENAN)
    day, instant = dt.date(2023, 12, 1), dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    certified = validate_identity(event(idn, "MINIMUM_LIVING", effective=day, event_id="p-5",
                                        occurred=dt.datetime(2023, 12, 1, 0, 0, 1, tzinfo=dt.UTC)))
    here = validate_identity(event(idn, "MINIMUM_LIVING", change="UPDATED", effective=day, occurred=instant,
                                   event_id="p-4"))
    there = validate_identity(event(idn, "MINIMUM_LIVING", region=WEIHAI, change="UPDATED", effective=day,
                                    occurred=instant, event_id="p-6"))
    events = [e for e in (certified, here, there) if isinstance(e, Identity)]
    assert len(events) == 3
    as_sent = _replay(idn, events)
    renamed = _replay(idn, [ev._replace(event_id=f"z-{10**9 - int(ev.event_id[2:])}") for ev in events])
    assert _decided(as_sent) == _decided(renamed) and _decided(as_sent)


@functools.cache
def top_up_book(root: str) -> PolicyBook:
    """The shipped policies with every region's other-channel rule set to top_up (rule 10)."""
    directory = Path(root) / "policies"
    shutil.copytree(SHIPPED_POLICY_DIR, directory)
    changed = 0
    for path in directory.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if "other_channel:\n    value: review_only" in text:
            path.write_text(text.replace("other_channel:\n    value: review_only", "other_channel:\n    value: top_up"),
                            encoding="utf-8")
            changed += 1
    assert changed == 4, "each province's file states its other-channel rule"
    return load_book(directory)


@settings(max_examples=200, deadline=None)
@given(timelines(), st.data())
def test_other_channels_anywhere_among_the_events_decide_the_same(tmp_path_factory, case, data):
    """CONTRACT rule 10 with rule 13: under a top-up rule, another funder's subsidies reported
    before, between or after a person's events (and again: a redelivery) leave every year on
    the same standard as when they all come last."""
    import datetime as _dt

    from streams.domain.messages import OtherChannel

    idn, events, order = case
    book = top_up_book(str(tmp_path_factory.mktemp("topup")))
    others = [OtherChannel(f"o-{n}", "慈善总会", idn, year, amount, _dt.datetime(2024, 11, 1, tzinfo=_dt.UTC))
              for n, (year, amount) in enumerate(data.draw(st.lists(st.tuples(
                  st.sampled_from([2022, 2023, 2025]), st.sampled_from([5000, 10000, 50000])), min_size=1,
                  max_size=3), label="other channels"))]
    steps: list[Identity | OtherChannel] = list(order)
    for other in others + [others[0]]:  # the first one redelivered too
        steps.insert(data.draw(st.integers(min_value=0, max_value=len(steps)), label="where"), other)

    def play(sequence: list[Identity | OtherChannel]) -> PersonState:
        state = PersonState(idn)
        for step in sequence:
            if isinstance(step, OtherChannel):
                state.apply_other_channel(step, book, "ab" * 32, 1)
            else:
                state.apply_identity(step, book, "ab" * 32, 1)
            state = PersonState.loads(state.dumps())
        return state

    assert _decided(play(steps)) == _decided(play([*order, *others]))
    assert _ledger(play(steps)) == _ledger(play([*order, *others]))
