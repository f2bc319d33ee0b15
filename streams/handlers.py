"""What the person stage does with each command: ``HANDLERS``, the one map from a command's type
(``streams/domain/commands.py``) to its handler. Nothing else dispatches on a command's type.

- ``ApplyIdentity``, ``RecordPayment``, ``DecideClaim``, ``RecordOtherChannel``: one person's state, as it stands in the unit of work
  (or the store), changed by the domain; its effects and new state go to the unit. A payment
  for a person who has no state is the unknown-person rule: a review case, no state.
- ``OpenYear``, ``CheckCoverage``, ``Redecide``: the partition scan. The unit is committed first
  (the scan sees every command before it), then each person of the partition is stepped,
  committed per 1,000; once per command id (a done marker, and for OPEN_YEAR the years opened).
- ``PreviewRevision``: the same REDECIDE on copies of the states, with candidate policies over
  the live ones; the answer is reported (``zhucan.policy-previews``), nothing is written.

One way around the map: ``remembered_identity`` takes a packed identity command of a newcomer
whose key the memo remembers, or of a second identity whose pair it remembers, before it is
decoded, and writes its records from bytes (``streams/runtime/remembered.py``); it does what
``apply_identity`` does for it, or nothing.

A handler gets the stage's context (``streams/runtime/context.py``) and the ``Work`` in hand,
and calls nothing above it. A failed handler leaves no trace in the unit: the person stage
dead-letters the command.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from schemas.fast_writer import avro_string
from streams.domain.commands import (
    ApplyIdentity,
    BuildLedger,
    CheckCoverage,
    DecideClaim,
    OpenYear,
    PreviewRevision,
    RecordOtherChannel,
    RecordPayment,
    Redecide,
)
from streams.domain.exceptions import DomainError
from streams.domain.ledger import Totals, contributions, lines_of, merge
from streams.domain.messages import Control, Effect, unknown_payment
from streams.domain.person import PersonState
from streams.domain.revision import PreviewTotals, person_row, preview_year
from streams.domain.state_codec import fill_plain, fill_second
from streams.policies import parse_documents
from streams.runtime.context import StageContext
from streams.runtime.emit import Out
from streams.runtime.ledger import NOTHING, Before
from streams.runtime.store import CONTROL_KEY
from streams.runtime.unit import UnitOfWork

log = logging.getLogger("zhucan.worker")
SCAN_COMMIT_EVERY = 1000  # people stepped between two commits of a scan


@dataclass(slots=True)
class Work:
    """The person stage's work in hand for one partition: its unit (changes keyed by
    (partition, key)), and how to commit it with the partition's applied-offset markers."""

    partition: int
    unit: UnitOfWork[tuple[int, bytes], bytes]
    commit: Callable[[], Awaitable[None]]


def _stored(ctx: StageContext, work: Work, key: bytes) -> bytes | None:
    """The person's state's bytes as they stand (the unit's, or the table's)."""
    return work.unit.changes.get((work.partition, key)) or ctx.store.get(work.partition, key)


def _state(ctx: StageContext, work: Work, key: bytes) -> tuple[PersonState | None, Before | None]:
    """The person's state as it stands, and their ledger lines before the command changes them."""
    return _loaded(ctx, _stored(ctx, work, key))


def _loaded(ctx: StageContext, stored: bytes | None) -> tuple[PersonState | None, Before | None]:
    if not stored:
        return None, None
    state = PersonState.loads(stored)
    return state, ctx.ledger.before(state.years, state.paid_out)


def _done(ctx: StageContext, work: Work, key: bytes, state: PersonState, effects: list[Effect],
          was: Before | None) -> None:
    """A state changed by the rules: its effects, the ledger lines that changed and the totals'
    change, and its bytes into the unit."""
    _record(ctx, work, key, effects, ctx.ledger.note(work.partition, key, was, state), state.dumps())


def _record(ctx: StageContext, work: Work, key: bytes, effects: list[Effect], ledger: Callable[[], None],
            stored: bytes) -> None:
    """Effects, the ledger's lines and totals (``ledger``: encoded already) and the state's bytes
    into the unit: everything that can fail (encoding) done first, so that a failed command leaves
    no trace."""
    ctx.publisher.publish(work.unit, effects, key, home=work.partition)  # encodes every effect before adding any
    ledger()
    work.unit.change((work.partition, key), stored)


def apply_identity(ctx: StageContext, work: Work, key: bytes, cmd: ApplyIdentity) -> None:
    ident = cmd.identity
    stored = _stored(ctx, work, key)
    person_key, now_ms, opened = key.decode(), ctx.clock(), ctx.opened.of(work.partition)
    # a person's first command (most of a batch) is decided once per key, and so is a second
    # department's record for a person held as a newcomer is
    new = ctx.newcomers.apply_identity(ident, ctx.book, person_key, now_ms, opened) if not stored else \
        ctx.newcomers.apply_second(ident, stored, ctx.book, person_key, now_ms, opened)
    if new is None:  # any other held person: the rules
        state, was = _loaded(ctx, stored)
        assert state is not None
        _done(ctx, work, key, state, state.apply_identity(ident, ctx.book, person_key, now_ms, opened), was)
        return
    if new.lines is None or new.totals is None:  # decided by the rules, not remembered
        assert new.state is not None
        _done(ctx, work, key, new.state, new.effects, None)
        return
    # the lines and totals it changed are known; a remembered person (no state) its state's bytes too
    who = new.state if new.state is not None else ident
    ledger = ctx.ledger.note_known(work.partition, key, who.id_number, who.name, new.lines, new.totals)
    written = new.state.dumps() if new.state is not None else new.stored
    assert written is not None
    _record(ctx, work, key, new.effects, ledger, written)


def remembered_identity(ctx: StageContext, work: Work, key: bytes, value: bytes) -> bool:
    """A packed identity command of a newcomer whose key the memo remembers, or of a second
    identity of a person held as such a newcomer whose pair it remembers, its records put
    together from bytes (``streams/runtime/remembered.py``): what ``apply_identity`` does for
    it, without decoding it to an order. False, with nothing done, for the rules' way."""
    remembered = ctx.remembered
    if remembered is None:
        return False
    stored = _stored(ctx, work, key)
    if stored:
        return _remembered_second(ctx, work, key, value, stored)
    found = remembered.of(value, ctx.book, ctx.opened.of(work.partition))
    if found is None:
        return False
    shape, event_id, id_number, name, recorded = found
    partition, now_ms, plan = work.partition, ctx.clock(), shape.plan
    line_ms = ctx.ledger.clock() if plan is not None and plan.line_clock else 0
    made = remembered.records(shape, key, id_number, name, event_id, recorded, now_ms, line_ms, partition)
    if made is not None:  # in C (``streams/_speedups.c``): the same records as below
        outs, lines, stored = made
    else:
        person = avro_string(id_number) + avro_string(name)
        outs = remembered.standards(shape, key, key.decode(), person, now_ms, partition)
        lines = ctx.ledger.remembered_lines(partition, key, id_number, name, person, shape.known.lines,
                                            shape.known.totals, line_ms if plan is not None else None)
        stored = fill_plain(shape.state, id_number, name, event_id, recorded)
    _write_remembered(ctx, work, key, outs, shape.standards, lines, shape.known.totals, stored)
    ctx.newcomers.hits += 1
    return True


def _remembered_second(ctx: StageContext, work: Work, key: bytes, value: bytes, stored: bytes) -> bool:
    remembered = ctx.remembered
    assert remembered is not None
    found = remembered.second(value, stored, ctx.book, ctx.opened.of(work.partition))
    if found is None:
        return False
    shape, id_number, name, first_id, first_ms, event_id, recorded = found
    pair = shape.pair
    person = avro_string(id_number) + avro_string(name)
    outs = remembered.standards(shape, key, key.decode(), person, ctx.clock(), work.partition)
    lines = ctx.ledger.remembered_lines(work.partition, key, id_number, name, person, pair.lines, pair.change)
    _write_remembered(ctx, work, key, outs, shape.standards, lines, pair.change,
                      fill_second(shape.state, id_number, name, first_id, first_ms, event_id, recorded))
    ctx.newcomers.second_hits += 1
    return True


def _write_remembered(ctx: StageContext, work: Work, key: bytes, outs: list[Out], standards: Any,
                      lines: dict[bytes, Out], totals: Any, stored: bytes) -> None:
    """A remembered person's records (encoded already), counters, ledger lines and totals' change
    and state into the unit, as ``_record`` adds them."""
    unit = work.unit
    unit.send(outs)  # as ``_record``: nothing added before everything is encoded
    for standard in standards:
        if standard.template.counter is not None:
            unit.counts[standard.template.counter] += 1
        unit.timed += standard.template.timed
    ctx.ledger.add_remembered(work.partition, lines, totals)
    unit.change((work.partition, key), stored)


def record_payment(ctx: StageContext, work: Work, key: bytes, cmd: RecordPayment) -> None:
    state, was = _state(ctx, work, key)
    if state is None:  # the unknown-person rule: nothing to record it on
        review = unknown_payment(cmd.ack, ctx.clock(), "no fee standard was ever issued to this person")
        ctx.publisher.publish(work.unit, [review], key)
        return
    _done(ctx, work, key, state, state.apply_payment(cmd.ack, ctx.book, ctx.clock(), key.decode()), was)


def decide_claim(ctx: StageContext, work: Work, key: bytes, cmd: DecideClaim) -> None:
    """A claim decided on the person's state; a person with no state yet gets one, holding the
    claim id (the decision is made once, whatever comes later)."""
    state, was = _state(ctx, work, key)
    state = state or PersonState(id_number=cmd.claim.id_number)
    _done(ctx, work, key, state, state.apply_claim(cmd.claim, ctx.book, ctx.clock(), ctx.opened.of(work.partition)),
          was)


def record_other_channel(ctx: StageContext, work: Work, key: bytes, cmd: RecordOtherChannel) -> None:
    state, was = _state(ctx, work, key)
    state = state or PersonState(id_number=cmd.subsidy.id_number)
    _done(ctx, work, key, state, state.apply_other_channel(cmd.subsidy, ctx.book, key.decode(), ctx.clock(),
                                                           ctx.opened.of(work.partition)), was)


Step = Callable[[PersonState, str], list[Effect]]


async def scan(ctx: StageContext, work: Work, cmd: Control, step: Step, *, keep: bool,
               done: Callable[[], dict[bytes, bytes]] | None = None) -> None:
    """Step every person of the partition (effects, and the new state when ``keep``), committed
    per 1,000 and at the end with the command's done marker (and the records ``done`` gives)."""
    partition, unit = work.partition, work.unit
    marker = f"{CONTROL_KEY}{cmd.command_id}~{partition}".encode()
    if ctx.store.get(partition, marker) is not None:
        log.info("control %s partition %d: already done (redelivery)", cmd.command_id, partition)
        return
    await work.commit()  # every command before this one, written
    scanned = touched = 0
    for key, stored in ctx.store.people():
        if ctx.partition_of(key) != partition:
            continue
        state = PersonState.loads(stored)
        was = ctx.ledger.before(state.years, state.paid_out) if keep else None
        effects = step(state, key.decode())
        ledger = ctx.ledger.note(partition, key, was, state) if keep else NOTHING
        # kept when it gave effects, or changed the person's ledger lines without one (a basis
        # that names an identity the year now counts, with the same figures)
        if effects or ledger is not NOTHING:
            touched += bool(effects)
            stored = state.dumps() if keep else b""
            ctx.publisher.publish(unit, effects, key, home=partition)
            if keep:
                ledger()
                unit.change((partition, key), stored)
        scanned += 1
        if scanned % SCAN_COMMIT_EVERY == 0:
            await unit.commit()
            ctx.scan_committed(partition, scanned)
            log.info("control %s %s partition %d: %d people scanned, %d with output", cmd.command_id,
                     cmd.command, partition, scanned, touched)
    for k, v in {marker: b"done", **(done() if done else {})}.items():
        unit.change((partition, k), v)
    unit.send([Out(ctx.topics.control_progress, cmd.command_id.encode(), json.dumps({
        "command_id": cmd.command_id, "command": cmd.command, "partition": partition, "scanned": scanned,
        "with_output": touched, "done": True}).encode())])
    await unit.commit()
    log.info("control %s %s region %s year %d partition %d done: %d people scanned, %d with output",
             cmd.command_id, cmd.command, cmd.region_code, cmd.insurance_year, partition, scanned, touched)


async def open_year(ctx: StageContext, work: Work, key: bytes, cmd: OpenYear) -> None:
    c, opened = cmd.control, ctx.opened.of(work.partition)
    await scan(ctx, work, c, lambda state, pkey: state.open_year(
        c.insurance_year, c.region_code, ctx.book, pkey, ctx.clock(), c.command_id, opened=opened), keep=True,
        done=lambda: ctx.opened.with_year(work.partition, c.region_code, c.insurance_year))


async def redecide(ctx: StageContext, work: Work, key: bytes, cmd: Redecide) -> None:
    c, opened = cmd.control, ctx.opened.of(work.partition)
    await scan(ctx, work, c, lambda state, pkey: state.redecide(
        c.insurance_year, c.region_code, ctx.book, pkey, ctx.clock(), opened), keep=True)


async def check_coverage(ctx: StageContext, work: Work, key: bytes, cmd: CheckCoverage) -> None:
    c = cmd.control
    await scan(ctx, work, c, lambda state, pkey: state.check_coverage(
        c.insurance_year, c.region_code, c.issued_at.date(), ctx.settings.coverage_grace_days), keep=True)


PREVIEW_CHUNK = 2000  # people rows per record of zhucan.policy-previews


async def preview(ctx: StageContext, work: Work, key: bytes, cmd: PreviewRevision) -> None:
    """What a REDECIDE with the candidate policies would do to this partition's people: per class
    the person-years that change and the money, the frozen years whose difference would be
    raised, the budget before and after, and (``people``) each person's row, masked. Reported on
    ``zhucan.policy-previews``; no state is written and nothing goes to tax. Candidate policies
    that fail validation over the live book are reported as the error, once per partition."""
    partition, unit = work.partition, work.unit
    await work.commit()  # the preview sees every command before it
    out = ctx.topics.policy_previews
    head = {"preview_id": cmd.preview_id, "partition": partition, "live": sorted(p.policy_id for p in ctx.book)}

    def note(doc: dict[str, Any]) -> Out:
        return Out(out, cmd.preview_id.encode(), json.dumps({**head, **doc}, ensure_ascii=False).encode())

    try:
        book = ctx.book.overlay(parse_documents(list(cmd.documents)))
    except DomainError as exc:
        unit.send([note({"done": True, "error": str(exc)})])
        await unit.commit()
        return
    opened = ctx.opened.of(partition)
    totals = PreviewTotals()
    rows: list[list[Any]] = []
    chunk = 0
    for pkey, stored in ctx.store.people():
        if ctx.partition_of(pkey) != partition:
            continue
        totals.scanned += 1
        for region, year in cmd.targets:
            change = preview_year(stored, year, region, book, pkey.decode(), ctx.clock(), opened)
            if change is None:
                continue
            totals.add(change)
            if cmd.people and (change.old != change.new or change.raised_fen):
                rows.append(person_row(PersonState.loads(stored).id_number, change))
        if len(rows) >= PREVIEW_CHUNK:
            unit.send([note({"chunk": chunk, "people": rows})])
            rows, chunk = [], chunk + 1
    unit.send([note({"chunk": chunk, "people": rows}), note({"done": True, "chunks": chunk + 1, **totals.doc(),
                                                              "candidates": sorted(p.policy_id for p in book)})])
    await unit.commit()
    log.info("preview %s partition %d: %d people scanned, %d person-years change", cmd.preview_id, partition,
             totals.scanned, totals.changed)


async def build_ledger(ctx: StageContext, work: Work, key: bytes, cmd: BuildLedger) -> None:
    """The partition's ledger from its people's states (``streams/runtime/ledger.py``): every
    person-year's line to ``ledger.v1``, and the totals counted from scratch, written with the
    build's marker. Once: a partition built before (or a redelivery) is left as it is."""
    partition, unit = work.partition, work.unit
    if ctx.ledger.built(partition) or not ctx.ledger.enabled:
        return
    await work.commit()  # every command before this one, written (its totals folded)
    scanned = 0
    totals: Totals = {}
    for pkey, stored in ctx.store.people():
        if ctx.partition_of(pkey) != partition:
            continue
        state = PersonState.loads(stored)
        ctx.ledger.note(partition, pkey, None, state)()  # every line (the totals are replaced below)
        ctx.ledger.pending.pop(partition, None)
        merge(totals, contributions(lines_of(state.years, state.paid_out), state.paid_out))
        scanned += 1
        if scanned % SCAN_COMMIT_EVERY == 0:
            await unit.commit()
            log.info("ledger build partition %d: %d people", partition, scanned)
    ctx.ledger.replace(unit, partition, totals)
    await unit.commit()
    log.info("ledger build partition %d done: %d people", partition, scanned)


# A person's command is handled at once (None); a partition's order returns what to await (it
# commits the unit and waits for the broker as it goes).
Handler = Callable[[StageContext, Work, bytes, Any], Awaitable[None] | None]
HANDLERS: dict[type, Handler] = {
    ApplyIdentity: apply_identity,
    RecordPayment: record_payment,
    DecideClaim: decide_claim,
    RecordOtherChannel: record_other_channel,
    OpenYear: open_year,
    CheckCoverage: check_coverage,
    Redecide: redecide,
    PreviewRevision: preview,
    BuildLedger: build_ledger,
}
