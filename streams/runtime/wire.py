"""The framing of batch records on the internal topic ``zhucan.person-commands``.

The intake sends one Kafka record per target partition per batch instead of one per
identity event: ``ZB\\x01`` then, per command, a 2-byte key length, the person key, a
4-byte value length and the command (an identity in the internal form below, or a
single-object encoded IdentityEvent or PaymentStatus). Every command in a batch record belongs to that record's partition, so
the person agent's table writes go to the right changelog partition. A record without
the magic is a single command keyed by its own record key (payments, control commands,
replayed dead letters).

An identity event that passed the intake's validation travels in a compact internal form
(``ZI\x01`` then a JSON array, see ``pack_identity``), not as the department's Avro: the
person stage then rebuilds the ``Identity`` for about a third of what a second Avro decode
cost. A tax acknowledgement travels the same way (``ZP\x01``, ``pack_payment``): decoded from
Avro once, at the payments stage. Control commands stay Avro, and the person stage still
reads an IdentityEvent or PaymentStatus in Avro (a replayed dead letter, or a record written
by an older version).

``decode_command`` gives each command its order (``streams/domain/commands.py``) through two
maps, by the internal form's prefix or else by the Avro record's name: no other dispatch.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson

from schemas.codec import Codec
from schemas.exceptions import DecodeError
from streams.domain.commands import (
    ORDERS,
    ApplyIdentity,
    BuildLedger,
    Command,
    DecideClaim,
    PreviewRevision,
    RecordOtherChannel,
    RecordPayment,
)
from streams.domain.departments import SHIPPED, Departments
from streams.domain.enums import ClaimKind, ControlKind, LivingStatus, PaymentState, Scheme
from streams.domain.identity import CATEGORIES, CHANGES, Identity, identity_from_command
from streams.domain.messages import Claim, Control, OtherChannel, PaymentAck
from streams.runtime.speedups import C  # pack_chunks, unpack: held to the Python (test_wire.py)

MAGIC = b"ZB\x01"
_LIVING = {m.value: m for m in LivingStatus}
_PAID = {m.value: m for m in PaymentState}
IDENTITY = b"ZI\x01"
PAYMENT = b"ZP\x01"
PREVIEW = b"ZV\x01"
CLAIM = b"ZC\x01"
OTHER = b"ZO\x01"
LEDGER = b"ZL\x01"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)
_HEAD = struct.Struct(">H")
_LEN = struct.Struct(">I")


class BatchFormatError(ValueError):
    """A batch record that is truncated or malformed."""


def pack(items: Sequence[tuple[bytes, bytes]]) -> bytes:
    parts = [MAGIC]
    for key, value in items:
        parts += [_HEAD.pack(len(key)), key, _LEN.pack(len(value)), value]
    return b"".join(parts)


def pack_chunks(items: Sequence[tuple[bytes, bytes]], max_bytes: int) -> list[bytes]:
    """``py_pack_chunks``, in C where it is built (the Python for anything the C declines)."""
    packed = C.pack_chunks(items, max_bytes) if C is not None else None
    return packed if packed is not None else py_pack_chunks(items, max_bytes)


def py_pack_chunks(items: Sequence[tuple[bytes, bytes]], max_bytes: int) -> list[bytes]:
    """``items`` packed into as few batch records as keep each within ``max_bytes`` (in order).

    A single command larger than ``max_bytes`` still gets a record of its own."""
    out: list[bytes] = []
    parts = [MAGIC]
    size = len(MAGIC)
    for key, value in items:
        need = 6 + len(key) + len(value)
        if size + need > max_bytes and len(parts) > 1:
            out.append(b"".join(parts))
            parts, size = [MAGIC], len(MAGIC)
        parts += [_HEAD.pack(len(key)), key, _LEN.pack(len(value)), value]
        size += need
    if len(parts) > 1:
        out.append(b"".join(parts))
    return out


def commands_of(record_key: bytes | None, data: bytes) -> list[tuple[bytes, bytes]]:
    """``list(unpack(record_key, data))``: a whole batch record in C where it is built; a single
    command, and any record the C declines (cut or malformed: ``BatchFormatError``), by ``unpack``."""
    pairs = C.unpack(data) if C is not None else None
    return pairs if pairs is not None else list(unpack(record_key, data))


def unpack(record_key: bytes | None, data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(person key, command bytes) of a batch record, or the record itself when it is single."""
    if not data.startswith(MAGIC):
        yield (record_key or b""), data
        return
    pos, end = len(MAGIC), len(data)
    while pos < end:
        if pos + 2 > end:
            raise BatchFormatError(f"truncated key length at byte {pos}")
        (klen,) = _HEAD.unpack_from(data, pos)
        pos += 2
        key = data[pos:pos + klen]
        pos += klen
        if pos + 4 > end:
            raise BatchFormatError(f"truncated value length at byte {pos}")
        (vlen,) = _LEN.unpack_from(data, pos)
        pos += 4
        if pos + vlen > end or len(key) != klen:
            raise BatchFormatError(f"truncated command at byte {pos}")
        yield key, data[pos:pos + vlen]
        pos += vlen


def pack_identity(ident: Identity) -> bytes:
    """A validated identity in the internal form: its fields in a fixed order, the effective
    date as its proleptic ordinal and the occurrence as epoch milliseconds."""
    return IDENTITY + orjson.dumps([  # orjson writes an enum member as its value
        ident.event_id, ident.source, ident.change, ident.id_number, ident.name,
        ident.category, ident.region_code, ident.effective_date.toordinal(),
        (ident.occurred_at - _EPOCH) // _MS, ident.is_student,
        ident.previous_category, ident.person_number, ident.living_status,
    ])


def occurred_at(ms: int) -> dt.datetime:
    """An identity's occurrence from the internal form's epoch milliseconds."""
    return _EPOCH + ms * _MS


def unpack_identity(data: bytes, departments: Departments = SHIPPED) -> Identity:
    """The ``Identity`` of a ``pack_identity`` command; ``DecodeError("COMMAND_FORMAT")`` if it is not one."""
    try:
        f: list[Any] = orjson.loads(data[len(IDENTITY):])
        if len(f) == 13:
            (event_id, source, change, id_number, name, category, region, effective, occurred_ms, student,
             previous, person_number, living) = f
        else:  # ten fields before the contract additions of 2026-12 (commands in flight across an upgrade)
            (event_id, source, change, id_number, name, category, region, effective, occurred_ms, student) = f
            previous = person_number = living = None
        return Identity(
            event_id, departments.by_source[source].source, CHANGES[change], id_number, name, CATEGORIES[category], region,
            dt.date.fromordinal(effective), occurred_at(occurred_ms), student is True,
            CATEGORIES[previous] if previous else None, person_number, _LIVING[living] if living else None,
        )
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise DecodeError("COMMAND_FORMAT", f"internal identity command: {type(exc).__name__}: {exc}") from exc

def pack_payment(ack: PaymentAck) -> bytes:
    """A decoded acknowledgement (its ID number normalised) in the internal form."""
    return PAYMENT + orjson.dumps([
        ack.ack_id, ack.id_number, ack.insurance_year, ack.fee_version, ack.status, ack.amount_fen,
        ack.tax_reference, (ack.acted_at - _EPOCH) // _MS, ack.contribution_level,
    ])


def unpack_payment(data: bytes) -> PaymentAck:
    """The ``PaymentAck`` of a ``pack_payment`` command; ``DecodeError("COMMAND_FORMAT")`` if it is not one."""
    try:
        (ack_id, id_number, year, version, status, amount, reference, acted_ms, level) = orjson.loads(
            data[len(PAYMENT):])
        return PaymentAck(str(ack_id), str(id_number), int(year), int(version), _PAID[status], int(amount),
                          str(reference), _EPOCH + acted_ms * _MS, level)
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise DecodeError("COMMAND_FORMAT", f"internal payment command: {type(exc).__name__}: {exc}") from exc


def _ms(at: dt.datetime) -> int:
    return (at - _EPOCH) // _MS


def pack_claim(claim: Claim) -> bytes:
    """A decoded claim (its ID number normalised) in the internal form."""
    c = claim
    return CLAIM + orjson.dumps([c.claim_id, c.kind, c.id_number, c.name, c.insurance_year, c.enrolled_region_code,
                                 c.scheme, c.amount_paid_fen, _ms(c.paid_at), c.evidence, _ms(c.submitted_at)])


def unpack_claim(data: bytes) -> Claim:
    try:
        (claim_id, kind, id_number, name, year, enrolled, scheme, paid, paid_ms, evidence, submitted_ms) = orjson.loads(
            data[len(CLAIM):])
        return Claim(str(claim_id), ClaimKind(kind), str(id_number), str(name), int(year), str(enrolled), Scheme(scheme),
                     int(paid), _EPOCH + paid_ms * _MS, str(evidence), _EPOCH + submitted_ms * _MS)
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise DecodeError("COMMAND_FORMAT", f"internal claim command: {type(exc).__name__}: {exc}") from exc


def pack_other(sub: OtherChannel) -> bytes:
    return OTHER + orjson.dumps([sub.record_id, sub.funder, sub.id_number, sub.insurance_year, sub.amount_fen,
                                 _ms(sub.reported_at)])


def unpack_other(data: bytes) -> OtherChannel:
    try:
        (record_id, funder, id_number, year, amount, reported_ms) = orjson.loads(data[len(OTHER):])
        return OtherChannel(str(record_id), str(funder), str(id_number), int(year), int(amount),
                            _EPOCH + reported_ms * _MS)
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise DecodeError("COMMAND_FORMAT", f"internal other-channel command: {type(exc).__name__}: {exc}") from exc


def pack_preview(preview: PreviewRevision) -> bytes:
    return PREVIEW + orjson.dumps({"preview_id": preview.preview_id, "targets": preview.targets,
                                   "documents": preview.documents, "people": preview.people})


def unpack_preview(data: bytes) -> PreviewRevision:
    """A preview request (``zhucan.policy-candidates``, or its copy on the person topic);
    ``DecodeError("COMMAND_FORMAT")`` if it is not one."""
    body = data[len(PREVIEW):] if data.startswith(PREVIEW) else data
    try:
        doc = orjson.loads(body)
        return PreviewRevision(str(doc["preview_id"]), tuple((str(r), int(y)) for r, y in doc["targets"]),
                               tuple((str(n), str(t)) for n, t in doc["documents"]), bool(doc.get("people")))
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
        raise DecodeError("COMMAND_FORMAT", f"policy preview request: {type(exc).__name__}: {exc}") from exc


def pack_build(command: BuildLedger) -> bytes:
    return LEDGER + command.command_id.encode()


def control_order(value: dict[str, Any]) -> Command:
    """An operator's ControlCommand as its order; ``DecodeError("UNKNOWN_COMMAND")`` for a kind no
    order runs (``ORDERS``)."""
    control = Control.from_record(value)
    order = ORDERS.get(ControlKind(control.command))
    if order is None:
        raise DecodeError("UNKNOWN_COMMAND", f"control {control.command_id}: {control.command} is not run by workers")
    return order(control)


# The internal forms' prefixes -> their order; an Avro record's name -> its order.
INTERNAL: dict[bytes, Callable[[bytes, Departments], Command]] = {
    IDENTITY: lambda data, departments: ApplyIdentity(unpack_identity(data, departments)),
    PAYMENT: lambda data, departments: RecordPayment(unpack_payment(data)),
    PREVIEW: lambda data, departments: unpack_preview(data),
    CLAIM: lambda data, departments: DecideClaim(unpack_claim(data)),
    OTHER: lambda data, departments: RecordOtherChannel(unpack_other(data)),
    LEDGER: lambda data, departments: BuildLedger(data[len(LEDGER):].decode()),
}
AVRO: dict[str, Callable[[dict[str, Any]], Command]] = {
    "IdentityEvent": lambda value: ApplyIdentity(identity_from_command(value)),  # validated at the intake
    "PaymentStatus": lambda value: RecordPayment(PaymentAck.from_record(value)),
    "ControlCommand": control_order,
    "SubsidyClaim": lambda value: DecideClaim(Claim.from_record(value)),  # a replayed dead letter
    "OtherChannelSubsidy": lambda value: RecordOtherChannel(OtherChannel.from_record(value)),
}
_AVRO_NAMES = tuple(AVRO)


def decode_command(data: bytes, codec: Codec, departments: Departments = SHIPPED) -> Command:
    """One command of ``zhucan.person-commands`` as its order: an identity or acknowledgement in
    the internal form (most commands), or an Avro IdentityEvent, PaymentStatus (a replayed dead
    letter, or written by an older version) or ControlCommand. Raises DecodeError."""
    internal = INTERNAL.get(data[:3])
    if internal is not None:
        return internal(data, departments)
    name, value = codec.decode(data, expect=_AVRO_NAMES)
    return AVRO[name](value)
