"""The ledger (台账, issue #24): a person-year's line as the person stage decided it, and the totals
kept incrementally equal to a count from scratch, whatever the order of the changes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.enums import PaymentState
from streams.domain.ledger import Totals, contributions, lines_of, merge
from streams.domain.messages import PaymentAck
from streams.domain.person import PersonState
from streams.domain.reports import budget_rows, coverage_rows, recount, settlement_lines
from streams.domain.revision import budgeted
from tests.fixtures import HENAN, event, new_id, payment, shipped_book
from tests.unit.streams.domain.test_person import KEY, NOW, ident


def ack(idn: str, version: int, status: str, amount: int = 12000, year: int = 2025) -> PaymentAck:
    return PaymentAck.from_record(payment(idn, year, version, status, amount))


def person(*steps) -> PersonState:
    idn = new_id()
    state = PersonState(idn)
    for step in steps:
        step(state, idn)
    return state


def certified(category: str = "MINIMUM_LIVING", change: str = "CERTIFIED"):
    return lambda state, idn: state.apply_identity(ident(event(idn, category, change=change)), shipped_book(), KEY, NOW)


def acked(version: int, status: str, amount: int = 12000):
    return lambda state, idn: state.apply_payment(ack(idn, version, status, amount), shipped_book(), NOW, KEY)


def test_a_line_says_the_state_the_figures_that_count_and_the_current_basis():
    silent = person(certified())
    (line,) = lines_of(silent.years).values()
    assert (line.state, line.live_version, line.paid_version, line.subsidy_fen, line.payable_fen) == (
        "NO_ANSWER", 1, None, 28000, 12000)
    assert line.region_code == HENAN and line.due and line.basis and line.basis == silent.years[2025].basis
    # a better class from another department: version 2, and the line follows it
    better = person(certified(), certified("EXTREME_POVERTY"))
    assert lines_of(better.years)[2025].live_version == 2
    assert lines_of(better.years)[2025].subsidy_fen == 40000
    # paid at version 1, then a later class: the year keeps the paid figures
    paid = person(certified(), acked(1, "PAID"), certified("EXTREME_POVERTY"))
    line = lines_of(paid.years)[2025]
    assert (line.state, line.paid_version, line.subsidy_fen) == ("PAID", 1, 28000)
    rejected = person(certified(), acked(1, "REJECTED"))
    assert lines_of(rejected.years)[2025].state == "REJECTED"
    withdrawn = person(certified(), certified(change="REVOKED"))
    line = lines_of(withdrawn.years)[2025]
    assert (line.state, line.subsidy_fen, line.payment_mode, line.budgeted) == ("WITHDRAWN", 0, "WITHDRAWN", False)
    # a refund after the payment: tax's latest word is shown, the year stays frozen (enrolled)
    refunded = person(certified(), acked(1, "PAID"), acked(1, "REFUNDED"))
    line = lines_of(refunded.years)[2025]
    assert (line.state, line.paid_version) == ("REFUNDED", 1)


ACKS = [("PAID", 12000), ("REFUNDED", 12000), ("REJECTED", 0), ("PAID", 12000)]


@settings(max_examples=40, deadline=None)
@given(st.permutations(range(len(ACKS))))
def test_a_line_does_not_depend_on_the_order_of_the_acknowledgements(order):
    """Tax's acknowledgements of one person-year come on a topic keyed by ack id: any order. The
    ledger's line (state, paid version, figures) comes out the same."""
    idn = new_id()

    def run(sequence):
        state = PersonState(idn)
        certified()(state, idn)
        for i in sequence:
            status, amount = ACKS[i]
            state.apply_payment(PaymentAck.from_record(payment(idn, 2025, 1, status, amount, ack_id=f"a{i}")),
                                shipped_book(), NOW, KEY)
        return lines_of(state.years)[2025]

    assert run(order) == run(range(len(ACKS)))


def test_check_coverage_gives_the_line_its_suspected_since_until_paid():
    import datetime as dt

    state = person(certified())
    (found,) = state.check_coverage(2025, HENAN, dt.date(2026, 6, 1), 30)
    assert lines_of(state.years)[2025].suspected_since == found.since.isoformat()
    state.check_coverage(2025, HENAN, dt.date(2026, 7, 1), 30)  # the first finding's day is kept
    assert lines_of(state.years)[2025].suspected_since == found.since.isoformat()
    state.apply_payment(ack(state.id_number, 1, "PAID"), shipped_book(), NOW, KEY)
    assert lines_of(state.years)[2025].suspected_since is None


def test_the_budget_counts_a_year_as_its_ledger_line_does():
    """The live budget and the what-if count the same figures (``revision.budgeted``)."""
    for state in (person(certified()), person(certified(), acked(1, "PAID")),
                  person(certified(), certified(change="REVOKED"))):
        rec = state.years[2025]
        line = lines_of(state.years)[2025]
        found = budgeted(rec)
        assert (found is not None) == line.budgeted
        if found is not None:
            assert (found.category, found.funding_source, found.subsidy_fen) == (
                line.category, line.funding_source, line.subsidy_fen)


STEPS = [certified(), certified("EXTREME_POVERTY"), certified(change="REVOKED"), acked(1, "PAID"), acked(2, "PAID"),
         acked(1, "REJECTED"), acked(1, "REFUNDED"), certified("SEVERE_DISABILITY")]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, len(STEPS) - 1)), min_size=1, max_size=30))
def test_totals_kept_change_by_change_equal_a_count_from_scratch(steps):
    """Each command adds ``contributions(after) - contributions(before)`` (the person stage's
    rule, as its ``LedgerKeeper.note`` computes it, which counts only the years whose line
    changed): after any sequence the kept totals are the sum over the people, and so is the
    recount from their ledger lines (``zhucan ledger check``)."""
    from schemas.codec import Codec
    from streams.kafka.topics import Topics
    from streams.runtime.ledger import LedgerKeeper

    keeper = LedgerKeeper(Topics(), Codec(), None, lambda: NOW)  # type: ignore[arg-type]  # note() needs no store
    people = [PersonState(new_id()) for _ in range(6)]
    for who, step in steps:
        state = people[who]
        was = keeper.before(state.years, state.paid_out) if state.years else None  # no state yet: None
        STEPS[step](state, state.id_number)
        keeper.note(0, f"k{who}".encode(), was, state)()
    kept = keeper.pending.get(0, {})
    scratch: Totals = {}
    for state in people:
        merge(scratch, contributions(lines_of(state.years, state.paid_out), state.paid_out))
    assert kept == scratch
    entries = [{"id_number": s.id_number, "insurance_year": y, **line._asdict()}
               for s in people for y, line in lines_of(s.years, s.paid_out).items()]
    assert recount(entries) == scratch


def _totals(*states: PersonState) -> Totals:
    out: Totals = {}
    for state in states:
        merge(out, contributions(lines_of(state.years, state.paid_out), state.paid_out))
    return out


def test_coverage_settlement_and_budget_read_the_totals():
    import datetime as dt

    paid = person(certified(), acked(1, "PAID"))
    zero = person(certified("EXTREME_POVERTY"), acked(1, "ZERO_DECLARED", 0))
    silent = person(certified())
    gone = person(certified(), certified(change="REVOKED"))
    totals = _totals(paid, zero, silent, gone)
    (row,) = coverage_rows(totals, shipped_book(), "county")
    assert (row.region_code, row.live, row.enrolled) == (HENAN, 3, 2)  # the withdrawn year is nobody's
    assert dict(row.by_status) == {"PAID": 1, "ZERO_DECLARED": 1, "NO_ANSWER": 1}
    lines = settlement_lines(totals, dt.datetime(2026, 1, 31, tzinfo=dt.UTC), shipped_book())
    assert [(x["category"], x["persons"], x["subsidy_fen"], x["kind"]) for x in lines] == [
        ("EXTREME_POVERTY", 1, 40000, "ENROLMENT_SUBSIDY"), ("MINIMUM_LIVING", 1, 28000, "ENROLMENT_SUBSIDY")]
    budget = budget_rows(totals, "410000", 2025)
    assert [(r.category, r.persons, r.subsidy_fen) for r in budget] == [("EXTREME_POVERTY", 1, 40000),
                                                                         ("MINIMUM_LIVING", 2, 56000)]
    assert PaymentState.PAID in row.by_status


def test_the_due_day_follows_the_timeline_whatever_the_arrival_order():
    """Found by the ledger's property test: an on-the-spot identity (Weihai, after the window) whose
    start an earlier-recorded UPDATED puts a day sooner kept the day of the record that came
    first, because the due day changed only with a new version (it is no field of the standard)."""
    import datetime as dt

    idn = new_id("371002")
    updated = ident(event(idn, "MINIMUM_LIVING", region="371002", change="UPDATED", effective=dt.date(2025, 1, 1),
                          occurred=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)))
    certified_ = ident(event(idn, "MINIMUM_LIVING", region="371002", effective=dt.date(2025, 1, 2),
                             occurred=dt.datetime(2025, 1, 2, 0, 0, 3, tzinfo=dt.UTC)))

    def due(*events) -> str | None:
        state = PersonState(idn)
        for ev in events:
            state.apply_identity(ev, shipped_book(), KEY, NOW)
        return lines_of(state.years)[2025].due

    assert due(certified_, updated) == due(updated, certified_)
