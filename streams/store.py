"""Reads and batched writes of the person table's store, by partition.

Faust's table API goes through its serializer registry, the current event and a locked
key-to-partition LRU for every read and write; measured with ``ZHUCAN_BENCH_PROFILE=py-spy``
that was about a tenth of a worker's time on a province's batch. The person stage always
knows the partition (that of the command), so with RocksDB through rocksdict it reads the
partition's database directly and writes each batch of states as one RocksDB write batch.
Any other store (memory, python-rocksdb) goes through Faust's own mapping, unchanged.

The changelog is written by the pipeline (``Pipeline.save_states``); this is the local copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class PersonStore:
    def __init__(self, table: Any) -> None:
        self.table = table

    def _rocksdict_db(self, partition: int) -> Any | None:
        store = self.table.data
        if getattr(store, "use_rocksdict", False) and hasattr(store, "_db_for_partition"):
            return store._db_for_partition(partition)
        return None

    def get(self, partition: int, key: bytes) -> bytes | None:
        db = self._rocksdict_db(partition)
        if db is not None:
            value = db.get(key)
            return bytes(value) if value is not None else None
        return self.table.data.get(key)  # type: ignore[no-any-return]

    def put_many(self, partition: int, items: Mapping[bytes, bytes]) -> None:
        db = self._rocksdict_db(partition)
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
