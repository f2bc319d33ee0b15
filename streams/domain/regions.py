"""The administrative hierarchy of a region code, in one place: county -> city -> province.

A region code has six digits: the province ``XX0000``, a city ``XXXX00``, a county ``XXXXXX``
(GB/T 2260). Policies are looked up county first, then city, then province; operators ask
for a county, a city or a province; a department reports a county.
"""

from __future__ import annotations

from typing import Literal

from streams.domain.ids import PROVINCES

Level = Literal["county", "city", "province"]


def province_of(code: str) -> str:
    return code[:2] + "0000"


def city_of(code: str) -> str:
    return code[:4] + "00"


def level_of(code: str) -> Level:
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


def at_level(code: str, level: Level) -> str:
    """The county, city or province ``code`` lies in."""
    return {"county": code, "city": city_of(code), "province": province_of(code)}[level]


def chain(code: str) -> list[str]:
    """The codes a county's policy is looked up under: the county, its city, its province."""
    return list(dict.fromkeys([code, city_of(code), province_of(code)]))


def contains(region: str, code: str) -> bool:
    """Whether the county ``code`` lies in ``region`` (a county, a city or a province)."""
    return at_level(code, level_of(region)) == region


MUNICIPALITIES = frozenset({"11", "12", "31", "50"})  # 北京, 天津, 上海, 重庆: one pooling region each


def pooling_region(county: str) -> str:
    """The pooling region (统筹地区) a county enrols in: its city, or the whole municipality for
    the four directly governed ones. A person enrolled outside the pooling region of the county
    that certified them enrolled elsewhere (异地参保)."""
    return province_of(county) if county[:2] in MUNICIPALITIES else city_of(county)


def is_county_code(code: str) -> bool:
    """Six digits of a known province, and not a province's own code (a department reports a
    county; a city-level code is accepted, as some cities report without districts). Digits
    are ASCII's: str.isdigit also takes full-width ones (41０102), another region's code."""
    return len(code) == 6 and code.isascii() and code.isdigit() and code[:2] in PROVINCES and code != province_of(code)
