"""The ledger's totals as a report reads them (streams/kafka/snapshots.py), without a broker."""

from streams.kafka.snapshots import summed


def doc(next_offset, persons, built=True):
    row = ["410102", 2025, "MINIMUM_LIVING", "MEDICAL_ASSISTANCE_FUND", False, "PAID", True, False, True,
           "ENROLMENT_SUBSIDY", persons, 0, 28000 * persons, 0, persons]
    return {"partition": 0, "built": built, "at_ms": 1, "next_offset": next_offset, "rows": [row]}


def test_the_partitions_are_summed_and_what_they_do_not_count_yet_is_said():
    live = summed({0: doc(5, 2), 1: doc(3, 1)}, 3, {0: 5, 1: 4, 2: 0})
    (values,) = live.totals.values()
    assert values[0] == 3  # persons, over the partitions
    assert live.behind == {1: 1}  # partition 1's snapshot counts 3 of its 4 commands
    assert live.missing == []  # partition 2 has no command: nothing to count, no snapshot needed
    assert live.warnings() and "partition(s) 1" in live.warnings()[0]


def test_a_partition_with_commands_and_no_snapshot_is_waited_for():
    """A worker that just started publishes within a second: a report right after its first
    commands must wait for it, not sum what it has (the secured spine test read 0 enrolled)."""
    live = summed({0: doc(5, 2)}, 2, {0: 5, 1: 2})
    assert live.behind == {1: 2}
    assert summed({0: doc(5, 2), 1: doc(2, 1)}, 2, {0: 5, 1: 2}).behind == {}


def test_without_the_commands_a_missing_partition_is_only_said():
    live = summed({0: doc(5, 2, built=False)}, 2, None)
    assert live.missing == [1] and live.unbuilt == [0] and live.behind == {}
