"""``streams/_speedups.c`` (built by setup.py; ``schemas/native.py`` says whether it runs) in
front of the Python it shadows, which stays the source of the results:

- ``C.murmur2`` for ``py_murmur2`` (``streams/runtime/partitioning.py`` chooses);
- ``normalize_id``: the common case (a valid 18-character ID number) in C, anything else, and
  every problem's reason and text, from ``streams.domain.ids.normalize_id``. The domain stays
  Python only: the intake hands this to ``check_identity``.
- ``IdentityCommands``: the intake's common record in one call: a department's IdentityEvent
  (the current schema, single-object encoded) that passes every check of ``validate_identity``
  and carries no previous category, as the normalised ID number and ``wire.pack_identity``'s
  command; None for any other record, which the Python then decodes, checks and rejects with
  every reason.
"""

from __future__ import annotations

from typing import Any

from schemas.codec import SINGLE_OBJECT_MAGIC, Codec
from schemas.native import load
from streams.domain import ids
from streams.domain.departments import Departments
from streams.domain.enums import Category, Change, LivingStatus
from streams.domain.ids import IdProblem

C = load("streams._speedups")


def _normalize_id(raw: str) -> tuple[str | None, IdProblem | None]:
    id18 = C.id18(raw)  # type: ignore[union-attr]
    return (id18, None) if id18 is not None else ids.normalize_id(raw)


normalize_id = _normalize_id if C is not None else ids.normalize_id


# The IdentityEvent the C reads: its fields in order, each as (name, type) with an enum's type
# "enum" and a union's "null|<type>". Another layout (a later schema) leaves the Python to it.
IDENTITY_LAYOUT = (("event_id", "string"), ("source", "enum"), ("change", "enum"), ("id_number", "string"),
                   ("name", "string"), ("category", "enum"), ("region_code", "string"),
                   ("effective_date", "int:date"), ("occurred_at", "long:timestamp-millis"),
                   ("is_student", "boolean"), ("previous_category", "null|Category"),
                   ("person_number", "null|string"), ("living_status", "null|enum"))


def _type_of(t: Any) -> str:
    if isinstance(t, list):
        return "|".join(_type_of(b) for b in t)
    if isinstance(t, dict):
        return f"{t['type']}:{t['logicalType']}" if "logicalType" in t else str(t["type"])
    return str(t)


def _symbols(raw: dict[str, Any], field: str) -> tuple[str, ...]:
    (t,) = [f["type"] for f in raw["fields"] if f["name"] == field]
    enum = next(b for b in t if isinstance(b, dict)) if isinstance(t, list) else t
    return tuple(enum["symbols"])


class IdentityCommands:
    """``streams/_speedups.c``'s ``identity_command`` for one codec's IdentityEvent and one
    department list (the intake's ``ctx``)."""

    def __init__(self, shape: Any, sources: dict[str, int]) -> None:
        self.shape = shape
        self.sources = sources

    @classmethod
    def of(cls, codec: Codec, departments: Departments) -> IdentityCommands | None:
        """None where the C is not built or the IdentityEvent is not the layout it reads."""
        schema = codec.schemas.get("IdentityEvent")
        if C is None or schema is None or tuple(
                (f["name"], _type_of(f["type"])) for f in schema.raw["fields"]) != IDENTITY_LAYOUT:
            return None
        sources = _symbols(schema.raw, "source")
        held = {m.value: m for m in Category}
        categories = [held.get(c) for c in _symbols(schema.raw, "category")]
        known = {"change": {m.value for m in Change}, "living_status": {m.value for m in LivingStatus}}
        changes, living = (tuple(c if c in known[f] else None for c in _symbols(schema.raw, f)) for f in known)
        reporters = tuple(sum(1 << i for i, s in enumerate(sources) if c is not None and departments.reports(s, c))
                          for c in categories)
        shape = C.identity_shape(SINGLE_OBJECT_MAGIC + schema.fingerprint, sources, changes,  # type: ignore[union-attr]
                                 tuple(c.value if c else None for c in categories), living, reporters)
        return cls(shape, {s: i for i, s in enumerate(sources)})

    def command(self, data: bytes, source: str) -> tuple[str, bytes] | None:
        """(normalised ID number, command) of department ``source``'s record ``data``, or None."""
        index = self.sources.get(source)
        return None if index is None else C.identity_command(self.shape, data, index)  # type: ignore[union-attr]
