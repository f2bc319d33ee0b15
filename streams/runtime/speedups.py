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
from schemas.fast_writer import flat_fields
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


# The IdentityEvent the C reads: its fields in order as ``flat_fields`` gives them (name, kind,
# index of null in a union or -1). Another layout (a later schema) leaves the Python to it.
IDENTITY_LAYOUT = (("event_id", "string", -1), ("source", "enum", -1), ("change", "enum", -1),
                   ("id_number", "string", -1), ("name", "string", -1), ("category", "enum", -1),
                   ("region_code", "string", -1), ("effective_date", "date", -1),
                   ("occurred_at", "timestamp-millis", -1), ("is_student", "boolean", -1),
                   ("previous_category", "enum", 0), ("person_number", "string", 0), ("living_status", "enum", 0))


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
        fields = flat_fields(schema.raw) if schema is not None else None
        if C is None or schema is None or fields is None or tuple(f[:3] for f in fields) != IDENTITY_LAYOUT:
            return None
        symbols = {name: tuple(detail) for name, kind, _, detail in fields if kind == "enum"}  # in the schema's order
        sources = symbols["source"]
        held = {m.value: m for m in Category}
        categories = [held.get(c) for c in symbols["category"]]
        known = {"change": {m.value for m in Change}, "living_status": {m.value for m in LivingStatus}}
        changes, living = (tuple(c if c in known[f] else None for c in symbols[f]) for f in known)
        reporters = tuple(sum(1 << i for i, s in enumerate(sources) if c is not None and departments.reports(s, c))
                          for c in categories)
        shape = C.identity_shape(SINGLE_OBJECT_MAGIC + schema.fingerprint, sources, changes,  # type: ignore[union-attr]
                                 tuple(c.value if c else None for c in categories), living, reporters)
        return cls(shape, {s: i for i, s in enumerate(sources)})

    def command(self, data: bytes, source: str) -> tuple[str, bytes] | None:
        """(normalised ID number, command) of department ``source``'s record ``data``, or None."""
        index = self.sources.get(source)
        return None if index is None else C.identity_command(self.shape, data, index)  # type: ignore[union-attr]
