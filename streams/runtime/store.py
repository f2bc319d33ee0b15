"""The person table: reads and batched writes of its local store, and its changelog, by partition.

Faust's table API goes through its serializer registry, the current event and a locked
key-to-partition LRU for every read and write; measured with ``ZHUCAN_BENCH_PROFILE=py-spy``
that was about a tenth of a worker's time on a province's batch. The person stage always
knows the partition (that of the command), so with RocksDB through rocksdict it reads the
partition's database directly and writes each batch of states as one RocksDB write batch.
Any other store (memory, python-rocksdb) goes through Faust's own mapping, unchanged.

The changelog (``zhucan.person-changelog``, compacted only) is written here too, batched,
after the effects decided from the states were acknowledged (``save``), and **before the local
store**: the changelog batch is acknowledged by the broker first, then the states are written
to RocksDB, then the acknowledged offset becomes the table's persisted offset (where RocksDB
resumes). A worker killed in between leaves the local store behind the changelog, never ahead:
its restart reads the changelog from the persisted offset and catches up. The other order lost
people in the soak: the local store had a state the changelog never got, the worker restarted
on its own data found itself up to date and skipped the command as applied, and the worker that
took the partition next restored from the changelog without that state (a version 1 issued
twice with two contents).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from streams.runtime.emit import Emitter, Out
from streams.runtime.faust_compat import mark_persisted, rocksdict_db
from streams.runtime.unit import Send  # the worker's emit

INTERNAL = b"~"  # keys of the table's own markers; person keys are hex
CONTROL_KEY = "~control~"  # a control command done in a partition (and the fan-out's record keys)
OPENED_KEY = "~opened~"  # the years opened in a partition (streams/runtime/context.py OpenedYears)


def opened_key(partition: int) -> bytes:
    return f"{OPENED_KEY}{partition}".encode()


class PersonStore:
    def __init__(self, table: Any, emitter: Emitter | None = None, changelog: str = "") -> None:
        self.table = table
        self.emitter = emitter
        self.changelog = changelog
        self._acked: dict[Any, int] = {}  # changelog partition -> the last offset acknowledged, not yet marked
        if emitter is not None:
            emitter.on_sent[changelog] = self._persisted

    def _persisted(self, meta: Any, count: int) -> None:
        last = meta.offset + count - 1
        self._acked[meta.topic_partition] = max(last, self._acked.get(meta.topic_partition, last))

    def _mark_persisted(self) -> None:
        """The acknowledged changelog offsets become where RocksDB resumes (after the local write)."""
        acked, self._acked = self._acked, {}
        for tp, offset in acked.items():
            mark_persisted(self.table.data, tp, offset)

    def get(self, partition: int, key: bytes) -> bytes | None:
        db = rocksdict_db(self.table.data, partition)
        if db is not None:
            value = db.get(key)
            return bytes(value) if value is not None else None
        return self.table.data.get(key)  # type: ignore[no-any-return]

    def has_people(self, partition: int, partition_of: Callable[[bytes], int]) -> bool:
        """Whether the partition holds any person (a person key is hex, so it sorts before every
        ``~`` marker: RocksDB's first key says it)."""
        db = rocksdict_db(self.table.data, partition)
        if db is not None:
            it = db.iter()
            it.seek_to_first()
            return bool(it.valid()) and not bytes(it.key()).startswith(INTERNAL)
        return any(not k.startswith(INTERNAL) and partition_of(k) == partition for k in list(self.table.data.keys()))

    def people(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (person key, state) of the table's local copy (a control command's scan); the
        table's own markers (keys starting with ``~``: applied offsets, control commands done)
        are left out."""
        return iter([(k, v) for k, v in self.table.items() if not k.startswith(INTERNAL)])

    def put_many(self, partition: int, items: Mapping[bytes, bytes]) -> None:
        db = rocksdict_db(self.table.data, partition)
        if db is None:
            store = self.table.data
            for key, value in items.items():
                store[key] = value
            return
        import rocksdict

        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in items.items():
            batch.put(key, value)
        db.write(batch)

    async def save(self, partition: int, states: Mapping[bytes, bytes], emit: Send) -> None:
        """Write changed states to the changelog (its partition is the person's partition of
        ``zhucan.person-commands``), acknowledged, then to the local store. Call only after the
        effects decided from these states were acknowledged."""
        if not states:
            return
        await emit([Out(self.changelog, key, value, partition=partition) for key, value in states.items()], wait=True)
        self.put_many(partition, states)
        self._mark_persisted()
