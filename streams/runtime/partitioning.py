"""Kafka's default partitioner (murmur2 of the key, as in the Java client), computed fast.

The intake groups commands by the partition the producers' default partitioner gives
their person key, so that a batch record holds only commands of its own partition, and
a single record sent by key (payments, replays) lands on the same one. ``py_murmur2`` is the
same function as ``aiokafka.partitioner.murmur2`` (a test compares them), reading the key
4 bytes at a time: about four times faster. Where it is built, ``murmur2`` is its C copy
(``streams/_speedups.c``, held to it by a property test): 4 µs a key in Python, the intake and
the person stage call it once per event each.
"""

from __future__ import annotations

import struct

from streams.runtime.speedups import C

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def py_murmur2(data: bytes) -> int:
    length = len(data)
    h = _SEED ^ length
    n4 = length // 4
    for k in struct.unpack_from(f"<{n4}I", data) if n4 else ():
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    extra, tail = length & 3, n4 * 4
    if extra == 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


murmur2 = C.murmur2 if C is not None else py_murmur2


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
