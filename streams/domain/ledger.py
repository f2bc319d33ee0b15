"""The ledger (台账): what each person-year stands at, and what the ledger's totals count.

Pure, from the person state the person stage just wrote (``person.py``): ``lines_of`` gives one
``LedgerLine`` per person-year (the ``ledger.v1`` record without the person and the time), and
``contributions`` what one person adds to the totals, per ``TotalsKey``. The person stage sends a
line whenever it differs from the line before the command, and adds ``contributions(after) -
contributions(before)`` to its partition's totals in the same unit of work as the state: the
totals are the sum over the partition's people by construction (``streams/runtime/ledger.py``).

A line's figures are the ones that count: the paid version's once the year froze, else the live
version's (CONTRACT additions: LedgerEntry). Its ``state``: the freezing acknowledgement once
frozen, WITHDRAWN for an unfrozen withdrawn year, else the latest acknowledgement (REJECTED) or
NO_ANSWER; REFUNDED once tax acknowledged a refund of the year, before or after the payment
(acknowledgements come in any order). Enrolled means frozen (``paid_version`` set), as the
person stage decides it; a refund does not undo the freeze.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from streams.domain.enums import LedgerState, PaymentMode, PaymentState
from streams.domain.money import PaidOut
from streams.domain.year import YearRecord

ENROLMENT = "ENROLMENT_SUBSIDY"  # the kind of a line's own money (an instruction's kind otherwise)
NO_ANSWER = LedgerState.NO_ANSWER.value
WITHDRAWN = LedgerState.WITHDRAWN.value


class LedgerLine(NamedTuple):
    """One person-year of the ledger (``ledger.v1`` less the person, the year and the time)."""

    region_code: str
    category: str
    funding_source: str
    contribution_level: int
    live_version: int
    paid_version: int | None
    state: str
    premium_fen: int
    subsidy_fen: int
    payable_fen: int
    on_the_spot: bool
    due: str | None  # ISO date
    suspected_since: str | None  # ISO date
    policy_id: str
    basis: str
    instructed_fen: int  # money paid to the person for this year by instructions (payment-instruction.v1)
    payment_mode: str  # of the figures that count

    @property
    def budgeted(self) -> bool:
        """Counts in the budget (资金支出测算): figures that are not a withdrawal (``revision.budgeted``)."""
        return self.state != WITHDRAWN and self.payment_mode != PaymentMode.WITHDRAWN


class TotalsKey(NamedTuple):
    """What the totals are kept per (one row of a county-year's totals, with ``county`` and ``year``)."""

    county: str
    year: int
    category: str
    funding_source: str
    on_the_spot: bool
    state: str  # a line's state; "INSTRUCTION" for an instruction's money
    enrolled: bool
    instructed: bool  # the year's money went to the person by instruction (settled under that kind)
    budgeted: bool
    kind: str  # ENROLMENT_SUBSIDY, or the instruction's kind


# persons, premium fen, subsidy fen, payable fen, persons with a subsidy above zero
VALUES = ("persons", "premium_fen", "subsidy_fen", "payable_fen", "subsidised")
Totals = dict[TotalsKey, list[int]]


def state_of(rec: YearRecord) -> str:
    """The year's state, whatever order tax's acknowledgements came in: a refund (any money
    acknowledged REFUNDED) shows whether it came before or after the payment that froze the year."""
    if rec.refunded_fen > 0:
        return PaymentState.REFUNDED.value
    if rec.frozen:
        return rec.payment
    if rec.mode == PaymentMode.WITHDRAWN:
        return WITHDRAWN
    if rec.last_ack in (PaymentState.REJECTED, PaymentState.REFUNDED):
        return rec.last_ack
    return NO_ANSWER


def line_of(rec: YearRecord, instructed_fen: int = 0) -> LedgerLine:
    frozen, withdrawn = rec.frozen, rec.mode == PaymentMode.WITHDRAWN
    fig = (rec.frozen_figures() if frozen else None) or rec.figures()
    chased = not frozen and not withdrawn  # only a live, unpaid year is followed up (疑似未参保)
    return LedgerLine(
        fig.region_code or rec.region_code, fig.category, fig.funding_source, fig.level, rec.version,
        rec.paid_version if frozen else None, state_of(rec), fig.premium_fen, fig.subsidy_fen, fig.payable_fen,
        fig.on_the_spot, rec.due or None, (rec.suspected or None) if chased else None, fig.policy_id, rec.basis,
        instructed_fen, fig.mode)


def lines_of(years: Mapping[int, YearRecord], paid_out: Sequence[PaidOut] = ()) -> dict[int, LedgerLine]:
    """The person's ledger lines, per insurance year that has a version."""
    instructed: dict[int, int] = {}
    for p in paid_out:
        instructed[p.year] = instructed.get(p.year, 0) + p.amount_fen
    return {year: line_of(rec, instructed.get(year, 0)) for year, rec in years.items() if rec.version}


def contributions(lines: Mapping[int, LedgerLine], paid_out: Sequence[PaidOut] = ()) -> Totals:
    """What one person adds to the totals: each line under its own keys, and each instruction's
    money under its kind (in the county, class and fund it names, else the year's line's)."""
    out: Totals = {}
    for year, ln in lines.items():
        _add(out, TotalsKey(ln.region_code, year, ln.category, ln.funding_source, ln.on_the_spot, ln.state,
                            ln.paid_version is not None, ln.instructed_fen > 0, ln.budgeted, ENROLMENT),
             (1, ln.premium_fen, ln.subsidy_fen, ln.payable_fen, 1 if ln.subsidy_fen > 0 else 0))
    for p in paid_out:
        year_line = lines.get(p.year)
        county = p.region_code or (year_line.region_code if year_line else "")
        category = p.category or (year_line.category if year_line else "")
        funding = p.funding_source or (year_line.funding_source if year_line else "")
        _add(out, TotalsKey(county, p.year, category, funding, False, "INSTRUCTION", True, True, False, p.kind),
             (1, 0, p.amount_fen, 0, 1))
    return out


def line_changes(old_lines: Mapping[int, LedgerLine], old_paid: Sequence[PaidOut], lines: Mapping[int, LedgerLine],
                 paid_out: Sequence[PaidOut], new: bool) -> tuple[dict[int, LedgerLine], Totals] | None:
    """What a command changed of a person's ledger: the lines that differ from ``old_lines``,
    and what the person's contribution to the totals changed by; None when nothing changed.
    ``new``: the person had no state before (all of it adds)."""
    changed = {year: line for year, line in lines.items() if old_lines.get(year) != line}
    if not changed and len(old_paid) == len(paid_out):
        return None
    if new:
        change = contributions(lines, paid_out)
    elif not old_paid and not paid_out:  # no instruction: an unchanged line adds and takes the same
        years = changed.keys() | (old_lines.keys() - lines.keys())
        change = delta(contributions({y: old_lines[y] for y in years if y in old_lines}),
                       contributions({y: lines[y] for y in years if y in lines}))
    else:  # an instruction's row borrows its year's line: all of the person
        change = delta(contributions(old_lines, old_paid), contributions(lines, paid_out))
    return changed, change


def _add(totals: Totals, key: TotalsKey, values: Iterable[int], sign: int = 1) -> None:
    row = totals.get(key)
    if row is None:
        row = totals[key] = [0] * len(VALUES)
    for i, v in enumerate(values):
        row[i] += sign * v


def delta(before: Totals, after: Totals) -> Totals:
    """``after - before``, without the rows that cancel."""
    out: Totals = {}
    for key, values in after.items():
        _add(out, key, values)
    for key, values in before.items():
        _add(out, key, values, -1)
    return {k: v for k, v in out.items() if any(v)}


def merge(into: Totals, change: Totals) -> None:
    """Add ``change`` to ``into``, dropping the rows left at zero."""
    for key, values in change.items():
        _add(into, key, values)
        if not any(into[key]):
            del into[key]


def rows(totals: Totals) -> list[list[object]]:
    """The totals as plain rows (key fields, then ``VALUES``), sorted: their stored and published form."""
    return [[*key, *values] for key, values in sorted(totals.items())]


def from_rows(found: Iterable[Sequence[object]]) -> Totals:
    n = len(TotalsKey._fields)
    return {TotalsKey(*r[:n]): [int(v) for v in r[n:]] for r in found}  # type: ignore[arg-type,call-overload]


__all__ = ["ENROLMENT", "VALUES", "LedgerLine", "Totals", "TotalsKey", "contributions", "delta", "from_rows",
           "line_of", "lines_of", "merge", "rows", "state_of"]
