"""streams/_speedups.c against the Python it shadows: murmur2 gives py_murmur2's hash for any
key, and id18 gives normalize_id's number or declines (None), so that every rejection's reason
and text still come from the Python (streams/runtime/speedups.py puts it in front)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.ids import PROVINCES, check_char, normalize_id
from streams.runtime import speedups as fast
from streams.runtime.partitioning import py_murmur2
from tests.fixtures import needs_c

speedups = fast.C


@needs_c
@settings(max_examples=500)
@given(key=st.binary(max_size=200))
def test_murmur2_is_the_pythons(key):
    assert speedups.murmur2(key) == py_murmur2(key)


def _valid_ids() -> st.SearchStrategy[str]:
    """Numbers that pass every check (some with a lower-case x)."""
    def build(province: str, county: int, born: dt.date, seq: int, lower: bool) -> str:
        first17 = f"{province}{county:04d}{born:%Y%m%d}{seq:03d}"
        check = check_char(first17)
        return first17 + (check.lower() if lower else check)
    return st.builds(build, st.sampled_from(sorted(PROVINCES)), st.integers(0, 9999),
                     st.dates(dt.date(1880, 1, 1), dt.date(2030, 12, 31)), st.integers(0, 999), st.booleans())


def _near_misses() -> st.SearchStrategy[str]:
    """A valid number with one character changed, cut, grown, blank around, or full-width."""
    def spoil(valid: str, how: str, at: int, ch: str) -> str:
        at %= len(valid)
        if how == "change":
            return valid[:at] + ch + valid[at + 1:]
        if how == "cut":
            return valid[:at]
        if how == "grow":
            return valid[:at] + ch + valid[at:]
        if how == "blank":
            return f" {valid}" if at % 2 else f"{valid}\t"
        return valid.translate({ord(c): ord(c) - ord("0") + 0xFF10 for c in "0123456789"})  # full-width digits
    chars = st.sampled_from(list("0123456789Xx \u0661\uff11-")) | st.characters()
    return st.builds(spoil, _valid_ids(), st.sampled_from(["change", "cut", "grow", "blank", "wide"]),
                     st.integers(0, 40), chars)


@needs_c
@settings(max_examples=500, deadline=None)
@given(raw=_valid_ids() | _near_misses() | st.text(max_size=20) | st.from_regex(r"\d{15}", fullmatch=True))
def test_id18_is_normalize_ids_number_or_declines(raw):
    got = speedups.id18(raw)
    expected = normalize_id(raw)
    if got is not None:
        assert (got, None) == expected
    assert fast.normalize_id(raw) == expected  # with the C in front, the same answer and the same problem


@needs_c
@settings(max_examples=200, deadline=None)
@given(raw=_valid_ids())
def test_id18_takes_every_valid_eighteen_character_number_itself(raw):
    assert speedups.id18(raw) == raw.upper()


@needs_c
def test_id18_declines_what_is_not_a_string():
    assert speedups.id18(None) is None
    assert speedups.id18(b"11010519491231002X") is None
