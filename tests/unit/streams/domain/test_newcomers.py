"""The decisions of people seen for the first time, remembered by what decides them
(``streams/domain/newcomers.py``, issue #25 part 2): whatever it remembers, each person gets
exactly the state and effects the rules give them (``PersonState.apply_identity``)."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from connectors.dev.sample import make_id
from streams.domain.identity import Identity, validate_identity
from streams.domain.ledger import contributions, lines_of
from streams.domain.messages import FeeStandardIssued
from streams.domain.newcomers import Newcomers, adult_since
from streams.domain.person import PersonState
from streams.domain.policy.spec import PolicyBook
from streams.domain.state_codec import encode_newcomer, years_doc
from streams.policies import SHIPPED_POLICY_DIR, load_book
from tests.fixtures import CHONGQING, HENAN, PANZHIHUA, WEIHAI, event, in_window, shipped_book
from tests.unit.streams.domain.test_policy_tables import shifted_policy

_seq = itertools.count(1)


@functools.cache
def years_book() -> PolicyBook:
    """The shipped policies and the years after them (each the year before, one year on): every
    year a certification counts for, or a region opens, has a policy, so most newcomers are decided
    without a case (and remembered)."""
    directory = Path(tempfile.mkdtemp(prefix="zhucan-newcomers-")) / "policies"
    shutil.copytree(SHIPPED_POLICY_DIR, directory)
    for name in ("410000-2026", "410000-2027", "370000-2026", "370000-2027", "371000-2026", "371000-2027",
                 "510400-2023", "510400-2024", "510400-2025", "510400-2026", "500000-2021"):
        shifted_policy(directory, name)
    return load_book(directory)
NO_POLICY = "130102"  # Hebei: a county no policy covers: a review case, never remembered
CATEGORIES = ["MINIMUM_LIVING", "EXTREME_POVERTY", "MONITORED_RELAPSE_RISK", "ORPHAN", "LOW_INCOME_MARGINAL",
              "SEVERE_DISABILITY", "GENERAL_DISABILITY", "DE_FACTO_UNSUPPORTED_CHILD"]
# few values of each field, so that many people share a key; birth dates on both sides of the
# child ages (Panzhihua's 18) and of the day past which nobody can be a child in any year
BORN = [dt.date(1950, 3, 1), dt.date(1990, 6, 15), dt.date(2001, 12, 31), dt.date(2002, 1, 1), dt.date(2002, 1, 2),
        dt.date(2006, 1, 1), dt.date(2006, 1, 2), dt.date(2007, 12, 31), dt.date(2015, 7, 7), dt.date(2023, 1, 1)]
DAYS = [-400, -120, -30, 0, 20, 90, 200, 400, 800]  # from a day in the region's first window: before, in, after


def decided(ident: Identity, book: PolicyBook, key: str, now: int,
            opened: dict[str, int]) -> tuple[bytes, list[tuple[str, dict[str, Any]]], dict[int, Any]]:
    state = PersonState(id_number=ident.id_number)
    effects = state.apply_identity(ident, book, key, now, opened)
    return state.dumps(), [(type(e).__name__, dict(e.__dict__)) for e in effects], lines_of(state.years)


def remembered(memo: Newcomers, ident: Identity, book: PolicyBook, key: str, now: int,
               opened: dict[str, int]) -> tuple[bytes, list[tuple[str, dict[str, Any]]], dict[int, Any]]:
    """As ``decided``, by the memo: a state's bytes, or a remembered person's (no state); the
    lines and totals it gives are the state's."""
    state, effects, lines, totals, stored = memo.apply_identity(ident, book, key, now, opened)
    if state is None:  # remembered: the bytes, lines and totals given are all there is
        assert stored is not None and lines is not None and totals == contributions(lines)
        return stored, [(type(e).__name__, dict(e.__dict__)) for e in effects], lines
    assert stored is None
    assert lines is None or lines == lines_of(state.years)
    assert totals is None or totals == contributions(lines_of(state.years))
    return state.dumps(), [(type(e).__name__, dict(e.__dict__)) for e in effects], lines_of(state.years)


def _fact(region: str = HENAN, category: str = "MINIMUM_LIVING", change: str = "CERTIFIED", days: int = 0,
          student: bool = False, living: str | None = None, born: dt.date = dt.date(1970, 1, 1),
          name: str = "测试") -> Identity:
    raw = event(make_id(region, born, next(_seq) % 1000), category, region=region, change=change, name=name,
                effective=in_window(region) + dt.timedelta(days=days), is_student=student, event_id=f"n-{next(_seq)}")
    if living:
        raw["living_status"] = living
    result = validate_identity(raw)
    assert isinstance(result, Identity), result
    return result


OPENED = [{}, {HENAN: 2026}, {"370000": 2027, PANZHIHUA: 2026}, {CHONGQING: 2025, WEIHAI: 2026}]


@st.composite
def shape(draw: Any, region: str | None = None) -> dict[str, Any]:
    """What a department says of someone, without who they are."""
    region = region or draw(st.sampled_from([HENAN, WEIHAI, CHONGQING, PANZHIHUA, PANZHIHUA, NO_POLICY]))
    book = shipped_book()
    subsidised = sorted(str(c) for c in book.lookup(region, book.years(region)[0]).spec.subsidies) \
        if book.years(region) else CATEGORIES
    out = {"region": region, "category": draw(st.sampled_from(subsidised) | st.sampled_from(CATEGORIES)),
           "change": draw(st.sampled_from(["CERTIFIED", "CERTIFIED", "CERTIFIED", "UPDATED", "REVOKED", "DECEASED"])),
           "effective": in_window(region) + dt.timedelta(days=draw(st.sampled_from(DAYS))),
           "student": draw(st.booleans()), "living": None, "previous": None, "opened": draw(st.sampled_from(OPENED))}
    if out["change"] in ("CERTIFIED", "UPDATED"):
        out["living"] = draw(st.sampled_from([None, None, "ALIVE", "DECEASED"]))
    if out["change"] == "UPDATED" and draw(st.booleans()):
        out["previous"] = draw(st.sampled_from([c for c in CATEGORIES if c != out["category"]]))
    return out


@st.composite
def shapes(draw: Any) -> list[dict[str, Any]]:
    """A shape and its neighbours, each with one field of its own: the key must tell them apart."""
    base = draw(shape())
    out = [base]
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        other = draw(shape(base["region"]))
        field = draw(st.sampled_from(["category", "change", "effective", "student", "living", "previous", "opened"]))
        out.append({**base, field: other[field]})
    return out


@st.composite
def newcomers(draw: Any) -> list[tuple[Identity, str, int, dict[str, int]]]:
    """People of a few shapes (so that many share a key), each with their own ID number (birth
    dates on both sides of the child ages), name, event id, recorded time, key and decision time."""
    kinds = draw(shapes())
    people = []
    for _ in range(draw(st.integers(min_value=1, max_value=30))):
        s = draw(st.sampled_from(kinds))
        born = min(s["effective"] - dt.timedelta(days=1),
                   draw(st.sampled_from(BORN) | st.dates(dt.date(1940, 1, 1), dt.date(2024, 12, 31))))
        occurred = dt.datetime.combine(s["effective"], dt.time(draw(st.integers(0, 23)), draw(st.integers(0, 59))),
                                       tzinfo=dt.UTC) + dt.timedelta(days=draw(st.integers(0, 20)))
        raw = event(make_id(s["region"], born, next(_seq) % 1000), s["category"], region=s["region"],
                    change=s["change"], name=draw(st.sampled_from(["测试", "张三", "李四四"])),
                    effective=s["effective"], occurred=occurred, event_id=f"n-{next(_seq)}", is_student=s["student"])
        if s["living"]:
            raw["living_status"] = s["living"]
        if s["previous"]:
            raw["previous_category"] = s["previous"]
        result = validate_identity(raw)
        if isinstance(result, Identity):  # (else a record the intake rejects: never decided)
            people.append((result, f"{next(_seq):064x}", draw(st.integers(1_700_000_000_000, 1_800_000_000_000)),
                           s["opened"]))
    assume(people)
    return people


@settings(max_examples=200, deadline=None)
@given(newcomers(), st.booleans())
def test_every_newcomer_gets_what_the_rules_give_them(people, shipped):
    """People of one key but other ID numbers, names, event ids, recorded times, keys and decision
    times, in any order: the same state bytes, effects and ledger lines as the rules give each."""
    book = shipped_book() if shipped else years_book()
    memo = Newcomers(entries=16)  # small: emptied when full, on the way
    for ident, key, now, opened in people:
        assert remembered(memo, ident, book, key, now, opened) == decided(ident, book, key, now, opened)


def test_the_second_person_of_a_key_is_remembered_with_their_own_id_name_message_id_and_time():
    book = shipped_book()
    memo = Newcomers(entries=100)
    first = _fact(HENAN, "MINIMUM_LIVING", born=dt.date(1961, 2, 3))
    second = _fact(HENAN, "MINIMUM_LIVING", born=dt.date(1975, 8, 9), name="王五")
    assert remembered(memo, first, book, "a" * 64, 1, {}) == decided(first, book, "a" * 64, 1, {})
    state, effects, _, _, stored = memo.apply_identity(second, book, "b" * 64, 2, {})
    assert (memo.hits, memo.misses) == (1, 1) and state is None and stored is not None
    (standard,) = effects
    assert isinstance(standard, FeeStandardIssued)
    assert (standard.id_number, standard.name, standard.issued_at) == (second.id_number, "王五", 2)
    kept = PersonState.loads(stored)
    assert standard.message_id.startswith("b" * 32) and kept.facts[0].event_id == second.event_id
    assert (kept.id_number, kept.name) == (second.id_number, "王五")
    assert (stored, [e.__dict__ for e in effects]) == (
        decided(second, book, "b" * 64, 2, {})[0], [e for _, e in decided(second, book, "b" * 64, 2, {})[1]])


NEIGHBOURS = {  # two people whose facts differ in one field, and whom the rules decide differently
    "effective date": ({}, {"days": 250}, {}, {}),  # the next year's window
    "change": ({}, {"change": "REVOKED"}, {}, {}),
    "region": ({}, {"region": WEIHAI}, {}, {}),
    "category": ({}, {"category": "EXTREME_POVERTY"}, {}, {}),
    "student": ({"region": PANZHIHUA, "category": "SEVERE_DISABILITY"},
                {"region": PANZHIHUA, "category": "SEVERE_DISABILITY", "student": True}, {}, {}),
    "living status": ({"living": "ALIVE"}, {"living": "DECEASED"}, {}, {}),
    "years opened": ({}, {}, {}, {HENAN: 2027}),
    "birth date": ({"region": PANZHIHUA, "category": "SEVERE_DISABILITY"},
                   {"region": PANZHIHUA, "category": "SEVERE_DISABILITY", "born": dt.date(2015, 1, 1)}, {}, {}),
}


@pytest.mark.parametrize("field", sorted(NEIGHBOURS))
def test_the_key_tells_neighbours_apart(field):
    """Each field of the key: the second person is never given the first one's decisions."""
    book = years_book()
    first_fact, second_fact, first_opened, second_opened = NEIGHBOURS[field]
    first, second = _fact(**first_fact), _fact(**second_fact)
    by_rules = decided(second, book, "b" * 64, 2, second_opened)
    assert decided(first, book, "a" * 64, 1, first_opened)[2] != by_rules[2]  # (they are decided differently)
    memo = Newcomers(entries=100)
    memo.apply_identity(first, book, "a" * 64, 1, first_opened)
    assert remembered(memo, second, book, "b" * 64, 2, second_opened) == by_rules
    assert (memo.hits, memo.misses) == (0, 2)


def test_a_child_and_an_adult_of_the_same_facts_are_not_one_key():
    """Panzhihua subsidises a severely disabled child (under 18) as a student: the birth date in
    the ID number decides, so it is part of the key where it can matter."""
    book = shipped_book()
    adult, child = (_fact(PANZHIHUA, "SEVERE_DISABILITY", born=dt.date(1980, 1, 1)),
                    _fact(PANZHIHUA, "SEVERE_DISABILITY", born=dt.date(2015, 1, 1)))
    by_rules = [decided(p, book, "c" * 64, 5, {}) for p in (adult, child)]
    assert [e["subsidy_fen"] for _, e in by_rules[0][1]] != [e["subsidy_fen"] for _, e in by_rules[1][1]]
    memo = Newcomers(entries=100)
    assert [remembered(memo, p, book, "c" * 64, 5, {}) for p in (adult, child)] == by_rules
    assert memo.hits == 0
    assert adult_since(book) == dt.date(2020 - 18, 1, 1)  # the book's first year is 2020, the oldest child age 18


def test_what_a_person_changes_later_is_their_own():
    book = shipped_book()
    memo = Newcomers(entries=100)
    decided_first = memo.apply_identity(_fact(HENAN, "MINIMUM_LIVING", born=dt.date(1961, 2, 3)), book, "d" * 64, 1, {})
    assert decided_first.state is not None  # the key's first person: decided by the rules, then remembered
    for rec in decided_first.state.years.values():  # its years, changed by a later command
        rec.held.append("ORPHAN")
        rec.older["1"] = {"changed": True}
        rec.subsidy_fen = -1
    first = memo.apply_identity(_fact(HENAN, "MINIMUM_LIVING", born=dt.date(1963, 2, 3)), book, "d" * 64, 1, {})
    assert memo.hits == 1
    for standard in first.effects:  # a remembered person's fee standards, changed on the way out
        standard.subsidy_fen = -1  # type: ignore[attr-defined]
    assert first.totals is not None
    for row in first.totals.values():  # and what it added to the totals (merged, in the ledger)
        row[0] += 5
    again = _fact(HENAN, "MINIMUM_LIVING", born=dt.date(1962, 2, 3))
    assert remembered(memo, again, book, "e" * 64, 1, {}) == decided(again, book, "e" * 64, 1, {})
    assert memo.hits == 2


def test_another_book_or_none_kept_decides_by_the_rules():
    book = shipped_book()
    other = PolicyBook.from_documents(list(book.documents), book.departments)
    memo = Newcomers(entries=100)
    p, q = _fact(WEIHAI, "ORPHAN", born=dt.date(1961, 2, 3)), _fact(WEIHAI, "ORPHAN", born=dt.date(1966, 2, 3))
    memo.apply_identity(p, book, "f" * 64, 1, {})
    assert remembered(memo, q, other, "f" * 64, 1, {}) == decided(q, other, "f" * 64, 1, {})
    assert (memo.hits, memo.misses) == (0, 2)
    off = Newcomers(entries=0)
    for person in (p, q):
        assert remembered(off, person, book, "f" * 64, 1, {}) == decided(person, book, "f" * 64, 1, {})
    assert (off.hits, off.misses) == (0, 0)


@pytest.mark.parametrize("name", ["测试", 'a "quoted" \\ name', "Ölçü 𠀀", ""])
def test_a_remembered_state_is_written_as_the_state_codec_writes_it(name):
    """``encode_newcomer`` (a remembered person's bytes, no state built) against ``encode``: the
    same bytes for a state of one fact and its years, with any name."""
    book = years_book()
    for region, category in ((HENAN, "MINIMUM_LIVING"), (PANZHIHUA, "SEVERE_DISABILITY"), (WEIHAI, "ORPHAN")):
        ident = _fact(region, category, name=name or "x", living="ALIVE")
        state = PersonState(id_number=ident.id_number)
        state.apply_identity(ident, book, "g" * 64, 3, {})
        state.name = name  # (the codec's own edge: an empty name)
        (fact,) = state.facts
        assert state.years and not (state.seen or state.waiting or state.raised)
        assert encode_newcomer(state.id_number, name, fact, orjson.dumps(years_doc(state.years))) == state.dumps()
