"""Region-year policies as data: YAML files validated by pydantic, looked up by region.

One file per region and insurance year. Every value carries a ``reference`` to the
clause it comes from; where the documents give no figure, ``example: true`` marks
the value as an example the bureau must replace. A city file may ``inherits`` its
province's file for the same year and override parts of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streams.domain.departments import SHIPPED, Departments
from streams.domain.enums import (
    PAYS_AS,
    Category,
    Channel,
    ClaimKind,
    FundingSource,
    InstructionKind,
)
from streams.domain.exceptions import NoPolicy, PolicyError
from streams.domain.regions import chain

T = TypeVar("T")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(_Strict, Generic[T]):
    """A value with the clause it comes from."""

    value: T
    reference: str = Field(min_length=1)
    example: bool = False  # True where the documents give no figure
    note: str = ""


class FullSubsidy(_Strict):
    """全额资助 at contribution level ``level``: the person pays 0 (zero declaration)."""

    kind: Literal["full"]
    level: int = Field(1, ge=1, le=2)


class FixedSubsidy(_Strict):
    """定额资助: a fixed amount off the level's premium; the person pays the difference."""

    kind: Literal["fixed"]
    amount_fen: int = Field(ge=0)
    level: int = Field(1, ge=1, le=2)


class PercentSubsidy(_Strict):
    """A percentage of the level-N premium (Panzhihua: 75% of level 1)."""

    kind: Literal["percent"]
    percent: int = Field(gt=0, le=100)
    level: int = Field(1, ge=1, le=2)


Subsidy = Annotated[FullSubsidy | FixedSubsidy | PercentSubsidy, Field(discriminator="kind")]


class CategoryRule(_Strict):
    subsidy: Subsidy
    student: Subsidy | None = None  # override for students and children (Panzhihua's severe disability)
    funding_source: FundingSource
    reference: str = Field(min_length=1)
    example: bool = False
    note: str = ""


class Resolution(_Strict):
    """How several identities resolve: ``highest`` subsidy, or the first held in ``order``.

    Under ``highest`` the order breaks ties; it matters because the class decides
    the funding source and which department settles.
    """

    rule: Literal["highest", "priority"]
    order: list[Category]
    reference: str = Field(min_length=1)
    example: bool = False
    note: str = ""

    @field_validator("order")
    @classmethod
    def _unique(cls, v: list[Category]) -> list[Category]:
        if len(set(v)) != len(v):
            raise ValueError("order lists a category twice")
        return v


class Window(_Strict):
    start: dt.date
    end: dt.date
    reference: str = Field(min_length=1)
    example: bool = False
    note: str = ""
    phases: list[Phase] = []

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")
        return self


class Phase(_Strict):
    """A stage of the payment window (Chongqing: a Sep-Dec batch, then Jan-Jun monthly)."""

    name: str = Field(min_length=1)
    start: dt.date
    end: dt.date
    reference: str = Field(min_length=1)
    example: bool = False
    note: str = ""


class LateException(_Strict):
    """Categories still subsidised on the spot after the cutoff, up to ``until`` (Chongqing's
    脱贫攻坚期: registered poor who enrol after 30 June, to 2020-12-31)."""

    categories: list[Category] = Field(min_length=1)
    until: dt.date
    reference: str = Field(min_length=1)
    example: bool = False
    note: str = ""


PaidInFull = Literal["next_year", "tax_refund", "post_hoc_subsidy"]
# Who the ``paid_in_full`` rule is for (the group its clause names): people certified outside
# the window (on the spot), people who became eligible inside the window, or everyone
# certified in time.
PaidInFullGroup = Literal["on_the_spot", "certified_in_window", "in_time"]
# Identities certified in several pooling regions for one year: the region whose policy gives
# the higher subsidy, or the region of the latest certification.
SeveralRegions = Literal["highest_subsidy", "latest_certification"]


MONTH_DAY = r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


class ClaimRule(_Strict):
    """A kind of claim (SubsidyClaim.kind) in a region: whether it is paid, and the last day of
    the insurance year it may be submitted (``MM-DD``; Chongqing's 30 June for employee insurance)."""

    allowed: Param[bool]
    deadline: Param[Annotated[str, Field(pattern=MONTH_DAY)]] | None = None


class Payout(_Strict):
    """How money of one instruction kind reaches the person: the channel, and whether an SMS is due."""

    channel: Param[Channel]
    notify_sms: Param[bool]


class MoneyRules(_Strict):
    """Money to people rather than through a fee standard (CONTRACT additions 2026-12, rules 7-10)."""

    claims: dict[ClaimKind, ClaimRule]
    payouts: dict[InstructionKind, Payout] = {}
    # 003 六(二): 不得将资助参保资金发放给异地参保的个人 (false); where the notices let a person
    # enrolled elsewhere claim at the certifying county (000 三), true
    pay_enrolled_elsewhere: Param[bool]
    # another channel subsidises the same premium: the standard stays and a case is raised
    # (review_only), or the standard's subsidy covers only the rest (top_up); a case either way
    other_channel: Param[Literal["review_only", "top_up"]]
    # settlement per funding department (渝 二(二)2: 资助参保部门分别形成资助汇总表)
    settle_by_department: Param[bool]

    def payout(self, kind: InstructionKind) -> Payout | None:
        return self.payouts.get(kind)


class PolicyFile(_Strict):
    region_code: str = Field(pattern=r"^\d{6}$")
    region_name: str
    insurance_year: int = Field(ge=2000, le=2100)
    # a region's file of the same year ("410000"), or a region-year ("410000-2025": last year's
    # file, this one stating only what changed, its window among them)
    inherits: str | None = Field(None, pattern=r"^\d{6}(-\d{4})?$")
    documents: list[str] = Field(min_length=1)
    premiums: dict[int, Param[int]]
    window: Window
    identity_cutoff: Param[dt.date] | None = None
    outside_window: Param[Literal["next_year", "on_the_spot"]]
    # With on_the_spot: the last day a certification counts on the spot for this year; later ones
    # wait for the next year's window (the notices give no such day: always an example value).
    on_the_spot_until: Param[dt.date] | None = None
    late_exceptions: list[LateException] = []
    # What a person who paid the full premium before being certified (or before the data
    # arrived) gets: subsidised from the next year, a tax refund of the difference, or a post-hoc subsidy.
    paid_in_full: Param[PaidInFull]
    paid_in_full_group: Param[PaidInFullGroup]
    # A person outside that group who was subsidised and still paid the full premium: the
    # subsidy is owed to them (a case with the amount; the year keeps it for the reports).
    charged_in_full: Param[Literal["owed_to_person"]]
    several_regions: Param[SeveralRegions]
    # A revised policy (REDECIDE) that raises the subsidy of a year already paid: the year keeps
    # what was paid either way (a POLICY_REVISION case carries the difference); whether the
    # difference is owed to the person.
    paid_year_revision: Param[Literal["not_adjusted", "owed_to_person"]]
    allow_higher_level: Param[bool]
    # The share of the assisted people of the region who must be enrolled (参保率; the reports'
    # target, per region and year).
    coverage_target: Param[float]
    # Children below this age (at 1 January of the year, from the birth date in the ID number)
    # count as 学生儿童 wherever a category rule has a ``student`` override.
    child_age_below: Param[int] | None = None
    resolution: Resolution
    subsidies: dict[Category, CategoryRule]
    money: MoneyRules

    @model_validator(mode="after")
    def _consistent(self) -> PolicyFile:
        for level, premium in self.premiums.items():
            if level not in (1, 2):
                raise ValueError(f"premiums: level {level} is not 1 or 2")
            if premium.value <= 0:
                raise ValueError(f"premiums.{level}: must be a positive amount in fen")
        for cat, rule in self.subsidies.items():
            for sub in (rule.subsidy, rule.student):
                if sub is not None and sub.level not in self.premiums:
                    raise ValueError(f"subsidies.{cat}: level {sub.level} has no premium")
        if self.outside_window.value == "on_the_spot" and self.on_the_spot_until is None:
            raise ValueError("outside_window: on_the_spot needs on_the_spot_until (the last day it applies)")
        if self.window.end.year not in (self.insurance_year - 1, self.insurance_year):
            raise ValueError(f"window: ends {self.window.end}, not in the year before {self.insurance_year} nor in it "
                             "(a year inheriting another year's file restates its window)")
        if not 0 < self.coverage_target.value <= 1:
            raise ValueError("coverage_target: a share between 0 and 1 (0.99 for 99%)")
        if self.allow_higher_level.value and 2 not in self.premiums:
            raise ValueError("allow_higher_level: true needs a level-2 premium")
        missing = sorted(set(ClaimKind) - set(self.money.claims))
        if missing:
            raise ValueError(f"money.claims: no rule for {', '.join(missing)} (allowed: false where it is not paid)")
        for kind in self.payouts_needed():
            if kind not in self.money.payouts:
                raise ValueError(f"money.payouts: {kind} is paid in this region and needs its channel and notify_sms")
        last = self.window.start
        for i, phase in enumerate(self.window.phases):
            if phase.start < last or phase.end < phase.start or phase.end > self.window.end:
                raise ValueError(f"window.phases.{i}: {phase.name} must follow the previous phase inside the window")
            last = phase.end
        return self

    def payouts_needed(self) -> set[InstructionKind]:
        """The instruction kinds this policy can issue: its allowed claims, the paid-in-full rule
        (a post-hoc subsidy, or tax's refund of late data), the subsidy owed to someone charged in
        full, and a revision's owed difference."""
        kinds = {PAYS_AS[k] for k, rule in self.money.claims.items() if rule.allowed.value}
        kinds.add(InstructionKind.LATE_DATA_REFUND)  # charged_in_full: owed_to_person
        if self.paid_in_full.value == "post_hoc_subsidy" or self.paid_year_revision.value == "owed_to_person":
            kinds.add(InstructionKind.POST_HOC_SUBSIDY)
        if self.paid_in_full.value == "tax_refund":
            kinds.add(InstructionKind.LATE_DATA_REFUND)
        return kinds

    def examples(self) -> list[str]:
        """Every value the notices do not give (marked ``example: true``), by its path in the file."""
        found: list[str] = []

        def walk(value: Any, path: str) -> None:
            if isinstance(value, BaseModel):
                if getattr(value, "example", False):
                    found.append(path)
                for name in type(value).model_fields:
                    walk(getattr(value, name), f"{path}.{name}" if path else name)
            elif isinstance(value, dict):
                for k, v in value.items():
                    walk(v, f"{path}.{k}")
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    walk(v, f"{path}.{i}")

        walk(self, "")
        return found


@dataclass(frozen=True)
class Policy:
    """A resolved policy (inheritance applied) with its identity for the audit trail."""

    spec: PolicyFile
    policy_id: str  # "<region>-<year>@<content hash>"
    origin: str  # where it was read from (a file path), for messages

    @property
    def region_code(self) -> str:
        return self.spec.region_code

    @property
    def year(self) -> int:
        return self.spec.insurance_year

    def premium(self, level: int) -> int:
        return self.spec.premiums[level].value

    @cached_property  # read for every identity and year (a frozen dataclass has a __dict__ to cache in)
    def in_time_until(self) -> dt.date:
        """Identities starting on or before this day count for the year at the normal rate."""
        if self.spec.identity_cutoff is not None:
            return min(self.spec.identity_cutoff.value, self.spec.window.end)
        return self.spec.window.end

    def phase_on(self, day: dt.date) -> str:
        """The name of the window's phase that ``day`` falls in ("" outside them, or with none)."""
        for phase in self.spec.window.phases:
            if phase.start <= day <= phase.end:
                return phase.name
        return ""


def _without_notes(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_notes(v) for k, v in value.items() if k != "note"}
    if isinstance(value, list):
        return [_without_notes(v) for v in value]
    return value


def content_id(spec: PolicyFile) -> str:
    """A hash of what the policy decides: the validated content without notes, so editing a
    comment, a note or the file's layout changes nothing (and sends tax no new version)."""
    doc = _without_notes(spec.model_dump(mode="json", exclude={"region_name", "documents", "inherits"}))
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:12]


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge for mappings; a category's rule and lists are replaced whole."""
    out = dict(base)
    for key, value in over.items():
        if key == "subsidies" and isinstance(value, dict):
            out[key] = {**base.get(key, {}), **value}
        elif isinstance(value, dict) and isinstance(base.get(key), dict) and key not in ("resolution",):
            out[key] = _merge(base[key], value)
        else:
            out[key] = value
    return out


def _format_errors(origin: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top)"
        lines.append(f"{origin}: {where}: {err['msg']}")
    return "\n".join(lines)


class PolicyBook:
    """All policies of a directory, indexed by (region_code, year), and the departments whose
    identities they decide (named in each decision's ``basis``)."""

    def __init__(self, policies: dict[tuple[str, int], Policy], departments: Departments = SHIPPED,
                 documents: tuple[tuple[str, Any], ...] = ()) -> None:
        self._by_key = policies
        self.departments = departments
        self.documents = documents  # as read (origin, parsed YAML): an overlay merges over them (``overlay``)
        # The book never changes after loading: per-region answers are memoised (hot path).
        self._years: dict[str, list[int]] = {}
        self._found: dict[tuple[str, int], Policy | None] = {}

    @classmethod
    def from_documents(cls, documents: list[tuple[str, Any]], departments: Departments = SHIPPED) -> PolicyBook:
        """Validate parsed policy documents, each with the name of where it came from (a file);
        raise PolicyError naming every problem. Reading the files is ``streams.policies.load_book``."""
        raw: dict[tuple[str, int], tuple[str, dict[str, Any]]] = {}
        problems: list[str] = []
        for origin, doc in documents:
            if not isinstance(doc, dict):
                problems.append(f"{origin}: (top): expected a mapping")
                continue
            key = (str(doc.get("region_code")), int(doc.get("insurance_year") or 0))
            if key in raw:
                problems.append(f"{origin}: region {key[0]} year {key[1]} is also defined in {raw[key][0]}")
                continue
            raw[key] = (origin, doc)
        policies: dict[tuple[str, int], Policy] = {}
        for key, (origin, doc) in raw.items():
            merged = doc
            parent_code = doc.get("inherits")
            seen = {key}
            try:
                while parent_code:
                    code, _, of_year = str(parent_code).partition("-")
                    parent_key = (code, int(of_year) if of_year else key[1])
                    if parent_key not in raw:
                        raise PolicyError(f"{origin}: inherits: no policy for region {parent_key[0]} "
                                          f"year {parent_key[1]}")
                    if parent_key in seen:
                        raise PolicyError(f"{origin}: inherits: cycle through {parent_code}")
                    seen.add(parent_key)
                    _, pdoc = raw[parent_key]
                    merged = _merge(pdoc, merged)
                    parent_code = pdoc.get("inherits")
                merged = {**merged, "region_code": doc.get("region_code"), "inherits": doc.get("inherits")}
                if "region_name" in doc:
                    merged["region_name"] = doc["region_name"]
                spec = PolicyFile.model_validate(merged)
            except ValidationError as exc:
                problems.append(_format_errors(origin, exc))
                continue
            except PolicyError as exc:
                problems.append(str(exc))
                continue
            policies[key] = Policy(spec=spec, policy_id=f"{key[0]}-{key[1]}@{content_id(spec)}", origin=origin)
        if problems:
            raise PolicyError("\n".join(problems))
        return cls(policies, departments, tuple(documents))

    def overlay(self, documents: list[tuple[str, Any]]) -> PolicyBook:
        """This book with ``documents`` over it: each replaces the live file of its region-year
        (or adds one), inheriting the same way; validated as a whole (PolicyError)."""
        keys = {(str(d.get("region_code")), int(d.get("insurance_year") or 0)) for _, d in documents
                if isinstance(d, dict)}
        live = [(origin, d) for origin, d in self.documents
                if (str(d.get("region_code")), int(d.get("insurance_year") or 0)) not in keys]
        return PolicyBook.from_documents([*live, *documents], self.departments)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._by_key.values(), key=lambda p: (p.region_code, p.year)))

    def __len__(self) -> int:
        return len(self._by_key)

    def lookup(self, region_code: str, year: int) -> Policy:
        key = (region_code, year)
        if key not in self._found:
            self._found[key] = next(
                (p for p in (self._by_key.get((code, year)) for code in chain(region_code)) if p), None
            )
        policy = self._found[key]
        if policy is None:
            raise NoPolicy(region_code, year)
        return policy

    def years(self, region_code: str) -> list[int]:
        """Insurance years for which some policy covers this region, ascending."""
        if region_code not in self._years:
            codes = set(chain(region_code))
            self._years[region_code] = sorted({year for (code, year) in self._by_key if code in codes})
        return self._years[region_code]
