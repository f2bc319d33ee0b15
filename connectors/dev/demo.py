"""`zhucan demo`: the whole spine on real Kafka with the seed regions' sample people."""

from __future__ import annotations

import datetime as dt
import time

from connectors.dev.sample import seed_regions
from connectors.dev.workers import start_worker, stop_worker
from connectors.kafka_io import make_producer, read_to_end, read_topic
from schemas.codec import Codec
from streams.domain.ids import mask_id, person_key
from streams.domain.messages import FeeStandardIssued
from streams.domain.policy.decide import yuan
from streams.kafka.admin import ensure_topics
from streams.settings import Settings


def _say(msg: str) -> None:
    print(msg, flush=True)


def run_demo(settings: Settings, timeout_s: float = 180.0) -> int:
    codec = Codec()
    topics = settings.topics
    _say(f"== zhucan demo on Kafka at {settings.kafka_bootstrap_servers}")
    settings.warn_if_dev_secret()
    ensure_topics(settings)
    log_path = settings.data_dir / "demo-worker.log"
    worker = start_worker(settings, log_path)
    _say(f"== worker started (pid {worker.pid}, log {log_path})")
    try:
        sample = seed_regions()
        producer = make_producer(settings.kafka_bootstrap_servers)
        for ev in [*sample.events, *sample.bad_events]:
            producer.send(topics.identity[ev["source"]], key=ev["event_id"].encode(),
                          value=codec.encode("IdentityEvent", ev))
        for source, garbage in sample.garbage:
            producer.send(topics.identity[source], key=b"garbage", value=garbage)
        producer.flush()
        producer.close()
        n_events = len(sample.events) + len(sample.bad_events) + len(sample.garbage)
        _say(f"== sent {n_events} identity events ({len(sample.people)} people, "
             f"{len(sample.bad_events) + len(sample.garbage)} bad, 1 redelivery) to the department topics")
        secret = settings.secret_bytes
        wanted = {person_key(p.id_number, secret): p for p in sample.people}
        latest: dict[str, FeeStandardIssued] = {}

        done = [0]  # records already looked at

        def complete(records: list) -> bool:
            for r in records[done[0]:]:
                key = r.key.decode()
                fee = FeeStandardIssued.from_record(codec.decode(r.value, expect="FeeStandard")[1])
                if key in wanted:
                    prev = latest.get(key)
                    if prev is None or fee.version >= prev.version:
                        latest[key] = fee
            done[0] = len(records)
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with code {worker.returncode}; see {log_path}")
            return len(latest) == len(wanted)

        _say("== waiting for fee standards on " + topics.fee_standard + " ...")
        read_topic(settings.kafka_bootstrap_servers, topics.fee_standard, timeout_s=timeout_s, until=complete)
        rejections = [codec.decode(r.value, expect="Rejection")[1] for r in read_topic(
            settings.kafka_bootstrap_servers, topics.rejected, timeout_s=20,
            until=lambda rs: len(rs) >= len(sample.bad_events) + len(sample.garbage))]
        complete_standards = len(latest) == len(wanted)
        if complete_standards:
            cycle = _tax_cycle(settings, {(f.region_code, f.insurance_year) for f in latest.values()})
    finally:
        stop_worker(worker)
    _print_summary(sample, wanted, latest, rejections)
    if not complete_standards:
        _say(f"!! only {len(latest)} of {len(wanted)} people got a fee standard in {timeout_s:.0f}s; see {log_path}")
        return 1
    _print_cycle(*cycle)
    _say(f"\nThe local broker keeps running: `zhucan kafka down` stops it. Worker log: {log_path}")
    return 0


def _tax_cycle(settings: Settings, region_years: set[tuple[str, int]]):  # type: ignore[no-untyped-def]
    """Tax answers (simulated), then CHECK_COVERAGE per region and year, then the ledger."""
    from connectors.ops.control import send_control, wait_for_control
    from connectors.ops.ledger import coverage, suspected
    from connectors.taxsim import TaxBehaviour, run_tax_sim

    _say("== tax bureau (simulated) answers on " + settings.topics.payment_status + " ...")
    behaviour = TaxBehaviour(pay_share=0.7, reject_share=0.1, already_paid_share=0.1, seed="zhucan-demo")
    counts = run_tax_sim(settings, behaviour, group="zhucan-demo-tax", idle_exit_s=3.0, max_seconds=60)
    _say("   " + (", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "(already answered in an earlier run)"))
    as_of = dt.datetime.now(tz=dt.UTC)
    _say("== CHECK_COVERAGE for " + ", ".join(f"{r} {y}" for r, y in sorted(region_years)))
    for region, year in sorted(region_years):
        command_id = send_control(settings, "CHECK_COVERAGE", region, year, as_of)
        if not wait_for_control(settings, command_id, timeout_s=60):
            _say(f"!! the worker did not finish {command_id} in time")
    time.sleep(1.0)
    reviews = [Codec().decode(r.value, expect="ReviewCase")[1]
               for r in read_to_end(settings.kafka_bootstrap_servers, settings.topics.review)]
    from connectors.ops.ledger import publish_settlement, settlement

    lines = settlement(settings, None, None, as_of)
    publish_settlement(settings, lines)
    return coverage(settings), suspected(settings), reviews, lines


def _print_cycle(rows, people, reviews, lines) -> None:  # type: ignore[no-untyped-def]
    from connectors.ops.cli.money import print_coverage, print_suspected

    _say("\n== coverage (参保率) per region and year, against each region's target")
    print_coverage(rows)
    print_suspected(people)
    _say("\n== settlement (资助汇总表) of the enrolled, per class and funding source, on settlement.v1")
    for line in lines:
        spot = " 随参随缴" if line["on_the_spot"] else ""
        _say(f"  {line['region_code']} {line['insurance_year']} {line['category']:<26} {line['funding_source']:<24} "
             f"{line['persons']:>3} persons {yuan(line['subsidy_fen']):>10}{spot}")
    _say(f"\n== review cases for operators ({len(reviews)})")
    for case in reviews:
        amount = f" amount {yuan(case['amount_fen'])}" if case.get("amount_fen") is not None else ""
        _say(f"  {case['kind']:<17} {case.get('code', ''):<18} {case['insurance_year'] or '-'} "
             f"{mask_id(case['id_number']):<20}{amount}  {case['detail'][:100]}")


def _print_summary(sample, wanted, latest, rejections) -> None:  # type: ignore[no-untyped-def]
    _say("\n== fee standards (一人一档), latest version per person")
    header = f"{'ID (masked)':<20} {'name':<4} {'region':<6} {'year':<4} {'v':>2} {'class':<26} {'lvl':>3} {'premium':>9} {'subsidy':>9} {'payable':>9}  mode"
    _say(header)
    _say("-" * len(header))
    for key, person in wanted.items():
        fee = latest.get(key)
        if fee is None:
            _say(f"{mask_id(person.id_number):<20} {person.name:<4} {person.region:<6}  (no standard yet)")
            continue
        spot = " 随参随缴" if fee.on_the_spot else ""
        _say(f"{mask_id(fee.id_number):<20} {fee.name:<4} {fee.region_code:<6} {fee.insurance_year:<4} "
             f"{fee.version:>2} {fee.category:<26} {fee.contribution_level:>3} {yuan(fee.premium_fen):>9} "
             f"{yuan(fee.subsidy_fen):>9} {yuan(fee.payable_fen):>9}  {fee.payment_mode}{spot}")
    _say("\n== why (the basis of the latest version sent to tax), and the policy that decided")
    for key, person in wanted.items():
        fee = latest.get(key)
        if fee is not None:
            _say(f"{person.name} [{person.expect}] {fee.policy_id}\n    {fee.basis}")
    _say(f"\n== rejected, sent back to the department ({len(rejections)})")
    for rej in rejections:
        _say(f"{rej['source']:<22} {','.join(rej['reasons']):<24} {mask_id(rej['id_number']) or '-':<20} {rej['detail'][:90]}")
