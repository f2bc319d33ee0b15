"""The benchmark's profile summary of py-spy's collapsed stacks (no broker)."""

from connectors.dev.bench import summarize_collapsed


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
