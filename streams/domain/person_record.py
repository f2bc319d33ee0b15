"""What is kept of a person, and the bookkeeping that makes each effect happen once.

The facts (the timeline), the issued versions per insurance year, the ack ids seen, the years
waiting for a policy, the cases raised once per person-year, the claims decided, the
instructions issued (each cause once) and other channels' subsidies. ``PersonState``
(``person.py``) adds the decisions; ``person_acks.py`` and ``person_money.py`` read and record
here too. Its bytes are ``state_codec.py``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.domain import state_codec
from streams.domain.enums import ReviewKind
from streams.domain.messages import ReviewRaised, case_id
from streams.domain.money import OtherSubsidy, PaidOut
from streams.domain.timeline import Fact, Spell, fold
from streams.domain.year import YearRecord

SEEN_LIMIT = 256  # ack ids (and a v1 state's event ids) remembered per person for redelivery


@dataclass
class PersonRecord:
    id_number: str
    name: str = ""
    facts: list[Fact] = field(default_factory=list)
    years: dict[int, YearRecord] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)  # years an identity counts for that have no policy yet
    raised: list[str] = field(default_factory=list)  # review cases raised once per person-year (code|year|what)
    claims: dict[str, list[object]] = field(default_factory=dict)  # claim id -> [kind, year, outcome] (rule 7)
    paid_out: list[PaidOut] = field(default_factory=list)  # instructions issued: each cause once
    others: list[OtherSubsidy] = field(default_factory=list)  # other channels' subsidies (rule 10)

    def dumps(self) -> bytes:
        return state_codec.encode(self)

    @property
    def identities(self) -> dict[str, Spell]:
        """The identities held now (open spells), by source/category."""
        return {s.key: s for s in fold(self.facts).spells if s.is_open}

    # -- each effect once ------------------------------------------------------
    def remember(self, fact_id: str) -> bool:
        """Record ``fact_id``; False when it was seen before (a redelivery)."""
        if fact_id in self.seen:
            return False
        self.seen.append(fact_id)
        if len(self.seen) > SEEN_LIMIT:
            del self.seen[: len(self.seen) - SEEN_LIMIT]
        return True

    def once(self, what: str) -> bool:
        """True the first time ``what`` (a case about a person-year) is raised."""
        if what in self.raised:
            return False
        self.raised.append(what)
        return True

    def review(self, trigger: str, kind: ReviewKind, year: int | None, code: str, detail: str, now_ms: int,
               amount_fen: int | None = None) -> ReviewRaised:
        return ReviewRaised(case_id=case_id(trigger, kind, year), kind=kind.value, id_number=self.id_number,
                            insurance_year=year, detail=detail, raised_at=now_ms, code=code, amount_fen=amount_fen)
