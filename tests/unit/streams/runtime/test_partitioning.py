import os

from aiokafka.partitioner import murmur2 as reference

from streams.runtime.partitioning import murmur2, partition_for, py_murmur2


def test_same_as_the_reference_murmur2_for_every_length():
    for n in range(0, 130):
        data = os.urandom(n)
        assert murmur2(data) == py_murmur2(data) == reference(data), n


def test_partition_for_a_person_key_is_stable():
    key = ("ab" * 32).encode()
    assert partition_for(key, 4) == (reference(key) & 0x7FFFFFFF) % 4
