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
