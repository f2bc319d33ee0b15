"""``zhucan bench --in-process``: the intake and the person stage measured with no broker. Only
that it ran the whole batch through both stages is asserted, never a time."""

from connectors.dev.hotpath import measure


def test_the_in_process_measure_runs_the_batch_through_both_stages():
    from connectors.dev.bench import synthetic_events

    found = measure(3000)
    _, people, valid = synthetic_events(3000)
    assert found["events"] == 3000
    assert len(valid) <= found["fee_standards"] <= 2 * people  # every valid person decided (a second class: v2)
    assert found["batch_records"] >= 4  # the intake grouped the events by person partition (4 here)
    assert found["intake_us_per_event"] > 0 and found["person_us_per_event"] > 0
