"""``streams/_speedups.c`` (built by setup.py; ``schemas/native.py`` says whether it runs) in
front of the Python it shadows, which stays the source of the results:

- ``C.murmur2`` for ``py_murmur2`` (``streams/runtime/partitioning.py`` chooses);
- ``normalize_id``: the common case (a valid 18-character ID number) in C, anything else, and
  every problem's reason and text, from ``streams.domain.ids.normalize_id``. The domain stays
  Python only: the intake hands this to ``check_identity``.
"""

from __future__ import annotations

from schemas.native import load
from streams.domain import ids
from streams.domain.ids import IdProblem

C = load("streams._speedups")


def _normalize_id(raw: str) -> tuple[str | None, IdProblem | None]:
    id18 = C.id18(raw)  # type: ignore[union-attr]
    return (id18, None) if id18 is not None else ids.normalize_id(raw)


normalize_id = _normalize_id if C is not None else ids.normalize_id
