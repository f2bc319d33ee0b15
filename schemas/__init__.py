"""The contract: one ``.avsc`` per record (namespace ``zhucan.v1``), loaded once.

``load_schemas()`` is the only way in; nothing is parsed at import time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro
import fastavro.schema

SCHEMA_DIR = Path(__file__).resolve().parent
NAMESPACE = "zhucan.v1"


@dataclass(frozen=True)
class AvroSchema:
    """One writer/reader schema: its name, parsed form, canonical text and fingerprint."""

    name: str  # short record name, e.g. "IdentityEvent"
    raw: dict[str, Any]
    parsed: Any
    canonical: str
    fingerprint: bytes  # 8 bytes, CRC-64-AVRO, little-endian as in single-object encoding

    @property
    def full_name(self) -> str:
        return f"{self.raw.get('namespace', NAMESPACE)}.{self.name}"


def parse_schema(raw: dict[str, Any]) -> AvroSchema:
    """Parse one self-contained schema (each file defines its own enums)."""
    parsed = fastavro.parse_schema(raw, named_schemas={})
    canonical = fastavro.schema.to_parsing_canonical_form(parsed)
    fp = bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))
    return AvroSchema(name=raw["name"], raw=raw, parsed=parsed, canonical=canonical, fingerprint=fp)


@lru_cache(maxsize=8)
def load_schemas(directory: Path = SCHEMA_DIR) -> dict[str, AvroSchema]:
    """Every record of the contract by short name (``IdentityEvent`` -> schema); ``directory``
    only for tests that extend the contract (a fifth department)."""
    out: dict[str, AvroSchema] = {}
    for path in sorted(directory.glob("*.avsc")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        out[raw["name"]] = parse_schema(raw)
    return out


@lru_cache(maxsize=1)
def load_history() -> list[AvroSchema]:
    """Every schema version ever published and since changed (``schemas/history/<record>.v<N>.avsc``).

    The contract changes only by adding, so an old writer's bytes resolve against the current
    file; the codec reads them by their fingerprint (CONTRACT.md, "Additions, 2026-12")."""
    return [parse_schema(json.loads(path.read_text(encoding="utf-8")))
            for path in sorted((SCHEMA_DIR / "history").glob("*.avsc"))]


def schema_file_name(record_name: str) -> str:
    """``IdentityEvent`` -> ``identity_event.avsc`` (the contract's naming rule)."""
    snake = "".join("_" + c.lower() if c.isupper() else c for c in record_name).lstrip("_")
    return f"{snake}.avsc"
