"""The .avsc files are the contract; the domain's enums and the department list must name the
same symbols in the same order (an enum is defined once in Python, and checked here against
every schema that uses it, history included)."""

from __future__ import annotations

from typing import Any

from schemas import load_history, load_schemas
from streams.domain import enums
from streams.domain.departments import DEPARTMENTS


def _named_enums(t: Any, found: dict[str, list[list[str]]]) -> None:
    if isinstance(t, list):
        for u in t:
            _named_enums(u, found)
    elif isinstance(t, dict):
        if t.get("type") == "enum":
            found.setdefault(t["name"], []).append(t["symbols"])
        for key in ("items", "fields", "type"):
            if key in t:
                _named_enums(t[key], found)


def _all_enums(schemas: list[Any]) -> dict[str, list[list[str]]]:
    found: dict[str, list[list[str]]] = {}
    for s in schemas:
        for f in s.raw["fields"]:
            _named_enums(f["type"], found)
    return found


def test_every_enum_of_the_contract_is_the_domains():
    found = _all_enums(list(load_schemas().values()))
    python = {name: [m.value for m in getattr(enums, name)] for name in found if name != "Source"}
    python["Source"] = [d.source for d in DEPARTMENTS]
    assert set(found) == {"Source", "Change", "Category", "LivingStatus", "PaymentMode", "FundingSource",
                          "PaymentState", "RejectionReason", "ReviewKind", "ControlKind", "ClaimKind", "Scheme",
                          "ClaimOutcome", "ClaimReason", "InstructionKind", "Channel", "SettlementKind",
                          "LedgerState"}
    for name, uses in found.items():
        for symbols in uses:
            assert symbols == python[name], name


def test_older_schema_versions_use_a_prefix_of_each_enum():
    """The contract changes only by adding: an old version's symbols are a prefix of today's."""
    current = {name: uses[0] for name, uses in _all_enums(list(load_schemas().values())).items()}
    for name, uses in _all_enums(load_history()).items():
        for symbols in uses:
            assert current[name][:len(symbols)] == symbols, name
