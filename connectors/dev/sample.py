"""Sample identity events of the seed regions, for the demo and the tests.

The people are invented; their ID numbers are synthetic but carry valid
GB 11643 check characters (region code + birth date + sequence number).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.domain.exceptions import NoPolicy
from streams.domain.ids import check_char
from streams.domain.policy.spec import PolicyBook


def make_id(region: str, born: dt.date, seq: int) -> str:
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + check_char(first17)


def utc(y: int, m: int, d: int) -> dt.datetime:
    return dt.datetime(y, m, d, 9, 0, tzinfo=dt.UTC)


BEFORE_WINDOW = dt.timedelta(days=92)


def certified_day(book: PolicyBook, region: str) -> dt.date:
    """A day on which an identity certified in ``region`` counts for the region's first policy
    year at the normal rate: three months (92 days) before that year's window opens (so before
    any identity cutoff too). Read from the book, never spelled per region; ``NoPolicy`` when
    no policy covers the region."""
    years = book.years(region)
    if not years:
        raise NoPolicy(region, None)
    return book.lookup(region, years[0]).spec.window.start - BEFORE_WINDOW


def identity_event(*, event_id: str, source: str, id_number: str, name: str, category: str, region: str,
                   effective: dt.date, occurred: dt.datetime, change: str = "CERTIFIED",
                   is_student: bool = False) -> dict[str, Any]:
    return {
        "event_id": event_id, "source": source, "change": change, "id_number": id_number, "name": name,
        "category": category, "region_code": region, "effective_date": effective, "occurred_at": occurred,
        "is_student": is_student,
    }


@dataclass
class SamplePerson:
    name: str
    region: str
    id_number: str
    identities: list[tuple[str, str]]  # (source, category)
    effective: dt.date
    occurred: dt.datetime
    is_student: bool = False
    expect: str = ""  # what the policy should decide, for the reader


@dataclass
class SampleSet:
    people: list[SamplePerson]
    events: list[dict[str, Any]] = field(default_factory=list)  # valid events, in send order
    bad_events: list[dict[str, Any]] = field(default_factory=list)  # decodable but invalid
    garbage: list[tuple[str, bytes]] = field(default_factory=list)  # (source, bytes) undecodable


def _eid(tag: str, *parts: str) -> str:
    return f"{tag}-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def seed_regions(tag: str = "demo", book: PolicyBook | None = None) -> SampleSet:
    """Fourteen people in Henan, Weihai (Shandong), Chongqing and Panzhihua, and some bad input
    (certified on each region's ``certified_day`` of ``book``: the shipped policies by default)."""
    if book is None:
        from streams.policies import load_book

        book = load_book()
    CA, RR, DI, VE = "CIVIL_AFFAIRS", "RURAL_REVITALIZATION", "DISABILITY", "VETERANS"
    henan, weihai, chongqing, panzhihua = "410102", "371002", "500101", "510402"
    h_eff, h_occ = certified_day(book, henan), utc(2024, 8, 25)
    c_eff, c_occ = certified_day(book, chongqing), utc(2019, 8, 20)
    p_eff, p_occ = certified_day(book, panzhihua), utc(2021, 8, 20)
    people = [
        SamplePerson("王芳", henan, make_id(henan, dt.date(1968, 3, 14), 21), [(CA, "MINIMUM_LIVING")], h_eff, h_occ,
                     expect="河南 低保 定额"),
        SamplePerson("李强", henan, make_id(henan, dt.date(1955, 11, 2), 13), [(CA, "EXTREME_POVERTY"), (RR, "MONITORED_RELAPSE_RISK")],
                     h_eff, h_occ, expect="河南 特困+监测 就高: 全额"),
        SamplePerson("赵敏", henan, make_id(henan, dt.date(1979, 7, 30), 44), [(RR, "MONITORED_RELAPSE_RISK")], h_eff, h_occ,
                     expect="河南 监测对象 定额"),
        SamplePerson("刘洋", weihai, make_id(weihai, dt.date(1982, 1, 9), 17), [(CA, "MINIMUM_LIVING")], h_eff, h_occ,
                     expect="威海 低保 (市级覆盖省级定额)"),
        SamplePerson("陈静", weihai, make_id(weihai, dt.date(2014, 5, 5), 22), [(CA, "ORPHAN")], h_eff, h_occ,
                     expect="山东 孤儿 全额"),
        SamplePerson("孙丽", weihai, make_id(weihai, dt.date(1990, 9, 19), 36), [(CA, "LOW_INCOME_MARGINAL")],
                     dt.date(2025, 3, 10), utc(2025, 3, 12), expect="山东 缴费期外新增: 随参随缴"),
        SamplePerson("周杰", chongqing, make_id(chongqing, dt.date(1950, 4, 1), 15), [(VE, "ENTITLED_VETERAN")], c_eff, c_occ,
                     expect="重庆 优抚对象"),
        SamplePerson("郭亮", chongqing, make_id(chongqing, dt.date(1972, 6, 6), 41), [(RR, "REGISTERED_POOR")],
                     dt.date(2020, 8, 3), utc(2020, 8, 5), expect="重庆 建档立卡 6月30日后新增: 脱贫攻坚期内随参随缴"),
        SamplePerson("吴刚", chongqing, make_id(chongqing, dt.date(1975, 12, 12), 37), [(DI, "SEVERE_DISABILITY"), (CA, "MINIMUM_LIVING")],
                     c_eff, c_occ, expect="重庆 重度残疾+低保 就高"),
        SamplePerson("郑红", panzhihua, make_id(panzhihua, dt.date(1966, 8, 8), 28), [(DI, "SEVERE_DISABILITY"), (CA, "MINIMUM_LIVING")],
                     p_eff, p_occ, expect="攀枝花 重度残疾优先: 二档全额"),
        SamplePerson("冯晓", panzhihua, make_id(panzhihua, dt.date(2008, 2, 29), 19), [(DI, "SEVERE_DISABILITY")], p_eff, p_occ,
                     is_student=True, expect="攀枝花 重度残疾学生: 一档全额"),
        SamplePerson("何平", panzhihua, make_id(panzhihua, dt.date(1971, 10, 3), 33), [(DI, "GENERAL_DISABILITY"), (CA, "MINIMUM_LIVING")],
                     p_eff, p_occ, expect="攀枝花 一般残疾+低保: 按一般残疾"),
        SamplePerson("许诺", panzhihua, make_id(panzhihua, dt.date(1988, 6, 16), 48), [(CA, "MINIMUM_LIVING"), (RR, "MONITORED_RELAPSE_RISK")],
                     p_eff, p_occ, expect="攀枝花 民政优先: 低保 75%"),
    ]
    sample = SampleSet(people=people)
    for person in people:
        for source, category in person.identities:
            sample.events.append(identity_event(
                event_id=_eid(tag, person.id_number, source, category), source=source, id_number=person.id_number,
                name=person.name, category=category, region=person.region, effective=person.effective,
                occurred=person.occurred, is_student=person.is_student,
            ))
    # A legacy 15-digit number, upgraded by the broker (born 1961).
    legacy18 = make_id(henan, dt.date(1961, 2, 17), 52)
    legacy15 = legacy18[:6] + legacy18[8:17]
    people.append(SamplePerson("钱进", henan, legacy18, [(CA, "MINIMUM_LIVING")], h_eff, h_occ, expect="15位身份证号升级为18位"))
    sample.events.append(identity_event(
        event_id=_eid(tag, legacy15), source=CA, id_number=legacy15, name="钱进", category="MINIMUM_LIVING",
        region=henan, effective=h_eff, occurred=h_occ))
    # A redelivery of the first event: must change nothing.
    sample.events.append(dict(sample.events[0]))
    # Bad input, sent back to the department.
    bad_id = make_id(henan, dt.date(1970, 1, 1), 11)
    bad_id = bad_id[:17] + ("0" if bad_id[17] != "0" else "1")
    sample.bad_events.append(identity_event(
        event_id=_eid(tag, "bad-checksum"), source=CA, id_number=bad_id, name="错号", category="MINIMUM_LIVING",
        region=henan, effective=h_eff, occurred=h_occ))
    sample.bad_events.append(identity_event(
        event_id=_eid(tag, "bad-category"), source=RR, id_number=make_id(henan, dt.date(1980, 1, 1), 12), name="错类",
        category="EXTREME_POVERTY", region=henan, effective=h_eff, occurred=h_occ))
    sample.garbage.append((CA, b"this is not an Avro record"))
    return sample


def raised_policies(target: Path, by_fen: int = 2000) -> Path:
    """A revision of every shipped region-year, written to ``target``: each fixed amount ``by_fen``
    higher (new policy ids), the rest unchanged (the bench's revision, the revision property test)."""
    import shutil

    import yaml

    from streams.policies import SHIPPED_POLICY_DIR

    shutil.copytree(SHIPPED_POLICY_DIR, target, dirs_exist_ok=True)
    for path in target.glob("*.yaml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for rule in (doc.get("subsidies") or {}).values():
            for key in ("subsidy", "student"):
                if (rule.get(key) or {}).get("kind") == "fixed":
                    rule[key]["amount_fen"] += by_fen
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return target
