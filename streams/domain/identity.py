"""Validation of a decoded identity event: every problem becomes a typed reason.

The input is the dict the codec produced (Avro already guarantees the types);
the output is an ``Identity`` fact with a normalised ID number, or an ``Invalid``
listing every reason at once so a department can fix a record in one round.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from streams.domain.departments import SHIPPED, Departments
from streams.domain.enums import Category, Change, LivingStatus, RejectionReason
from streams.domain.ids import IdProblem, birth_date, mask_id, normalize_id
from streams.domain.regions import is_county_code

# Enum members by value: a dict lookup instead of EnumType.__call__ (the hot path builds
# two per identity event at the intake and again at the person stage). Avro has already
# checked the symbols.
Normalize = Callable[[str], tuple[str | None, IdProblem | None]]  # normalize_id's signature
CATEGORIES = {m.value: m for m in Category}
CHANGES = {m.value: m for m in Change}

EARLIEST_DATE = dt.date(1950, 1, 1)
MAX_AHEAD = dt.timedelta(days=366)  # an identity may be recorded ahead of its start, not further


class Identity(NamedTuple):
    """A valid identity change about one person (the fact the rest of the domain uses).

    A NamedTuple, not a frozen dataclass: one is built per event at the intake and again at
    the person stage, and a frozen dataclass's __init__ (object.__setattr__ per field) cost
    several times more."""

    event_id: str
    source: str  # a department's symbol (streams/domain/departments.py)
    change: Change
    id_number: str  # normalised, 18 characters
    name: str
    category: Category
    region_code: str
    effective_date: dt.date
    occurred_at: dt.datetime
    is_student: bool = False
    # CONTRACT additions 2026-12: on UPDATED, the category this identity had before (it ends on
    # effective_date and ``category`` starts); the department's person number and living status.
    previous_category: Category | None = None
    person_number: str | None = None
    living_status: LivingStatus | None = None


@dataclass(frozen=True)
class Invalid:
    reasons: tuple[RejectionReason, ...]
    detail: str


class InvalidIdentity(ValueError):
    """A department's record that is no valid identity change (``check_identity``)."""

    def __init__(self, invalid: Invalid) -> None:
        super().__init__(invalid.detail)
        self.invalid = invalid


def _as_utc(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(int(value) / 1000, tz=dt.UTC)


def validate_identity(raw: dict[str, Any], departments: Departments = SHIPPED,
                      normalize: Normalize = normalize_id) -> Identity | Invalid:
    """The department's record checked and made an ``Identity``, or every reason it is not one.
    ``normalize`` is ``normalize_id`` or what returns the same (the intake's, with its common
    case in C: ``streams/runtime/speedups.py``).

    The intake's common record is taken in C first (``identity_command`` in
    ``streams/_speedups.c``), which repeats these checks to decide what it may take: a check
    added or changed here is added there too, and the differential tests of
    ``tests/unit/streams/test_speedups.py`` given records that break it."""
    reasons: list[RejectionReason] = []
    details: list[str] = []

    def bad(reason: RejectionReason, text: str) -> None:
        if reason not in reasons:
            reasons.append(reason)
        details.append(text)

    event_id = str(raw.get("event_id") or "").strip()
    name = str(raw.get("name") or "").strip()
    region = str(raw.get("region_code") or "").strip()
    for field, value in (("event_id", event_id), ("name", name), ("region_code", region)):
        if not value:
            bad(RejectionReason.MISSING_FIELD, f"{field} is empty")

    id18, problem = normalize(str(raw.get("id_number") or ""))
    if problem is not None:
        bad(problem.reason, f"{problem.detail} (id {mask_id(raw.get('id_number'))})")

    source = str(raw["source"])
    category = CATEGORIES.get(raw["category"]) or Category(raw["category"])
    if not departments.reports(source, category):
        bad(
            RejectionReason.CATEGORY_NOT_OF_SOURCE,
            f"category {category} belongs to {departments.reporters_text(category)}, not {source}",
        )

    previous = raw.get("previous_category")
    change_text = raw.get("change")
    if previous is not None:
        previous = CATEGORIES.get(previous) or Category(previous)
        if change_text != Change.UPDATED:
            bad(RejectionReason.SCHEMA, f"previous_category is only for UPDATED, not {change_text}")
        elif not departments.reports(source, previous):
            bad(RejectionReason.CATEGORY_NOT_OF_SOURCE,
                f"previous_category {previous} belongs to {departments.reporters_text(previous)}, not {source}")
        elif previous is category:
            bad(RejectionReason.SCHEMA, f"previous_category {previous} is the category itself")
    living = raw.get("living_status")

    if region and not is_county_code(region):
        bad(RejectionReason.UNKNOWN_REGION, f"region_code {region!r} is not a 6-digit county code")

    effective = raw.get("effective_date")
    occurred = _as_utc(raw.get("occurred_at", 0))
    if occurred.year < 2000:
        bad(RejectionReason.DATE_INVALID, f"occurred_at {occurred.isoformat()} is before 2000")
    if not isinstance(effective, dt.date):
        bad(RejectionReason.DATE_INVALID, "effective_date is missing")
    else:
        if effective < EARLIEST_DATE:
            bad(RejectionReason.DATE_INVALID, f"effective_date {effective} is before {EARLIEST_DATE}")
        elif effective > occurred.date() + MAX_AHEAD:
            bad(RejectionReason.DATE_INVALID, f"effective_date {effective} is over a year after occurred_at {occurred.date()}")
        if id18 is not None:
            born = birth_date(id18)
            if born is not None and effective < born:
                bad(RejectionReason.DATE_INVALID, f"effective_date {effective} is before the birth date in the id")

    if reasons:
        return Invalid(tuple(reasons), "; ".join(details))
    assert id18 is not None and isinstance(effective, dt.date)
    return Identity(
        event_id=event_id,
        source=source,
        change=CHANGES.get(raw["change"]) or Change(raw["change"]),
        id_number=id18,
        name=name,
        category=category,
        region_code=region,
        effective_date=effective,
        occurred_at=occurred,
        is_student=bool(raw.get("is_student", False)),
        previous_category=previous,
        person_number=raw.get("person_number") or None,
        living_status=LivingStatus(living) if living else None,
    )


def identity_from_command(raw: dict[str, Any]) -> Identity:
    """An internal command, validated at the intake already: rebuilt without checking again."""
    return Identity(
        event_id=raw["event_id"], source=raw["source"], change=CHANGES[raw["change"]],
        id_number=raw["id_number"], name=raw["name"], category=CATEGORIES[raw["category"]],
        region_code=raw["region_code"], effective_date=raw["effective_date"],
        occurred_at=_as_utc(raw["occurred_at"]), is_student=bool(raw.get("is_student", False)),
        previous_category=CATEGORIES[raw["previous_category"]] if raw.get("previous_category") else None,
        person_number=raw.get("person_number") or None,
        living_status=LivingStatus(raw["living_status"]) if raw.get("living_status") else None,
    )


def check_identity(raw: dict[str, Any], departments: Departments = SHIPPED,
                   normalize: Normalize = normalize_id) -> Identity:
    """``validate_identity``, raising ``InvalidIdentity`` for a record that fails it."""
    result = validate_identity(raw, departments, normalize)
    if isinstance(result, Invalid):
        raise InvalidIdentity(result)
    return result
