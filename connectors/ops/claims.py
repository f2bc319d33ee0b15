"""The claims' register (zhucan claims list|show): each claim's one decision
(subsidy-claim.decided.v1) with the instruction that paid it (payment-instruction.v1, by
``cause_id``). ID numbers are masked wherever they are printed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from connectors.kafka_io import read_to_end
from schemas.codec import Codec
from schemas.exceptions import DecodeError
from streams.domain.ids import mask_id
from streams.settings import Settings


@dataclass
class ClaimRow:
    decision: dict[str, Any]
    instruction: dict[str, Any] | None

    @property
    def claim_id(self) -> str:
        return str(self.decision["claim_id"])

    def as_dict(self) -> dict[str, Any]:
        """For --json: the records as published, ID numbers masked, times in ISO."""
        d = {**self.decision, "id_number": mask_id(self.decision["id_number"]),
             "decided_at": str(self.decision["decided_at"])}
        i = None
        if self.instruction is not None:
            i = {**self.instruction, "id_number": mask_id(self.instruction["id_number"]),
                 "issued_at": str(self.instruction["issued_at"])}
        return {"decision": d, "instruction": i}


def _records(settings: Settings, topic: str, record: str) -> list[dict[str, Any]]:
    codec = Codec()
    out = []
    for rec in read_to_end(settings.kafka_bootstrap_servers, topic):
        try:
            out.append(codec.decode(rec.value, expect=record)[1])
        except DecodeError:
            continue
    return out


def claim_rows(settings: Settings, year: int | None = None, outcome: str | None = None) -> list[ClaimRow]:
    """Every decided claim (the first decision of each claim id: there is one), oldest first."""
    paid = {i["cause_id"]: i for i in _records(settings, settings.topics.instructions, "PaymentInstruction")}
    rows: dict[str, ClaimRow] = {}
    for d in _records(settings, settings.topics.claim_decisions, "ClaimDecision"):
        if (year and d["insurance_year"] != year) or (outcome and d["outcome"] != outcome):
            continue
        rows.setdefault(d["claim_id"], ClaimRow(d, paid.get(d["claim_id"])))
    return list(rows.values())


def outcomes(rows: list[ClaimRow]) -> dict[str, int]:
    """Claims per outcome (the dashboard's counts)."""
    return dict(Counter(r.decision["outcome"] for r in rows))


def describe(row: ClaimRow) -> str:
    d, i = row.decision, row.instruction
    lines = [f"claim {d['claim_id']}: {d['outcome']} {', '.join(d['reasons']) or ''} {d.get('code') or ''}".rstrip(),
             f"  person {mask_id(d['id_number'])} year {d['insurance_year']} amount {d['amount_fen']} fen "
             f"policy {d['policy_id'] or '-'} decided {d['decided_at']}",
             f"  basis: {d['basis']}"]
    if i is not None:
        lines.append(f"  instruction {i['instruction_id']} {i['kind']} {i['amount_fen']} fen via {i['channel']}"
                     f"{' + SMS' if i['notify_sms'] else ''}, paid by {i['region_code']} ({i['funding_source']})")
    return "\n".join(lines)
