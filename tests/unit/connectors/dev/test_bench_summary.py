"""The benchmark's profile summary of py-spy's collapsed stacks (no broker)."""

from connectors.dev.bench import summarize_collapsed, summarize_perf


def test_self_and_inclusive_shares_of_collapsed_stacks():
    text = ("main (cli.py:1);handle (intake.py:10);decode (codec.py:90) 6\n"
            "main (cli.py:1);handle (intake.py:12);validate (validation.py:49) 3\n"
            "main (cli.py:1);poll (selectors.py:468) 1\n")
    out = summarize_collapsed(text)
    assert out.startswith("10 samples")
    own, inclusive = out.split("inclusive:")
    assert "60.0%  decode (codec.py)" in own and "30.0%  validate (validation.py)" in own
    assert "90.0%  handle (intake.py)" in inclusive  # two lines of one function count once per stack
    assert "100.0%  main (cli.py)" in inclusive


def test_no_samples_says_so():
    assert summarize_collapsed("") == "no samples\n"
    assert summarize_perf("# Samples: 0\n") == "no samples\n"


def test_perfs_report_by_part_shared_object_and_symbol():
    """``ZHUCAN_BENCH_PROFILE=perf``: what of a worker's CPU is the interpreter running Python,
    and what is compiled code (issue #25, part 2: where a native lever could act)."""
    report = """# Samples: 3K of event 'cpu-clock:pppH'
#
# Overhead  Shared Object  Symbol
# ........  .............  ......
#
    50.00%  libpython3.11.so.1.0     [.] _PyEval_EvalFrameDefault
    10.00%  libpython3.11.so.1.0     [.] _PyObject_Malloc
    10.00%  python3.11               [.] _PyEval_EvalFrameDefault
     8.00%  libc.so.6                [.] __memmove_avx512_unaligned_erms
     6.00%  rocksdict.cpython-311-x86_64-linux-gnu.so  [.] rocksdb::crc32c::Extend
     4.00%  [kernel.kallsyms]        [k] exc_page_fault
     2.00%  orjson.cpython-311-x86_64-linux-gnu.so  [.] orjson::serialize::Serializer::serialize
"""
    out = summarize_perf(report)
    parts, rest = out.split("by shared object:")
    shared, symbols = rest.split("symbols:")
    # shares of what was sampled (90% here): 70 of 90 in the interpreter, whichever build holds it
    assert "77.8%  the interpreter (CPython)" in parts
    assert "8.9%  extensions and libraries (C, C++, Rust)" in parts
    assert "8.9%  libc (memory, copies)" in parts and "4.4%  the kernel" in parts
    assert "66.7%  libpython3.11.so.1.0" in shared and "6.7%  rocksdict" in shared
    first = symbols.strip().splitlines()[0]
    assert first == "55.6%  _PyEval_EvalFrameDefault (libpython3.11.so.1.0)"
    assert "orjson::serialize::Serializer::serialize (orjson" in symbols


def test_the_clock_starts_at_the_first_record_taken_in_or_earlier_never_later():
    """Issue #25, 1: the clock of a backlog run started when the groups were stable, while the
    workers had been taking in the backlog since they held partitions (a small run once said
    20,000,000 events/s)."""
    from connectors.dev.bench import batch_clock

    started, stable = 1_000, 9_000  # the workers start; their groups are stable 8 s later
    # a backlog the workers began at 4,200 and 4,350 ms, and finished before the groups were stable
    clock = batch_clock("backlog", started, None, [4_350, 4_200])
    assert clock == 4_200 and clock < stable
    last_standard = 8_500
    assert (last_standard - clock) / 1000 == 4.3  # seconds, never negative or near zero
    # a worker that does not say when it began (metrics off, an older version): the workers'
    # start, earlier than any record they could take in
    assert batch_clock("backlog", started, None, [None, None]) == started
    assert batch_clock("backlog", started, None, [None, 4_200]) == 4_200
    # live: the bench starts producing before anything can be taken in, unless a worker says otherwise
    assert batch_clock("live", started, 10_000, [10_040]) == 10_000
    assert batch_clock("live", started, 10_000, [9_990]) == 9_990


def test_done_is_the_first_look_of_a_confirmed_quiet_spell_and_its_cpu_is_read_then():
    """Issue #25 (1): the batch is done only when every group has committed to the end and every
    valid person has a standard; the workers' CPU is read at the look that first saw every group
    at the end (the work all done: a group commits only acknowledged effects), not at the end of
    the quiet spell and the count that make the bench sure, while the workers idle."""
    from connectors.dev.bench import caught_up

    now = [0.0]
    cpu = [0.0]
    # the groups' lag at each look (a look every 0.25 s): at the end at 1.0 s, lag again at
    # 1.5 s (a spell broken: not done), at the end for good from 2.0 s
    lagging = {0.0, 0.25, 0.5, 0.75, 1.5, 1.75}
    counts = []

    def committed_to_end() -> bool:
        return now[0] not in lagging

    def sleep(s: float) -> None:
        now[0] = round(now[0] + s, 2)
        cpu[0] = round(cpu[0] + (1.0 if now[0] <= 2.0 else 0.06) * s, 4)  # busy, then idle

    def missing() -> tuple[int, list[tuple[bytes, int, bytes]]]:
        counts.append(now[0])
        return 0, [(b"k", 1, b"v")]

    left, fees, cpu_done = caught_up(committed_to_end, missing, lambda: cpu[0], 60, quiet_s=3.0,
                                     every_s=0.25, clock=lambda: now[0], sleep=sleep)
    assert (left, fees) == (0, [(b"k", 1, b"v")])
    assert counts == [5.0]  # counted once, after 3 s at the end from 2.0 s
    assert cpu_done == 2.0  # read at 2.0 s, the first look of the spell that held (not at 1.0 s)
    assert cpu[0] > cpu_done  # what the workers used idle while the bench made sure is left out

    # people still missing after a quiet spell: not done; the next spell's first look counts
    now[0], cpu[0], lagging, counts = 0.0, 0.0, set(), []
    answers = iter([(3, [(b"k", 1, b"v")]), (0, [(b"k", 1, b"v"), (b"m", 2, b"w")])])

    def missing_then_none() -> tuple[int, list[tuple[bytes, int, bytes]]]:
        counts.append(now[0])
        return next(answers)

    left, fees, cpu_done = caught_up(committed_to_end, missing_then_none, lambda: cpu[0], 60, quiet_s=3.0,
                                     every_s=0.25, clock=lambda: now[0], sleep=sleep)
    assert left == 0 and len(fees) == 2
    assert counts == [3.0, 6.25] and cpu_done == cpu_at(3.25)

    # never done: after the timeout, the people still missing (with the records seen), or an error
    now[0], cpu[0], counts = 0.0, 0.0, []
    left, fees, _ = caught_up(committed_to_end, lambda: (2, [(b"k", 1, b"v")]), lambda: cpu[0], 10,
                              quiet_s=3.0, every_s=0.25, clock=lambda: now[0], sleep=sleep)
    assert left == 2 and fees == [(b"k", 1, b"v")]
    now[0] = 0.0
    import pytest

    with pytest.raises(TimeoutError):
        caught_up(lambda: False, missing, lambda: 0.0, 2, clock=lambda: now[0], sleep=sleep)


def cpu_at(t: float) -> float:
    """The fake workers' CPU at ``t`` s: one core until 2 s, 0.06 after (as ``sleep`` adds it)."""
    return round(min(t, 2.0) + max(t - 2.0, 0.0) * 0.06, 4)


def test_the_longest_wait_after_a_kill_per_partition():
    """Issue #25 (4): from the kill, the longest time each partition went without a fee standard:
    the kill to its first one, or a later gap; a partition with none after the kill had nothing
    left to decide and is left out."""
    from connectors.dev.bench import kill_waits

    kill = 10_000
    fees = [(0, 9_000), (0, 9_900),  # before the kill: not counted
            (0, 12_000), (0, 12_500), (0, 19_500),  # 2.0 s to the first, then a 7.0 s gap
            (1, 10_400), (1, 10_800),  # the survivor's partition: 0.4 s
            (2, 9_950)]  # done before the kill
    assert kill_waits(fees, kill) == {0: 7.0, 1: 0.4}
    assert kill_waits([], kill) == {}


def test_a_workers_instance_id_reaches_both_of_its_groups(tmp_path):
    """Static membership (ZHUCAN_INSTANCE_ID): the Faust app's consumer and the intake's, each
    with its own name derived from it; none without it (dynamic membership, as before)."""
    from streams.app import create_app
    from streams.runtime.intake_loop import IntakeService
    from streams.settings import Settings
    from tests.fixtures import shipped_book

    for instance, streams_id, intake_id in (("host-a-w1", "host-a-w1-streams", "host-a-w1-intake"),
                                            (None, None, None)):
        settings = Settings(kafka_bootstrap_servers="localhost:1", data_dir=tmp_path, app_id="static-test",
                            instance_id=instance)
        app = create_app(settings, shipped_book())
        assert app.faust.conf.consumer_group_instance_id == streams_id
        assert IntakeService.consumer_config(settings)["group_instance_id"] == intake_id


def test_both_groups_of_a_worker_heartbeat_every_second(tmp_path):
    """A member learns of a rebalance at its next heartbeat: both of a worker's groups heartbeat
    every ``heartbeat_s`` (1 s; the clients' default was 3 s), and Faust hands it to its consumer."""
    from streams.app import create_app
    from streams.runtime.intake_loop import IntakeService
    from streams.settings import Settings, Tuning
    from tests.fixtures import shipped_book

    for tuning, ms in ((Tuning(), 1000), (Tuning(heartbeat_s=2.5), 2500)):
        settings = Settings(kafka_bootstrap_servers="localhost:1", data_dir=tmp_path, app_id="beat-test", tuning=tuning)
        app = create_app(settings, shipped_book())
        assert app.faust.conf.broker_heartbeat_interval == ms / 1000
        assert IntakeService.consumer_config(settings)["heartbeat_interval_ms"] == ms
        assert app.faust.conf.broker_session_timeout >= 3 * ms / 1000


def test_the_bench_says_which_interpreter_ran_it():
    """The interpreter's build moves the figures as much as a lever of the code (docs/performance.md):
    the result says its version, path and whether this process calls a shared libpython, and
    whether the C fast paths ran."""
    import sys
    from pathlib import Path

    from connectors.dev.bench import interpreter

    said = interpreter()
    assert said.startswith(f"Python {sys.version.split()[0]} ({sys.executable}, libpython ")
    mapped = "libpython" in Path("/proc/self/maps").read_text()
    from schemas import native

    assert said.endswith(("libpython shared); " if mapped else "libpython linked in); ") + native.status())


def test_the_cores_busy_during_the_latency_run():
    """Issue #25 (3): the p99 after a batch is read next to the cores in use while the events were
    offered (a p99 on a machine whose cores are all busy is a queue for them): busy is everything
    but idle and iowait, over all the machine's cores, between two readings."""
    from connectors.dev.bench import busy_cores, machine_jiffies

    # /proc/stat's ticks: user nice system idle iowait irq softirq steal
    before = (100 + 0 + 50 + 0 + 0 + 0 + 0, 100 + 0 + 50 + 800 + 50 + 0 + 0 + 0)
    after = (before[0] + 120 + 30 + 10, before[1] + 120 + 30 + 10 + 30 + 10)  # 160 busy of 200 ticks
    assert busy_cores(before, after, cores=2) == 1.6
    assert busy_cores(before, before, cores=2) is None  # no time passed: no figure, not 0
    busy, everything = machine_jiffies()
    assert 0 < busy <= everything  # this machine has run something since it booted


def test_the_latency_runs_events_are_built_before_its_clock(tmp_path):
    """The paced loop only sends: each event, its key and the person key its fee standard will
    carry are built first (building them inside the loop cost the bench a share of the cores it
    measured). Each is a new person of the same region, a valid department record."""
    from connectors.dev.bench import latency_events
    from schemas.codec import Codec
    from streams.domain.ids import person_key
    from streams.settings import Settings

    settings = Settings(kafka_bootstrap_servers="localhost:1", data_dir=tmp_path, app_id="lat-test",
                        topic_prefix="lat.")
    events = latency_events(settings, 1500)
    assert len(events) == 1500 and len({person for *_, person in events}) == 1500
    topic, key, value, person = events[1234]
    assert topic == settings.topics.identity["CIVIL_AFFAIRS"]
    name, record = Codec().decode(value, expect="IdentityEvent")
    assert record["event_id"].encode() == key and record["category"] == "MINIMUM_LIVING"
    assert person == person_key(record["id_number"], settings.key_secret.get_secret_value().encode()).encode()


def test_the_share_of_the_machine_stolen_during_the_batch(tmp_path, monkeypatch):
    """Steal is /proc/stat's eighth field, as a share of every core's time between two reads."""
    from connectors.dev import bench

    assert bench.steal_share((10, 1000), (60, 2000)) == 0.05
    assert bench.steal_share((10, 1000), (10, 1000)) is None  # no time passed: no figure, not 0
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 1 2 3\n")
    real = bench.Path

    def fake(p: object) -> object:
        return stat if str(p) == "/proc/stat" else real(p)

    monkeypatch.setattr(bench, "Path", fake)
    assert bench.stolen_jiffies() == (35, 1000)
    stat.write_text("cpu  100 0 50 800\n")  # a kernel without the field
    assert bench.stolen_jiffies() == (0, 0)


def test_the_cpu_per_event_in_the_records_the_ceiling_moves_with_it():
    """The same code took 66.6 µs per event when kafka-python's ceiling was 21,500 records/s and
    42.4 when it was 35,929 (2026-12-07): as records of that ceiling, 1.43 and 1.52."""
    from connectors.dev.bench import BenchResult, in_ceiling_records

    assert in_ceiling_records(66.6, 21_500.0) == 1.43
    assert in_ceiling_records(42.4, 35_929.0) == 1.52
    assert in_ceiling_records(42.4, 0.0) is None  # no ceiling measured
    assert in_ceiling_records(0.0, 35_929.0) is None
    assert "worker_cpu_in_ceiling_records" in BenchResult.__dataclass_fields__

