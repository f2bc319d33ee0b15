"""A person state's bytes (the person table and its changelog): ``encode`` and ``decode``, and
the migrations of older encodings, read on the fly.

``STATE_VERSION``: 1, identities held now, without dates; 2, the timeline, with frozen and
superseded figures as positional lists; 3, every stored figure by name, the county and
on-the-spot flag in a year's fingerprint, identical restatements kept once. A state is always
written in the current version; ``decode`` reads all three, and an upgrade sends tax nothing
(a migrated year's fingerprint is extended as v3 would have written it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

import orjson  # the state's JSON, written and read once per command: ~5x faster than json

from streams.domain.enums import Change
from streams.domain.money import OtherSubsidy, PaidOut
from streams.domain.payments import Figures
from streams.domain.timeline import Fact, record_fact, recorded_key
from streams.domain.year import YearRecord

STATE_VERSION = 3
_EMPTY_YEAR_FIELDS = YearRecord().__dict__  # a year stores only the fields that differ from these
_V1_HELD = ("source", "category", "region_code", "effective", "occurred_ms", "is_student", "first_year", "on_the_spot")


class State(Protocol):
    id_number: str
    name: str
    facts: list[Fact]
    years: dict[int, YearRecord]
    seen: list[str]
    waiting: list[int]
    raised: list[str]
    claims: dict[str, list[object]]
    paid_out: list[PaidOut]
    others: list[OtherSubsidy]


def years_doc(years: dict[int, YearRecord]) -> dict[str, dict[str, Any]]:
    """The years as a state's document holds them: each with the fields that differ from an empty year's."""
    return {str(y): {k: v for k, v in r.__dict__.items() if _EMPTY_YEAR_FIELDS[k] != v} for y, r in years.items()}


def years_json(years: dict[int, YearRecord]) -> bytes:
    """The years' part of a state's bytes (``encode_plain`` splices it in), trimmed."""
    return trimmed(orjson.dumps(years_doc(years)))


def encode(state: State) -> bytes:
    doc: dict[str, Any] = {
        "v": STATE_VERSION,
        "i": state.id_number,
        "n": state.name,
        "f": [f.to_doc() for f in state.facts],
        "y": years_doc(state.years),
        "s": state.seen,
    }
    if state.waiting:
        doc["w"] = state.waiting
    if state.raised:
        doc["k"] = state.raised
    if state.claims:
        doc["c"] = state.claims
    if state.paid_out:
        doc["o"] = [list(p) for p in state.paid_out]
    if state.others:
        doc["x"] = [list(o) for o in state.others]
    return trimmed(orjson.dumps(doc))  # compact UTF-8 JSON


def trimmed(data: bytes) -> bytes:
    """``data`` (orjson's) in memory of its own size. orjson (3.12 on) returns its bytes in a
    buffer rounded up and never shrunk: 8 KiB for a 0.7 KiB state. A state's bytes are held
    until its unit commits (a take of tens of thousands of people), and a remembered key's years
    while they are remembered, so that rest was held with them (docs/decisions.md, 2026-12-06:
    a worker's peak RSS on the bench about 405 -> 339 MB). The copy costs about 0.1 µs."""
    return b"".join((data, b""))  # two parts: a copy (one part would be returned as it is)


PLAIN_START = b'{"v":%d,"i":' % STATE_VERSION
PLAIN_END = b',"s":[]}'  # how every plain state's bytes end (``plain_newcomer``)


def plain_head(id_number: str, name: str) -> bytes:
    """A plain state's bytes up to its facts: the version, the ID number and the name."""
    return b"".join((PLAIN_START, orjson.dumps(id_number), b',"n":', orjson.dumps(name), b',"f":['))


def encode_plain(id_number: str, name: str, facts: Sequence[Fact], years_json: bytes,
                 tail: bytes = PLAIN_END) -> bytes:
    """``encode``'s bytes for a plain state: ``facts`` and the years whose document is
    ``years_json`` (``years_json(years)``), nothing else held (no ids
    seen, no year waiting, no case raised, no claim, instruction or other channel). A person
    remembered by ``newcomers.py`` is written so, without building the state (the same bytes:
    the document's fields in ``encode``'s order, compact JSON). ``tail``: the bytes after the
    years, where the state holds more that names no one (a remembered key's years waiting for a
    policy and cases raised, as its first person's state ends)."""
    return b"".join((plain_head(id_number, name), b",".join([orjson.dumps(f.to_doc()) for f in facts]), b'],"y":',
                     years_json, tail))


_FACT_ID = b'{"id":'
_RECORDED_ZERO = b',"o":0'  # a fact's recorded time of 0 in its document (no string holds it: quotes are escaped)


def _fact_parts(fact: Fact) -> tuple[bytes, bytes]:
    """A fact's document less its event id and recorded time: the bytes after the event id up to
    the recorded time, and those after it."""
    doc = orjson.dumps(fact._replace(event_id="", recorded_ms=0).to_doc())
    at = doc.index(_RECORDED_ZERO)
    return doc[len(_FACT_ID) + 2:at + len(_RECORDED_ZERO) - 1], doc[at + len(_RECORDED_ZERO):]


def plain_parts(fact: Fact, years_json: bytes) -> tuple[bytes, bytes]:
    """``encode_plain``'s bytes of a state of ``fact`` alone and those years, less what identifies
    the person (ID number, name, the fact's event id and recorded time): ``fill_plain`` puts them
    in (``streams/runtime/remembered.py``; held to ``encode_plain`` by
    tests/unit/streams/runtime/test_remembered.py)."""
    before, after = _fact_parts(fact)
    return before, after + b'],"y":' + years_json + PLAIN_END


def fill_plain(parts: tuple[bytes, bytes], id_number: str, name: str, event_id: str, recorded_ms: int) -> bytes:
    """``encode_plain(id_number, name, (fact,), years_json)`` where ``parts`` is
    ``plain_parts(fact, years_json)`` and the fact has this event id and recorded time."""
    return b"".join((plain_head(id_number, name), _FACT_ID, orjson.dumps(event_id), parts[0], b"%d" % recorded_ms,
                     parts[1]))


def split_plain(data: bytes, id_number: str, name: str, event_id: str, recorded_ms: int) -> tuple[bytes, bytes] | None:
    """``plain_parts`` read back from a plain state of one fact, ``data``, whose ID number, name
    and fact's event id and recorded time are these (``fill_plain`` of the parts gives ``data``
    again); None where ``data`` does not start so."""
    return _split(data, b"".join((plain_head(id_number, name), _FACT_ID, orjson.dumps(event_id))), recorded_ms)


def _split(data: bytes, head: bytes, recorded_ms: int) -> tuple[bytes, bytes] | None:
    if not data.startswith(head):
        return None
    marker = b',"o":%d' % recorded_ms  # a key's quote is never a string's (a string's are escaped)
    at = data.find(marker, len(head))
    if at < 0:
        return None
    return data[len(head):at + len(_RECORDED_ZERO) - 1], data[at + len(marker):]


def read_plain(data: bytes, id_number: str, name: str) -> tuple[str, int, tuple[bytes, bytes]] | None:
    """The event id, recorded time and ``plain_parts`` of a plain state's only fact, ``data``
    being the state of this ID number and name; None where it is not one (another head or end,
    more than one fact). Only the fact's document is parsed: a fact's document holds no list, so
    it ends where the years start. What else the state holds is in the parts, which the caller
    compares (``streams/runtime/remembered.py``: a shape's key)."""
    head = plain_head(id_number, name)
    end = data.find(b'],"y":', len(head)) if data.startswith(head) and data.endswith(PLAIN_END) else -1
    if end < 0:
        return None
    try:
        fact = orjson.loads(memoryview(data)[len(head):end])
    except orjson.JSONDecodeError:
        return None  # (two facts, or more)
    event_id, recorded_ms = (fact.get("id"), fact.get("o")) if type(fact) is dict else (None, None)
    if type(event_id) is not str or type(recorded_ms) is not int:
        return None
    parts = _split(data, b"".join((head, _FACT_ID, orjson.dumps(event_id))), recorded_ms)
    return None if parts is None else (event_id, recorded_ms, parts)


def second_parts(first: Fact, second: Fact, years_json: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """``encode_plain``'s bytes of a state of the two facts and those years, less what identifies
    the person (ID number, name, each fact's event id and recorded time): ``fill_second`` puts
    them in."""
    (a, b), (c, d) = _fact_parts(first), _fact_parts(second)
    return a, b + b"," + _FACT_ID, c, d + b'],"y":' + years_json + PLAIN_END


def fill_second(parts: tuple[bytes, bytes, bytes, bytes], id_number: str, name: str, first_id: str, first_ms: int,
                second_id: str, second_ms: int) -> bytes:
    """``encode_plain(id_number, name, (first, second), years_json)`` where ``parts`` is
    ``second_parts(first, second, years_json)`` and the facts have these event ids and recorded
    times."""
    return b"".join((plain_head(id_number, name), _FACT_ID, orjson.dumps(first_id), parts[0], b"%d" % first_ms,
                     parts[1], orjson.dumps(second_id), parts[2], b"%d" % second_ms, parts[3]))


def plain_newcomer(data: bytes) -> tuple[str, str, Fact] | None:
    """The ID number, name and only fact of a state whose bytes are a plain state's of one fact
    (``encode_plain``'s, as a remembered newcomer's: its years are not read), else None, before
    any fact is built (a person of more facts goes to the rules, which decode it themselves)."""
    if not (data.startswith(PLAIN_START) and data.endswith(PLAIN_END)):
        return None
    doc = orjson.loads(data)
    if len(doc) != 6 or doc["s"] or len(doc["f"]) != 1:  # v, i, n, f, y, s: nothing else held
        return None
    return doc["i"], doc["n"], Fact.from_doc(doc["f"][0])


def decode(data: bytes) -> dict[str, Any]:
    """The fields of the state ``data`` holds (``PersonState(**decode(data))``), in any version."""
    doc = orjson.loads(data)
    version = doc.get("v", 1)
    if version == 1:
        return _from_v1(doc)
    if version == 2:
        return _from_v2(doc)
    return {"id_number": doc["i"], "name": doc["n"], "facts": [Fact.from_doc(f) for f in doc["f"]],
            "years": {int(y): YearRecord(**r) for y, r in doc["y"].items()}, "seen": doc["s"],
            "waiting": doc.get("w", []), "raised": doc.get("k", []), "claims": doc.get("c", {}),
            "paid_out": [PaidOut(*p) for p in doc.get("o", [])], "others": [OtherSubsidy(*o) for o in doc.get("x", [])]}


def _from_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """A state written before the timeline (``STATE_VERSION`` 1): identities held then, by field
    position, and years whose fingerprint carried the policy id. Each held identity becomes a
    CERTIFIED fact of its start day; revocations and deaths already applied stay applied (the
    identities they ended are gone from a v1 state)."""
    facts = []
    for key, values in doc.get("h", {}).items():
        held = dict(zip(_V1_HELD, values, strict=False))
        facts.append(Fact(event_id=f"v1:{key}", source=held["source"], category=held["category"], change=Change.CERTIFIED,
                          region_code=held["region_code"], effective=dt.date.fromisoformat(held["effective"]),
                          recorded_ms=int(held["occurred_ms"]), is_student=bool(held["is_student"])))
    years: dict[int, YearRecord] = {}
    for y, r in doc.get("y", {}).items():
        fingerprint = r.get("fingerprint", "")
        parts = fingerprint.split("|")
        if parts and parts[0] == "WITHDRAWN":
            r = {**r, "fingerprint": "WITHDRAWN", "policy_id": parts[-1] if len(parts) > 1 else ""}
        elif len(parts) == 8:  # category|funding|level|premium|subsidy|payable|mode|policy_id
            r = {**r, "fingerprint": "|".join(parts[:7]), "policy_id": parts[7]}
        rec = YearRecord(**r)
        if rec.frozen:
            rec.paid = rec.figures().to_doc()
        _with_county(rec)
        years[int(y)] = rec
    return {"id_number": doc["i"], "name": doc["n"], "facts": facts, "years": years, "seen": doc.get("s", []),
            "waiting": [], "raised": []}


def _with_county(rec: YearRecord) -> YearRecord:
    """A v1/v2 year's fingerprint with the county and on-the-spot flag (v3), so that the upgrade
    itself sends tax no new version."""
    if rec.fingerprint and rec.fingerprint != "WITHDRAWN" and rec.fingerprint.count("|") == 6:
        rec.fingerprint += f"|{rec.region_code}|{int(rec.on_the_spot)}"
    return rec


def _from_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """A v2 state: frozen and superseded figures as positional lists; every restatement kept."""
    years: dict[int, YearRecord] = {}
    for y, r in doc["y"].items():
        r = dict(r)
        if r.get("paid"):
            r["paid"] = Figures.from_list(r["paid"]).to_doc()
        r["older"] = {v: Figures.from_list(f).to_doc() for v, f in r.get("older", {}).items()}
        years[int(y)] = _with_county(YearRecord(**r))
    facts: list[Fact] = []
    for fact in sorted((Fact.from_doc(f) for f in doc["f"]), key=recorded_key):
        record_fact(facts, fact)
    return {"id_number": doc["i"], "name": doc["n"], "facts": facts, "years": years, "seen": doc["s"],
            "waiting": doc.get("w", []), "raised": doc.get("k", [])}
