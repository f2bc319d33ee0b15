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


def test_the_in_process_measure_runs_with_the_workers_heap_settings_and_restores_the_process(monkeypatch):
    """As a worker (``settle_heap``: what was built before the clock frozen, young collections
    rarer), or its figure carries collections of the province's records a worker never holds;
    and the process's collector is given back as it was."""
    import gc

    import connectors.dev.hotpath as hotpath
    from streams.settings import Tuning

    seen = []
    real = hotpath.settle_heap

    def settle(threshold):
        real(threshold)
        seen.append((threshold, gc.get_threshold()[0], gc.get_freeze_count()))

    monkeypatch.setattr(hotpath, "settle_heap", settle)
    before = gc.get_threshold(), gc.get_freeze_count()
    hotpath.measure(500)
    assert seen and all(t == got == Tuning().gc_young_threshold and frozen > 10_000 for t, got, frozen in seen)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_zhucan_bench_in_process_writes_its_figures_and_the_interpreter(tmp_path, capsys):
    import json

    from connectors.ops.cli import main

    out = tmp_path / "in-process.json"
    assert main(["bench", "--in-process", "--events", "500", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["events"] == 500 and doc["person_us_per_event"] > 0
    assert doc["machine"].startswith("Python ") and "machine" in capsys.readouterr().out


def test_a_province_certified_over_the_years_is_the_same_people_on_other_days():
    """``--spread-days``: the same people, classes and records, certified on days up to that many
    before their region's day; fewer newcomers share their facts, so fewer are remembered."""
    import datetime as dt

    from connectors.dev.bench import synthetic_events
    from schemas.codec import Codec

    codec = Codec()
    one_day, people, valid = synthetic_events(2000)
    spread, people_spread, valid_spread = synthetic_events(2000, spread_days=365)
    assert (people, valid) == (people_spread, valid_spread)
    days = set()
    for (topic, key, value), (topic2, key2, value2) in zip(one_day, spread, strict=True):
        a, b = codec.decode(value)[1], codec.decode(value2)[1]
        assert (topic, key) == (topic2, key2) and {**a, "effective_date": None} == {**b, "effective_date": None}
        assert dt.timedelta(0) <= a["effective_date"] - b["effective_date"] < dt.timedelta(days=365)
        days.add(b["effective_date"])
    assert len(days) > 300
    one_day_measure = measure(2000)
    assert measure(2000, spread_days=365)["newcomers_remembered"] < one_day_measure["newcomers_remembered"]
    assert one_day_measure["second_identities_remembered"] > 0.5  # the second class of a person of shared facts
