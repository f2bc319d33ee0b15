"""Avro bodies of the contract's flat records, written by code generated from their schemas.

``fastavro.schemaless_writer`` is generic: per record it resolves each union by trying its
branches, finds an enum symbol by searching the list, and writes through a buffer object. The
person stage writes two records per event (the fee standard and the ledger line), and that was
about a tenth of its time (issue #25). ``compile_writer`` turns a record schema whose fields
are primitives, enums, the ``date`` and ``timestamp-millis`` logical types and unions of
``null`` with one of those into one Python function that appends each field's bytes to a list.

The fast function takes only what it knows for sure: a value of another type (a ``datetime``
for a timestamp, a ``bool`` for an int, a missing field, an int out of range, a symbol not in
the enum) raises ``Slow``, and the caller writes the record with fastavro as before, which
encodes it or raises its own error. So the bytes are fastavro's in every case (tested on
every schema of the contract with random records, ``tests/unit/schemas/test_fast_writer.py``),
and a schema with any other type (arrays, maps, nested records) gets no fast writer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from schemas.native import load

DAYS_SHIFT = dt.date(1970, 1, 1).toordinal()
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
_SMALL = [bytes([n << 1]) for n in range(64)]  # zigzag varints of 0..63: one byte each


class Slow(Exception):
    """This record is not one the fast writer is sure of: write it with fastavro."""


def _long(n: int) -> bytes:
    """Zigzag varint of a 64-bit ``n`` (Avro int and long)."""
    z = (n << 1) ^ (n >> 63)
    if z < 128:
        return bytes((z,))
    out = bytearray()
    while z >= 128:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_KNOWN: dict[int, bytes] = {n: _SMALL[n] for n in range(64)}
KNOWN_MAX = 4096  # distinct numbers kept; a timestamp (above 2**31) is never kept


def _know(n: int) -> bytes:
    """``_long(n)``, kept for the next record when ``n`` is a number that repeats."""
    b = _long(n)
    if -(2**31) < n < 2**31 and len(_KNOWN) < KNOWN_MAX:
        _KNOWN[n] = b
    return b


def avro_long(n: int) -> bytes:
    """An Avro int or long's bytes (a zigzag varint), small and repeating ones kept."""
    return _KNOWN.get(n) or _know(n)


_TIME: list[Any] = [None, b""]  # the last time written by ``avro_time``, and its bytes


def avro_time(ms: int) -> bytes:
    """``avro_long`` of a time in epoch milliseconds, the last one kept: the records of a take
    share the clock's millisecond (the templates' stamps: the ledger line's, the fee standard's)."""
    if ms != _TIME[0]:
        _TIME[0], _TIME[1] = ms, _long(ms)
    return _TIME[1]  # type: ignore[no-any-return]


def avro_string(s: str) -> bytes:
    """An Avro string's bytes: its UTF-8 length, then its UTF-8."""
    data = s.encode()
    return avro_long(len(data)) + data


def _date(value: Any) -> int:
    """fastavro's ``date``: a date (not a datetime), an ISO string, or the day number."""
    if type(value) is dt.date:
        return value.toordinal() - DAYS_SHIFT
    if type(value) is str:
        try:
            return dt.date.fromisoformat(value).toordinal() - DAYS_SHIFT
        except ValueError:
            raise Slow from None
    if type(value) is int:
        return value
    raise Slow


def _branch(t: Any) -> tuple[str, Any] | None:
    """A field type the generator writes: (kind, detail), or None."""
    if isinstance(t, str):
        return (t, None) if t in ("string", "int", "long", "boolean") else None
    if isinstance(t, dict):
        kind, logical = t.get("type"), t.get("logicalType")
        if kind == "enum":
            return ("enum", {s: _long(i) for i, s in enumerate(t["symbols"])})
        if kind == "int" and logical == "date":
            return ("date", None)
        if kind == "long" and logical == "timestamp-millis":
            return ("timestamp-millis", None)  # written as a long: an int only; a datetime goes to fastavro (Slow)
        if kind in ("string", "int", "long", "boolean") and logical is None:
            return (kind, None)
    return None


def _write(kind: str, var: str, const: str, lines: list[str], indent: str) -> None:
    """Source that appends the bytes of ``var`` (of ``kind``) to ``out``."""
    if kind == "string":
        lines += [f"{indent}if not isinstance({var}, str): raise Slow",  # a StrEnum member writes its value
                  f"{indent}b = {var}.encode()",
                  f"{indent}n = len(b)",
                  f"{indent}out.append(SMALL[n] if n < 64 else LONG(n))",
                  f"{indent}out.append(b)"]
    elif kind in ("int", "long", "timestamp-millis"):
        lo, hi = ("INT_MIN", "INT_MAX") if kind == "int" else ("LONG_MIN", "LONG_MAX")
        lines += [f"{indent}if type({var}) is not int or not {lo} <= {var} <= {hi}: raise Slow",
                  f"{indent}b = KNOWN.get({var})",  # amounts, years and versions repeat: their bytes once
                  f"{indent}out.append(b if b is not None else KNOW({var}))"]
    elif kind == "date":
        lines += [f"{indent}d = DATE({var})",
                  f"{indent}if not INT_MIN <= d <= INT_MAX: raise Slow",
                  f"{indent}b = KNOWN.get(d)",
                  f"{indent}out.append(b if b is not None else KNOW(d))"]
    elif kind == "boolean":
        lines += [f"{indent}if {var} is True: out.append(b'\\x01')",
                  f"{indent}elif {var} is False: out.append(b'\\x00')",
                  f"{indent}else: raise Slow"]
    elif kind == "enum":
        lines += [f"{indent}e = {const}.get({var}) if isinstance({var}, str) else None",
                  f"{indent}if e is None: raise Slow",
                  f"{indent}out.append(e)"]
    else:  # pragma: no cover - _branch admits nothing else
        raise AssertionError(kind)


Field = tuple[str, str, int, Any]  # (name, kind, index of null in its union or -1, the enum's {symbol: bytes})


def flat_fields(raw: dict[str, Any]) -> list[Field] | None:
    """The fields of record schema ``raw`` (as written in ``schemas/``, named types inlined
    where first used), or None when one has a type the fast paths do not handle."""
    if raw.get("type") != "record":
        return None
    named: dict[str, Any] = {}
    namespace = raw.get("namespace", "")
    fields: list[Field] = []
    for f in raw["fields"]:
        t, null_at = f["type"], -1
        if isinstance(t, list):  # a union: null and one other branch
            if len(t) != 2 or "null" not in t:
                return None
            null_at = t.index("null")
            t = t[1 - null_at]
        branch = _branch(named.get(t, t) if isinstance(t, str) else t)
        if branch is None:
            return None
        _remember(t, named, namespace)
        fields.append((f["name"], branch[0], null_at, branch[1]))
    return fields


def compile_writer(raw: dict[str, Any]) -> Callable[[dict[str, Any]], bytes] | None:
    """The fast writer of record schema ``raw``, or None when a field's type is not one it writes."""
    fields = flat_fields(raw)
    if fields is None:
        return None
    lines = ["def write(record):", "    out = []", "    get = record.get"]
    consts: dict[str, Any] = {}
    for i, (name, kind, null_at, detail) in enumerate(fields):
        var = f"v{i}"
        lines.append(f"    {var} = get({name!r}, MISSING)")
        lines.append(f"    if {var} is MISSING: raise Slow")
        indent = "    "
        if null_at >= 0:
            lines.append(f"    if {var} is None: out.append({_long(null_at)!r})")
            lines.append("    else:")
            lines.append(f"        out.append({_long(1 - null_at)!r})")
            indent = "        "
        consts[f"E{i}"] = detail
        _write(kind, var, f"E{i}", lines, indent)
    lines.append("    return b''.join(out)")
    scope: dict[str, Any] = {"Slow": Slow, "SMALL": _SMALL, "LONG": _long, "KNOWN": _KNOWN, "KNOW": _know,
                             "DATE": _date, "MISSING": _MISSING,
                             "INT_MIN": INT_MIN, "INT_MAX": INT_MAX, "LONG_MIN": LONG_MIN, "LONG_MAX": LONG_MAX,
                             **consts}
    exec(compile("\n".join(lines), f"<fast writer of {raw.get('name')}>", "exec"), scope)  # noqa: S102
    return scope["write"]  # type: ignore[no-any-return]


_KINDS = ("string", "int", "long", "boolean", "enum", "date", "timestamp-millis")  # schemas/_flat.c's order


def compile_flat(raw: dict[str, Any]) -> Any | None:
    """The C reader and writer of record schema ``raw`` (``schemas._flat.Flat``: returns
    fastavro's value or bytes, or None for fastavro to do it), or None when the schema is not
    flat or the C is not built (``schemas/native.py``)."""
    fields = flat_fields(raw)
    flat = load("schemas._flat")
    if fields is None or flat is None:
        return None
    return flat.Flat([(name, _KINDS.index(kind), null_at, tuple(detail) if kind == "enum" else None)
                      for name, kind, null_at, detail in fields])


_MISSING = object()


def _remember(t: Any, named: dict[str, Any], namespace: str) -> None:
    """A named type defined inline (an enum) is referred to by its name later in the schema,
    short or full (its own namespace, else the record's)."""
    if isinstance(t, dict) and "name" in t:
        named[t["name"]] = t
        named[f"{t.get('namespace', namespace)}.{t['name']}"] = t
