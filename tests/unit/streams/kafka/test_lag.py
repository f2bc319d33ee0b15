"""Burrow-style lag evaluation (connectors/lag.py), on hand-made windows."""

from streams.kafka.lag import Sample, evaluate


def window(*pairs):
    return [Sample(at=float(i), committed=c, end=e) for i, (c, e) in enumerate(pairs)]


def test_idle_group_that_caught_up_is_ok():
    assert evaluate(window((10, 10), (10, 10), (10, 10)), allowed_lag=0, active_members=0) == "OK"


def test_any_zero_lag_in_the_window_is_ok():
    assert evaluate(window((10, 10), (10, 50), (10, 90)), allowed_lag=0, active_members=1) == "OK"


def test_no_members_and_lag_is_stop():
    assert evaluate(window((10, 20), (10, 30), (10, 40)), allowed_lag=5, active_members=0) == "STOP"


def test_members_but_offset_not_moving_is_stall():
    assert evaluate(window((10, 40), (10, 40), (10, 40)), allowed_lag=5, active_members=1) == "STALL"


def test_moving_but_lag_growing_every_step_is_warn():
    assert evaluate(window((10, 30), (12, 40), (14, 50)), allowed_lag=5, active_members=1) == "WARN"


def test_catching_up_is_ok():
    assert evaluate(window((10, 60), (30, 60), (50, 60)), allowed_lag=5, active_members=1) == "OK"


def test_offset_going_back_is_rewind():
    assert evaluate(window((30, 60), (10, 60)), allowed_lag=5, active_members=1) == "REWIND"


def test_lag_within_the_allowance_is_ok():
    assert evaluate(window((10, 13), (10, 14), (10, 15)), allowed_lag=5, active_members=1) == "OK"


def test_never_committed_counts_the_whole_partition():
    assert Sample(0, -1, 25).lag == 25


def test_the_progress_watch_sees_a_partition_never_committed_with_records_waiting():
    """A full suite run found a worker holding a partition of the person topic whose group had
    never committed, its one record never taken in for minutes: the watch looked only at
    partitions with a commit. Now such a partition is judged from its log start offset."""
    from streams.kafka.lag import PartitionLag, progress_of

    def part(committed: int, end: int, start: int = 0) -> PartitionLag:
        return PartitionLag("t", 1, committed, end, max(0, end - max(committed, 0)), 0.0, "OK", start)

    assert progress_of(part(5, 9)) == (5, 9)  # committed: as before
    assert progress_of(part(-1, 1)) == (0, 1)  # never committed, a record waits from the start
    assert progress_of(part(-1, 120, start=100)) == (100, 120)  # retention took the first 100
    assert progress_of(part(-1, 100, start=100)) is None  # never committed and nothing there: nothing to watch
    assert progress_of(part(-1, 0)) is None


def _monitor_with_one_lagging_partition():
    from collections import deque

    from kafka.structs import TopicPartition

    from streams.kafka.lag import LagMonitor, Sample

    monitor = LagMonitor.__new__(LagMonitor)  # no admin client: the report reads the samples only
    monitor.allowed_lag, monitor.window, monitor._starts = 1000, 5, {}
    monitor._groups = {"g": ("Stable", 1)}
    tp = TopicPartition("t", 0)
    monitor.samples = {("g", tp): deque([Sample(0.0, 10, 500)], maxlen=5)}
    peeks = []
    monitor._seconds_behind = lambda tp, committed, lag: peeks.append((tp, committed)) or 7.0
    return monitor, peeks


def test_a_report_without_ages_reads_no_record():
    """The worker's own lag (``own_lag``) feeds its metric and watches, which need offsets only:
    it must not fetch the oldest waiting record of each lagging partition (2-3% of a worker)."""
    monitor, peeks = _monitor_with_one_lagging_partition()
    (group,) = monitor.report(["g"], ages=False)
    assert peeks == [] and group.partitions[0].seconds_behind is None
    assert (group.partitions[0].committed, group.partitions[0].end, group.total_lag) == (10, 500, 490)
    (group,) = monitor.report(["g"])  # the operators' report (zhucan lag, the dashboard) has them
    assert len(peeks) == 1 and group.partitions[0].seconds_behind == 7.0


def test_own_lag_asks_for_no_ages(monkeypatch):
    from streams.kafka import lag

    monitor, peeks = _monitor_with_one_lagging_partition()
    monitor.sample = lambda groups: None
    monkeypatch.setitem(lag._monitors, "own", monitor)
    settings = type("S", (), {"worker_groups": ["g"], "kafka_bootstrap_servers": "x:1"})()
    (group,) = lag.own_lag(settings)
    assert peeks == [] and group.partitions[0].lag == 490


def test_the_sampler_asks_the_metadata_of_its_groups_topics_only():
    """Not the whole cluster's (a consumer's ``partitions_for_topic`` fetched every topic's metadata:
    on a broker with thousands of topics, most of what the sampler cost a worker)."""
    from streams.kafka.lag import LagMonitor

    asked = []

    class Admin:
        def describe_topics(self, topics):
            asked.append(topics)
            return [{"name": "a", "error_code": 0, "partitions": [{"partition_index": 1}, {"partition_index": 0}]},
                    {"name": "gone", "error_code": 3, "partitions": []}]

    monitor = LagMonitor.__new__(LagMonitor)
    monitor.admin = Admin()
    assert monitor._partitions({"gone", "a"}) == {"a": [0, 1]}
    assert asked == [["a", "gone"]]
    assert monitor._partitions(set()) == {} and len(asked) == 1
