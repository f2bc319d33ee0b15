"""A remembered line's ledger.v1 record put together from its template and the person's own
fields (``LedgerKeeper._from_templates``) is the record ``LedgerKeeper.entry`` encodes whole,
byte for byte, key and partition too: for any line, person and time, single-object framed or
through a schema registry."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import Codec
from schemas.fast_writer import flat_fields
from schemas.registry import SchemaRegistryClient
from streams.domain.ledger import LedgerLine
from streams.kafka.topics import Topics
from streams.runtime.ledger import LedgerKeeper, ledger_key
from tests.unit.schemas.test_codec import registry_url  # noqa: F401 - the fixture

_ENUMS = {name: list(detail) for name, kind, _, detail in flat_fields(Codec().schemas["LedgerEntry"].raw) or []
          if kind == "enum"}


def _symbols(field: str) -> list[str]:
    return _ENUMS[field]


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_FEN = st.integers(-(2**40), 2**40)
_DAY = st.none() | st.dates(dt.date(1970, 1, 1), dt.date(2100, 12, 31)).map(dt.date.isoformat)
LINES = st.builds(
    LedgerLine, region_code=st.from_regex(r"[1-8][0-9]{5}", fullmatch=True), category=st.sampled_from(_symbols("category")),
    funding_source=st.sampled_from(_symbols("funding_source")), contribution_level=st.integers(0, 2**31 - 1),
    live_version=st.integers(0, 2**31 - 1), paid_version=st.none() | st.integers(-(2**31), 2**31 - 1),
    state=st.sampled_from(_symbols("state")), premium_fen=_FEN, subsidy_fen=_FEN, payable_fen=_FEN,
    on_the_spot=st.booleans(), due=_DAY, suspected_since=_DAY, policy_id=_TEXT, basis=_TEXT, instructed_fen=_FEN,
    payment_mode=st.sampled_from(_symbols("payment_mode")))
PEOPLE = st.tuples(st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True) | _TEXT, _TEXT)
TIMES = st.integers(0, 253402300799999)


def _keeper(codec: Codec, now: int) -> LedgerKeeper:
    return LedgerKeeper(Topics(), codec, None, lambda: now)  # type: ignore[arg-type]  # writes no state


def _same(keeper: LedgerKeeper, lines: dict[int, LedgerLine], person: tuple[str, str], now: int) -> None:
    key = b"k" * 64
    got = keeper._from_templates(3, key, person[0], person[1], lines, now)
    expected = {ledger_key(key, year): keeper.entry(key, year, line, person[0], person[1], now, 3)
                for year, line in lines.items()}
    assert got == expected
    assert all(keeper.template(year, line) is not None for year, line in lines.items())  # none encoded whole


@settings(max_examples=300, deadline=None)
@given(lines=st.dictionaries(st.integers(2000, 2100), LINES, min_size=1, max_size=3), people=st.lists(PEOPLE, min_size=1, max_size=3),
       now=TIMES)
def test_a_template_gives_the_entry_s_bytes(lines, people, now):
    keeper = _keeper(Codec(), now)
    for person in people:  # the second person of a line on: from its template
        _same(keeper, lines, person, now)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # one registry for all
@given(line=LINES, person=PEOPLE, now=TIMES)
def test_a_template_through_a_registry_gives_the_entry_s_bytes(registry_url, line, person, now):  # noqa: F811
    _same(_keeper(Codec(SchemaRegistryClient(registry_url)), now), {2025: line}, person, now)


def test_a_template_is_the_line_s_own_and_a_new_line_of_the_same_id_gets_its_own():
    keeper = _keeper(Codec(), 1)
    line = LedgerLine("410102", "MINIMUM_LIVING", "MEDICAL_ASSISTANCE_FUND", 1, 1, None, "NO_ANSWER", 38000, 38000, 0,
                      False, None, None, "p", "b", 0, "ZERO_DECLARATION")
    first = keeper.template(2025, line)
    assert first is not None and first.line is line and keeper.template(2025, line) is first
    assert keeper.template(2026, line) is not first  # another year: another template
    other = line._replace(subsidy_fen=1)
    keeper.templates[(id(other), 2025)] = first  # as if ``other`` had the id of a line no longer held
    made = keeper.template(2025, other)
    assert made is not None and made.line is other
