"""The framing of batch records on the internal topic ``zhucan.person-commands``.

The intake sends one Kafka record per target partition per batch instead of one per
identity event: ``ZB\\x01`` then, per command, a 2-byte key length, the person key, a
4-byte value length and the command (a single-object encoded IdentityEvent or
PaymentStatus). Every command in a batch record belongs to that record's partition, so
the person agent's table writes go to the right changelog partition. A record without
the magic is a single command keyed by its own record key (payments, control commands,
replayed dead letters).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

MAGIC = b"ZB\x01"
_HEAD = struct.Struct(">H")
_LEN = struct.Struct(">I")


class BatchFormatError(ValueError):
    """A batch record that is truncated or malformed."""


def pack(items: Sequence[tuple[bytes, bytes]]) -> bytes:
    parts = [MAGIC]
    for key, value in items:
        parts += [_HEAD.pack(len(key)), key, _LEN.pack(len(value)), value]
    return b"".join(parts)


def pack_chunks(items: Sequence[tuple[bytes, bytes]], max_bytes: int = 512 * 1024) -> list[bytes]:
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
