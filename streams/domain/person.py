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
from dataclasses import dataclass, field
from typing import Any

import orjson  # the state's JSON, written and read once per command: ~5x faster than json

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
from streams.domain.validation import CATEGORIES, Identity

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
    payment: str = ""  # the freezing PaymentState (PAID, ZERO_DECLARED, ALREADY_PAID), set once
    paid_version: int = 0
    paid_fen: int = 0
    last_ack: str = ""  # the latest PaymentState seen (REJECTED and REFUNDED included)
    refunded_fen: int = 0
    due: str = ""  # ISO date after which (plus a grace) no payment makes the person suspected un-enrolled

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
        return dict(self.__dict__)  # issued_at in epoch ms, as Avro's timestamp-millis carries it


@dataclass
class ReviewRaised:
    case_id: str
    kind: str
    id_number: str
    insurance_year: int | None
    detail: str
    raised_at: int
    code: str = ""  # machine-readable sub-kind: NO_POLICY, POST_HOC_SUBSIDY, DUPLICATE_ACK_ID...
    amount_fen: int | None = None  # money the case is about (a refund or post-hoc subsidy)

    def to_record(self) -> dict[str, Any]:
        return dict(self.__dict__)  # raised_at in epoch ms, as Avro's timestamp-millis carries it


@dataclass
class SuspectedFound:
    """A person with a live standard and no payment after the window (疑似未参保)."""

    id_number: str
    name: str
    region_code: str
    insurance_year: int
    fee_version: int
    since: dt.date
    reason: str

    def to_record(self) -> dict[str, Any]:
        return dict(self.__dict__)


Effect = FeeStandardIssued | ReviewRaised | SuspectedFound


def region_matches(person_region: str, region: str) -> bool:
    """Whether a person's county lies in ``region`` (a county, a city XXXX00 or a province XX0000)."""
    if region.endswith("0000"):
        return person_region[:2] == region[:2]
    if region.endswith("00"):
        return person_region[:4] == region[:4]
    return person_region == region


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
    ended: dict[str, int] = field(default_factory=dict)  # identity key -> occurred_ms of its REVOKED/DECEASED

    # -- persistence ---------------------------------------------------------
    def dumps(self) -> bytes:
        doc = {
            "i": self.id_number,
            "n": self.name,
            "h": {k: list(v.__dict__.values()) for k, v in self.identities.items()},
            "y": {str(y): {k: v for k, v in r.__dict__.items() if _EMPTY_YEAR_FIELDS[k] != v} for y, r in self.years.items()},
            "s": self.seen,
            "d": self.deceased,
            "e": self.ended,
        }
        return orjson.dumps(doc)  # compact UTF-8 JSON, the same bytes json.dumps(separators=(",", ":")) gives

    @classmethod
    def loads(cls, data: bytes) -> PersonState:
        doc = orjson.loads(data)
        return cls(
            id_number=doc["i"],
            name=doc["n"],
            identities={k: HeldIdentity(*v) for k, v in doc["h"].items()},
            years={int(y): YearRecord(**r) for y, r in doc["y"].items()},
            seen=doc["s"],
            deceased=doc["d"],
            ended=doc.get("e", {}),
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
        decision = decide([Held(CATEGORIES[h.category], h.is_student) for h in held], policy)
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
            fingerprint = decision.fingerprint_text
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
    def _redecide(self, year: int, book: PolicyBook, person_key: str, now_ms: int, trigger: str, why: str,
                  due_if_spot: dt.date | None) -> list[Effect]:
        """Decide ``year`` again and issue a version when the decision changed (never for a frozen year)."""
        rec = self.years.get(year) or YearRecord()
        if rec.frozen:
            return []  # paid: later changes count for the next year only
        try:
            decision, region, on_the_spot = self._decide_year(year, book)
        except NoPolicy as exc:
            return [ReviewRaised(
                case_id=_case_id(trigger, ReviewKind.OTHER, year), kind=ReviewKind.OTHER.value,
                id_number=self.id_number, insurance_year=year, detail=f"NO_POLICY: {exc}", raised_at=now_ms,
                code="NO_POLICY",
            )]
        issued = self._issue(year, rec, decision, region, on_the_spot, person_key, now_ms,
                             why or "剩余身份不在本地资助范围")
        if issued is not None and not rec.due:
            window_end = book.lookup(region, year).spec.window.end
            rec.due = (max(due_if_spot, window_end) if (on_the_spot and due_if_spot) else window_end).isoformat()
        if rec.version:
            self.years[year] = rec
        return [issued] if issued is not None else []

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
        # Departments key their topics as they like, so events of one person can arrive out of
        # order across partitions: a start recorded before a known end (or death) is stale.
        if ev.change in (Change.CERTIFIED, Change.UPDATED) and occurred < max(
                self.ended.get(key, -1), self.ended.get("*", -1)):
            return effects
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
                    raised_at=now_ms, code="NO_POLICY",
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
            self.ended[key] = max(occurred, self.ended.get(key, -1))
            why = f"{ev.source} 撤销 {ev.category} ({ev.effective_date})"
        else:  # DECEASED
            self.identities.clear()
            self.deceased = True
            self.ended["*"] = max(occurred, self.ended.get("*", -1))
            why = f"死亡核减 ({ev.effective_date})"
        target_years |= {y for y, r in self.years.items() if not r.frozen}
        for year in sorted(target_years):
            effects += self._redecide(year, book, person_key, now_ms, ev.event_id, why, ev.effective_date)
        return effects

    def open_year(self, year: int, region: str, book: PolicyBook, person_key: str, now_ms: int,
                  command_id: str) -> list[Effect]:
        """OPEN_YEAR: a standard for ``year`` for a person still active in ``region`` who has none yet."""
        person_region = self._region()
        if self.deceased or person_region is None or not region_matches(person_region, region):
            return []
        if year in self.years:
            return []  # already has a standard (or a frozen year) for it
        return self._redecide(year, book, person_key, now_ms, command_id, "", None)

    def check_coverage(self, year: int, region: str, as_of: dt.date, grace_days: int) -> list[Effect]:
        """CHECK_COVERAGE: suspected un-enrolled when a live standard has no payment after its due date + grace."""
        rec = self.years.get(year)
        if rec is None or rec.frozen or rec.mode == PaymentMode.WITHDRAWN or not rec.due:
            return []
        if not region_matches(rec.region_code, region):
            return []
        since = dt.date.fromisoformat(rec.due) + dt.timedelta(days=grace_days + 1)
        if as_of < since:
            return []
        if rec.last_ack == PaymentState.REJECTED:
            reason = f"税务回执 REJECTED (版本 v{rec.version}), 应缴 {yuan(rec.payable_fen)}"
        else:
            reason = (f"缴费期 {rec.due} 结束 {grace_days} 天后仍无缴费回执 (版本 v{rec.version}, "
                      f"应缴 {yuan(rec.payable_fen)})")
        return [SuspectedFound(id_number=self.id_number, name=self.name, region_code=rec.region_code,
                               insurance_year=year, fee_version=rec.version, since=since, reason=reason)]

    def apply_payment(self, ack: dict[str, Any], now_ms: int) -> list[Effect]:
        """Apply a tax acknowledgement (decoded PaymentStatus)."""
        ack_id = str(ack["ack_id"])
        year = int(ack["insurance_year"])
        status = PaymentState(ack["status"])
        version = int(ack["fee_version"])
        amount = int(ack["amount_fen"])
        digest = hashlib.sha256(f"{year}|{version}|{status}|{amount}".encode()).hexdigest()[:8]
        earlier = next((s for s in self.seen if s.startswith(f"ack:{ack_id}:")), None)
        if earlier is not None:
            if earlier.endswith(":" + digest):
                return []  # a redelivery
            return [ReviewRaised(
                case_id=_case_id(ack_id + digest, ReviewKind.OTHER, year), kind=ReviewKind.OTHER.value,
                id_number=self.id_number, insurance_year=year, code="DUPLICATE_ACK_ID", raised_at=now_ms,
                detail=f"ack id {ack_id} was used before with different content ({status}, v{version}, "
                       f"{yuan(amount)}); ignored",
            )]
        self._remember(f"ack:{ack_id}:{digest}")
        rec = self.years.get(year)
        if rec is None:
            return [unknown_payment(ack, now_ms, f"no fee standard was issued for id {mask_id(self.id_number)} year {year}")]
        effects: list[Effect] = []

        def review(kind: ReviewKind, detail: str, code: str = "", amount_fen: int | None = None) -> None:
            effects.append(ReviewRaised(
                case_id=_case_id(ack_id, kind, year), kind=kind.value, id_number=self.id_number,
                insurance_year=year, detail=f"ack {ack_id} ({status}): {detail}", raised_at=now_ms,
                code=code, amount_fen=amount_fen,
            ))

        if version != rec.version:
            review(ReviewKind.PAYMENT_MISMATCH, f"acts on version {version}, the current version is {rec.version}",
                   "SUPERSEDED_VERSION")
        if status in FREEZING_STATES and version == rec.version:
            expected = rec.payable_fen
            if amount > expected and rec.subsidy_fen > 0:
                # Certified in time but charged more than the difference: refund or post-hoc subsidy
                # (攀医保〔2021〕58号 五(三); 渝医保发〔2019〕78号 二(三) 事后补助).
                due = min(amount - expected, rec.subsidy_fen)
                review(ReviewKind.OTHER, f"paid {yuan(amount)} but payable is {yuan(expected)}: "
                       f"refund or post-hoc subsidy of {yuan(due)} due", "POST_HOC_SUBSIDY", due)
            elif amount != expected:
                review(ReviewKind.PAYMENT_MISMATCH, f"amount {yuan(amount)} differs from payable {yuan(expected)} "
                       f"of version {rec.version}", "AMOUNT_MISMATCH")
        rec.last_ack = status.value
        if status is PaymentState.REFUNDED:
            rec.refunded_fen += amount
        if status in FREEZING_STATES and not rec.frozen:
            rec.payment = status.value
            rec.paid_version = version
            rec.paid_fen = amount
        return effects


_EMPTY_YEAR_FIELDS = YearRecord().__dict__  # a year stores only the fields that differ from these


def unknown_payment(ack: dict[str, Any], now_ms: int, detail: str) -> ReviewRaised:
    year = int(ack["insurance_year"])
    return ReviewRaised(
        case_id=_case_id(str(ack["ack_id"]), ReviewKind.UNKNOWN_PAYMENT, year),
        kind=ReviewKind.UNKNOWN_PAYMENT.value, id_number=str(ack["id_number"]), insurance_year=year,
        detail=f"ack {ack['ack_id']} ({ack['status']}): {detail}", raised_at=now_ms, code="UNKNOWN_PAYMENT",
    )


__all__ = ["PersonState", "FeeStandardIssued", "ReviewRaised", "SuspectedFound", "Effect", "unknown_payment",
           "region_matches", "Source"]
