"""The one region hierarchy (streams/domain/regions.py), used by policy lookup, validation,
the person's OPEN_YEAR/CHECK_COVERAGE scope and the ledger's reports."""

import pytest

from streams.domain import regions


@pytest.mark.parametrize(("code", "level", "city", "province"), [
    ("410102", "county", "410100", "410000"),
    ("410100", "city", "410100", "410000"),
    ("410000", "province", "410000", "410000"),
])
def test_levels(code, level, city, province):
    assert regions.level_of(code) == level
    assert (regions.city_of(code), regions.province_of(code)) == (city, province)
    assert regions.at_level("410102", level) == {"county": "410102", "city": "410100", "province": "410000"}[level]


def test_a_county_policy_is_looked_up_county_city_province():
    assert regions.chain("371002") == ["371002", "371000", "370000"]
    assert regions.chain("500000") == ["500000"]  # no repeats


@pytest.mark.parametrize(("region", "code", "inside"), [
    ("410000", "410102", True), ("410100", "410102", True), ("410102", "410102", True),
    ("410000", "370102", False), ("410100", "410202", False), ("410102", "410103", False),
])
def test_contains(region, code, inside):
    assert regions.contains(region, code) is inside


@pytest.mark.parametrize(("code", "ok"), [
    ("410102", True), ("410100", True), ("410000", False), ("990102", False), ("41010", False), ("41010X", False),
    ("41\uff10102", False), ("4101\u00b9\u00b2", False),  # a full-width 0; superscript digits
])
def test_a_department_reports_a_county(code, ok):
    assert regions.is_county_code(code) is ok
