"""A person state's bytes (``streams/domain/state_codec.py``): what memory they hold."""

from __future__ import annotations

import datetime as dt
import tracemalloc

import orjson

from connectors.dev.sample import make_id
from streams.domain.identity import Identity, validate_identity
from streams.domain.person import PersonState
from streams.domain.state_codec import plain_newcomer, trimmed
from streams.domain.timeline import Fact
from tests.fixtures import HENAN, event, in_window, shipped_book


def _allocated(make):  # the bytes ``make`` returns, and the memory traced for them
    tracemalloc.start()
    try:
        tracemalloc.clear_traces()
        made = make()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return made, held


def test_a_state_holds_memory_of_its_own_size():
    """orjson (3.12 on) returns its bytes in a buffer rounded up (8 KiB for a 0.7 KiB state) and
    never shrinks it; a take holds tens of thousands of states until it commits. The state's
    bytes are copied to their own size."""
    raw = event(make_id(HENAN, dt.date(1990, 1, 1), 123), "MINIMUM_LIVING", region=HENAN, effective=in_window(HENAN))
    ident = validate_identity(raw)
    assert isinstance(ident, Identity), ident
    state = PersonState(id_number=ident.id_number)
    state.apply_identity(ident, shipped_book(), "a" * 64, 1, {})
    stored, held = _allocated(state.dumps)
    assert 300 < len(stored) and held < len(stored) + 256, (len(stored), held)
    assert PersonState.loads(stored).dumps() == stored


def test_trimmed_is_the_same_bytes_in_memory_of_their_size():
    doc = {"k": "x" * 700}
    untrimmed, held_before = _allocated(lambda: orjson.dumps(doc))
    data, held = _allocated(lambda: trimmed(untrimmed))
    assert data == untrimmed and data is not untrimmed
    assert held < len(data) + 256, (len(data), held)


def test_plain_newcomer_reads_a_state_of_one_fact_and_builds_no_fact_for_more(monkeypatch):
    """A second identity of a person held as a newcomer is read from the state's bytes; a person
    of two facts (a third identity on) goes to the rules, which decode the state themselves:
    no fact is built twice."""
    book = shipped_book()
    id_number = make_id(HENAN, dt.date(1990, 1, 1), 123)
    state = PersonState(id_number=id_number)
    first = validate_identity(event(id_number, "MINIMUM_LIVING", region=HENAN, effective=in_window(HENAN)))
    assert isinstance(first, Identity)
    state.apply_identity(first, book, "a" * 64, 1, {})
    one = state.dumps()
    assert plain_newcomer(one) == (id_number, state.name, state.facts[0])
    second = validate_identity(event(id_number, "MONITORED_RELAPSE_RISK", region=HENAN, effective=in_window(HENAN)))
    assert isinstance(second, Identity)
    state.apply_identity(second, book, "a" * 64, 2, {})
    assert len(state.facts) == 2 and not (state.seen or state.waiting or state.raised)
    built = []
    monkeypatch.setattr(Fact, "from_doc", staticmethod(lambda doc: built.append(doc)))
    assert plain_newcomer(state.dumps()) is None
    assert built == []
