"""One person as ``zhucan person`` shows them: the timeline, each year with its versions, payment
and basis, the review cases raised, the claims and the money paid out. Pure: from the state the
owning worker holds (``streams/runtime/query.py``). It carries the full ID number: the worker
answers only a caller that holds the deployment's secret, and the command masks it unless asked.
"""

from __future__ import annotations

from typing import Any

from streams.domain.ledger import lines_of
from streams.domain.person import PersonState
from streams.domain.timeline import fold


def person_view(state: PersonState) -> dict[str, Any]:
    timeline = fold(state.facts)
    lines = lines_of(state.years, state.paid_out)
    years = {}
    for year, rec in sorted(state.years.items()):
        versions = [{"version": int(v), **doc} for v, doc in sorted(rec.older.items(), key=lambda kv: int(kv[0]))]
        versions.append({"version": rec.version, **rec.figures().to_doc()})
        line = lines.get(year)
        years[str(year)] = {
            "ledger": line._asdict() if line is not None else None,
            "versions": versions,
            "payment": {"state": rec.payment or None, "paid_version": rec.paid_version or None, "paid_fen": rec.paid_fen,
                        "latest_ack": rec.last_ack or None, "refunded_fen": rec.refunded_fen,
                        "frozen_figures": rec.paid or None, "owed_fen": rec.owed_fen, "owed_kind": rec.owed_kind or None},
            "basis": rec.basis, "held": rec.held, "due": rec.due or None, "suspected_since": rec.suspected or None,
        }
    return {
        "id_number": state.id_number, "name": state.name,
        "timeline": [{"event_id": f.event_id, "source": f.source, "category": f.category, "change": f.change,
                      "region_code": f.region_code, "effective": f.effective.isoformat(), "recorded_ms": f.recorded_ms,
                      "living_status": f.living_status, "previous_category": f.previous_category}
                     for f in state.facts],
        "held_now": sorted(s.key for s in timeline.spells if s.is_open),
        "death": timeline.death.isoformat() if timeline.death else None,
        "years": years,
        "review_cases": list(state.raised),
        "waiting_years": list(state.waiting),
        "claims": {cid: {"kind": c[0], "year": c[1], "outcome": c[2]} for cid, c in state.claims.items()},
        "paid_out": [p._asdict() for p in state.paid_out],
        "other_channels": [o._asdict() for o in state.others],
    }
