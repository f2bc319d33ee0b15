"""A person's state across departments and years, and how facts change it.

``PersonState.apply_identity`` / ``apply_payment`` are pure: they take a fact and
the policies and return the effects (fee standards to publish, review cases).
Idempotence lives here: a seen event or ack id yields nothing; a standard is
re-issued only as a new version when the decision changed; a frozen year
(PAID, ZERO_DECLARED, ALREADY_PAID) never changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from streams.domain.categories import (
    FREEZING_STATES,
    Category,
    Change,
    FundingSource,
    PaymentMode,
    PaymentState,
    ReviewKind,
    Source,
)
from streams.domain.decision import Decision, Held, assign_year, decide, yuan
from streams.domain.exceptions import NoPolicy
from streams.domain.ids import mask_id
from streams.domain.policy import PolicyBook
from streams.domain.validation import Identity

SEEN_LIMIT = 256  # event and ack ids remembered per person for redelivery


@dataclass
class HeldIdentity:
    source: str
    category: str
    region_code: str
    effective: str  # ISO date
    occurred_ms: int
    is_student: bool
    first_year: int  # the first insurance year it counts for
    on_the_spot: bool  # that first year was reached outside the window


@dataclass
class YearRecord:
    version: int = 0
    fingerprint: str = ""
    mode: str = ""
    category: str = ""
    funding_source: str = ""
    level: int = 1
    premium_fen: int = 0
    subsidy_fen: int = 0
    payable_fen: int = 0
    region_code: str = ""
    on_the_spot: bool = False
    payment: str = ""  # last PaymentState seen for this year
    paid_version: int = 0
    paid_fen: int = 0

    @property
    def frozen(self) -> bool:
        return self.payment in FREEZING_STATES


@dataclass
class FeeStandardIssued:
    message_id: str
    id_number: str
    name: str
    region_code: str
    insurance_year: int
    version: int
    contribution_level: int
    premium_fen: int
    subsidy_fen: int
    payable_fen: int
    payment_mode: str
    on_the_spot: bool
    category: str
    funding_source: str
    policy_id: str
    basis: str
    issued_at: int  # epoch ms

    def to_record(self) -> dict[str, Any]:
        rec = dict(self.__dict__)
        rec["issued_at"] = dt.datetime.fromtimestamp(self.issued_at / 1000, tz=dt.UTC)
        return rec


@dataclass
class ReviewRaised:
    case_id: str
    kind: str
    id_number: str
    insurance_year: int | None
    detail: str
    raised_at: int

    def to_record(self) -> dict[str, Any]:
        rec = dict(self.__dict__)
        rec["raised_at"] = dt.datetime.fromtimestamp(self.raised_at / 1000, tz=dt.UTC)
        return rec


Effect = FeeStandardIssued | ReviewRaised


def _case_id(trigger: str, kind: ReviewKind, year: int | None) -> str:
    return hashlib.sha256(f"{trigger}|{kind}|{year}".encode()).hexdigest()[:24]


def _ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


@dataclass
class PersonState:
    id_number: str
    name: str = ""
    identities: dict[str, HeldIdentity] = field(default_factory=dict)
    years: dict[int, YearRecord] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    deceased: bool = False

    # -- persistence ---------------------------------------------------------
    def dumps(self) -> bytes:
        doc = {
            "i": self.id_number,
            "n": self.name,
            "h": {k: list(v.__dict__.values()) for k, v in self.identities.items()},
            "y": {str(y): {k: v for k, v in r.__dict__.items() if v != getattr(_EMPTY_YEAR, k)} for y, r in self.years.items()},
            "s": self.seen,
            "d": self.deceased,
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def loads(cls, data: bytes) -> PersonState:
        doc = json.loads(data)
        return cls(
            id_number=doc["i"],
            name=doc["n"],
            identities={k: HeldIdentity(*v) for k, v in doc["h"].items()},
            years={int(y): YearRecord(**r) for y, r in doc["y"].items()},
            seen=doc["s"],
            deceased=doc["d"],
        )

    # -- helpers -------------------------------------------------------------
    def _remember(self, fact_id: str) -> bool:
        """Record ``fact_id``; False when it was seen before (a redelivery)."""
        if fact_id in self.seen:
            return False
        self.seen.append(fact_id)
        if len(self.seen) > SEEN_LIMIT:
            del self.seen[: len(self.seen) - SEEN_LIMIT]
        return True

    def _region(self) -> str | None:
        """The person's certifying region: that of the most recently started identity."""
        if not self.identities:
            return None
        latest = max(self.identities.values(), key=lambda h: (h.effective, h.occurred_ms))
        return latest.region_code

    def _decide_year(self, year: int, book: PolicyBook) -> tuple[Decision | None, str, bool]:
        held = [h for h in self.identities.values() if h.first_year <= year]
        region = self._region() or ""
        if not held:
            return None, region, False
        policy = book.lookup(region, year)
        decision = decide([Held(Category(h.category), h.is_student) for h in held], policy)
        on_the_spot = all(h.first_year == year and h.on_the_spot for h in held)
        return decision, region, on_the_spot

    def _issue(self, year: int, rec: YearRecord, decision: Decision | None, region: str, on_the_spot: bool,
               person_key: str, now_ms: int, why_withdrawn: str) -> FeeStandardIssued | None:
        if decision is None:
            if rec.version == 0 or rec.mode == PaymentMode.WITHDRAWN:
                return None  # nothing was ever issued, or already withdrawn
            premium = rec.premium_fen  # the ordinary premium of the level last decided
            fields = dict(mode=PaymentMode.WITHDRAWN.value, category=rec.category, funding_source=rec.funding_source,
                          level=rec.level, premium_fen=premium, subsidy_fen=0, payable_fen=premium)
            policy_id = rec.fingerprint.split("|")[-1] if rec.fingerprint else ""
            basis = f"{why_withdrawn}; 不再资助, 按普通居民缴费 {yuan(premium)}"
            fingerprint = f"WITHDRAWN|{policy_id}"
        else:
            fields = dict(mode=decision.payment_mode.value, category=decision.category.value,
                          funding_source=decision.funding_source.value, level=decision.contribution_level,
                          premium_fen=decision.premium_fen, subsidy_fen=decision.subsidy_fen,
                          payable_fen=decision.payable_fen)
            policy_id, basis = decision.policy_id, decision.basis
            fingerprint = "|".join(str(x) for x in decision.fingerprint())
            if on_the_spot:
                basis += "; 集中缴费期外新增, 随参随缴"
        if fingerprint == rec.fingerprint:
            return None
        rec.version += 1
        rec.fingerprint = fingerprint
        rec.mode = str(fields["mode"])
        rec.category = str(fields["category"])
        rec.funding_source = str(fields["funding_source"])
        rec.level = int(fields["level"])  # type: ignore[call-overload]
        rec.premium_fen = int(fields["premium_fen"])  # type: ignore[call-overload]
        rec.subsidy_fen = int(fields["subsidy_fen"])  # type: ignore[call-overload]
        rec.payable_fen = int(fields["payable_fen"])  # type: ignore[call-overload]
        rec.region_code = region or rec.region_code
        rec.on_the_spot = on_the_spot if decision is not None else rec.on_the_spot
        return FeeStandardIssued(
            message_id=f"{person_key[:32]}-{year}-v{rec.version}",
            id_number=self.id_number,
            name=self.name,
            region_code=rec.region_code,
            insurance_year=year,
            version=rec.version,
            contribution_level=rec.level,
            premium_fen=rec.premium_fen,
            subsidy_fen=rec.subsidy_fen,
            payable_fen=rec.payable_fen,
            payment_mode=rec.mode,
            on_the_spot=rec.on_the_spot,
            category=rec.category or Category.MINIMUM_LIVING.value,
            funding_source=rec.funding_source or FundingSource.OTHER.value,
            policy_id=policy_id,
            basis=basis,
            issued_at=now_ms,
        )

    # -- facts ---------------------------------------------------------------
    def apply_identity(self, ev: Identity, book: PolicyBook, person_key: str, now_ms: int) -> list[Effect]:
        if not self._remember(ev.event_id):
            return []
        effects: list[Effect] = []
        if self.name and ev.name != self.name:
            effects.append(ReviewRaised(
                case_id=_case_id(ev.event_id, ReviewKind.NAME_CONFLICT, None),
                kind=ReviewKind.NAME_CONFLICT.value, id_number=self.id_number, insurance_year=None,
                detail=f"id {mask_id(self.id_number)}: name from {ev.source} differs from the name on record; "
                       f"the latest name is used until a person resolves it",
                raised_at=now_ms,
            ))
        self.name = ev.name
        key = f"{ev.source}/{ev.category}"
        occurred = _ms(ev.occurred_at)
        current = self.identities.get(key)
        if current is not None and current.occurred_ms > occurred:
            return effects  # stale: the department has since recorded a newer change
        target_years: set[int] = set()
        why = ""
        if ev.change in (Change.CERTIFIED, Change.UPDATED):
            try:
                assignment = assign_year(book, ev.region_code, ev.effective_date)
            except NoPolicy as exc:
                effects.append(ReviewRaised(
                    case_id=_case_id(ev.event_id, ReviewKind.OTHER, exc.year),
                    kind=ReviewKind.OTHER.value, id_number=self.id_number, insurance_year=exc.year,
                    detail=f"NO_POLICY: {exc}; no fee standard issued for {ev.category} from {ev.source}",
                    raised_at=now_ms,
                ))
                return effects
            if ev.change is Change.UPDATED:
                for k in [k for k, h in self.identities.items() if h.source == ev.source]:
                    del self.identities[k]
            self.identities[key] = HeldIdentity(
                source=ev.source.value, category=ev.category.value, region_code=ev.region_code,
                effective=ev.effective_date.isoformat(), occurred_ms=occurred, is_student=ev.is_student,
                first_year=assignment.year, on_the_spot=assignment.on_the_spot,
            )
            self.deceased = False
            target_years.add(assignment.year)
        elif ev.change is Change.REVOKED:
            self.identities.pop(key, None)
            why = f"{ev.source} 撤销 {ev.category} ({ev.effective_date})"
        else:  # DECEASED
            self.identities.clear()
            self.deceased = True
            why = f"死亡核减 ({ev.effective_date})"
        target_years |= {y for y, r in self.years.items() if not r.frozen}
        for year in sorted(target_years):
            rec = self.years.get(year) or YearRecord()
            if rec.frozen:
                continue  # paid: later changes count for the next year only
            try:
                decision, region, on_the_spot = self._decide_year(year, book)
            except NoPolicy as exc:
                effects.append(ReviewRaised(
                    case_id=_case_id(ev.event_id, ReviewKind.OTHER, year),
                    kind=ReviewKind.OTHER.value, id_number=self.id_number, insurance_year=year,
                    detail=f"NO_POLICY: {exc}", raised_at=now_ms,
                ))
                continue
            issued = self._issue(year, rec, decision, region, on_the_spot, person_key, now_ms,
                                 why or "剩余身份不在本地资助范围")
            if rec.version:
                self.years[year] = rec
            if issued is not None:
                effects.append(issued)
        return effects

    def apply_payment(self, ack: dict[str, Any], now_ms: int) -> list[Effect]:
        """Apply a tax acknowledgement (decoded PaymentStatus)."""
        ack_id = str(ack["ack_id"])
        if not self._remember("ack:" + ack_id):
            return []
        year = int(ack["insurance_year"])
        status = PaymentState(ack["status"])
        rec = self.years.get(year)
        masked = mask_id(self.id_number)
        if rec is None:
            return [unknown_payment(ack, now_ms, f"no fee standard was issued for id {masked} year {year}")]
        effects: list[Effect] = []
        version = int(ack["fee_version"])
        amount = int(ack["amount_fen"])
        if version != rec.version:
            effects.append(ReviewRaised(
                case_id=_case_id(ack_id, ReviewKind.PAYMENT_MISMATCH, year), kind=ReviewKind.PAYMENT_MISMATCH.value,
                id_number=self.id_number, insurance_year=year,
                detail=f"ack {ack_id} ({status}) acts on version {version}, current version is {rec.version}",
                raised_at=now_ms,
            ))
        elif status in (PaymentState.PAID, PaymentState.ZERO_DECLARED) and amount != rec.payable_fen:
            effects.append(ReviewRaised(
                case_id=_case_id(ack_id, ReviewKind.PAYMENT_MISMATCH, year), kind=ReviewKind.PAYMENT_MISMATCH.value,
                id_number=self.id_number, insurance_year=year,
                detail=f"ack {ack_id} ({status}) amount {yuan(amount)} differs from payable {yuan(rec.payable_fen)} of version {rec.version}",
                raised_at=now_ms,
            ))
        if rec.frozen and status in FREEZING_STATES:
            return effects  # already frozen by an earlier ack
        rec.payment = status.value
        if status in FREEZING_STATES:
            rec.paid_version = version
            rec.paid_fen = amount
        return effects


_EMPTY_YEAR = YearRecord()


def unknown_payment(ack: dict[str, Any], now_ms: int, detail: str) -> ReviewRaised:
    year = int(ack["insurance_year"])
    return ReviewRaised(
        case_id=_case_id(str(ack["ack_id"]), ReviewKind.UNKNOWN_PAYMENT, year),
        kind=ReviewKind.UNKNOWN_PAYMENT.value, id_number=str(ack["id_number"]), insurance_year=year,
        detail=f"ack {ack['ack_id']} ({ack['status']}): {detail}", raised_at=now_ms,
    )


__all__ = ["PersonState", "FeeStandardIssued", "ReviewRaised", "Effect", "unknown_payment", "Source"]
