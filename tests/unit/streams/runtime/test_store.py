"""The person stage's store access, on a real RocksDB (rocksdict) and on a plain mapping."""

from types import SimpleNamespace

import rocksdict

from streams.runtime.store import PersonStore


def test_rocksdict_partitions_are_read_and_written_directly(tmp_path):
    dbs: dict[int, rocksdict.Rdict] = {}

    class FaustRocksStore:  # what PersonStore uses of Faust's rocksdb store
        use_rocksdict = True

        def _db_for_partition(self, partition):
            if partition not in dbs:
                dbs[partition] = rocksdict.Rdict(str(tmp_path / f"p{partition}"), options=rocksdict.Options(raw_mode=True))
            return dbs[partition]

    store = PersonStore(SimpleNamespace(data=FaustRocksStore()))
    store.put_many(1, {b"k1": b"state-1", b"k2": b"state-2"})
    store.put_many(3, {b"k1": b"other"})
    assert store.get(1, b"k1") == b"state-1" and store.get(1, b"k2") == b"state-2"
    assert store.get(3, b"k1") == b"other"  # each partition its own database
    assert store.get(1, b"missing") is None and store.get(2, b"k1") is None
    store.put_many(1, {b"k1": b"state-1b"})
    assert store.get(1, b"k1") == b"state-1b"
    for db in dbs.values():
        db.close()


def test_any_other_store_goes_through_its_mapping():
    data: dict[bytes, bytes] = {}
    store = PersonStore(SimpleNamespace(data=data))
    store.put_many(0, {b"k": b"v"})
    assert data == {b"k": b"v"} and store.get(5, b"k") == b"v" and store.get(0, b"x") is None


def test_a_scan_sees_people_only_never_the_tables_markers():
    """A control command's scan (OPEN_YEAR, CHECK_COVERAGE) decodes every value as a person:
    the applied-offset markers (issue #26) and the control markers must not reach it."""
    rows = {b"ab12": b"{}", b"~applied~0": b"2666", b"~control~c1~0": b"done", b"cd34": b"{}"}
    store = PersonStore(SimpleNamespace(items=rows.items, data=rows))
    assert [k for k, _ in store.people()] == [b"ab12", b"cd34"]


def test_the_changelog_is_acknowledged_before_the_local_store_is_written_and_marked():
    """A worker killed between the two must leave its local store behind the changelog, never
    ahead: a state only the local store held was lost by the next owner of the partition (the
    soak: version 1 issued twice with two contents). Here the send fails (as a death would cut
    it): nothing is written locally and no offset is marked; when it succeeds, the local write
    comes after the acknowledgement and the persisted offset after the local write."""
    import asyncio

    import pytest

    marks: list[tuple[object, int]] = []

    class Data(dict):
        def set_persisted_offset(self, tp, offset):
            marks.append((tp, offset))

    data = Data()
    emitter = SimpleNamespace(on_sent={})
    store = PersonStore(SimpleNamespace(data=data), emitter, "cl")
    order: list[str] = []

    async def dead(outs, wait=False):
        raise ConnectionError("killed before the changelog was acknowledged")

    with pytest.raises(ConnectionError):
        asyncio.run(store.save(0, {b"k": b"v1"}, dead))
    assert data == {} and marks == []

    async def acked(outs, wait=False):
        assert wait, "the changelog must be awaited"
        assert b"k" not in data, "the local store was written before the changelog was acknowledged"
        order.append("changelog")
        emitter.on_sent["cl"](SimpleNamespace(topic_partition=("cl", 0), offset=41), len(outs))

    asyncio.run(store.save(0, {b"k": b"v2"}, acked))
    assert data == {b"k": b"v2"} and order == ["changelog"] and marks == [(("cl", 0), 41)]
