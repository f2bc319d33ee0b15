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
            money = _money_cycle(settings, codec)
    finally:
        stop_worker(worker)
    _print_summary(sample, wanted, latest, rejections)
    if not complete_standards:
        _say(f"!! only {len(latest)} of {len(wanted)} people got a fee standard in {timeout_s:.0f}s; see {log_path}")
        return 1
    _print_cycle(*cycle)
    _print_money(*money)
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
    time.sleep(settings.tuning.ledger_publish_s + 1.0)  # the ledger's totals are published every ledger_publish_s
    reviews = [Codec().decode(r.value, expect="ReviewCase")[1]
               for r in read_to_end(settings.kafka_bootstrap_servers, settings.topics.review)]
    from connectors.ops.ledger import settlement

    lines = settlement(settings, None, None, as_of)
    command_id = send_control(settings, "SETTLE", "", 0, as_of)  # the workers write settlement.v1
    if not wait_for_control(settings, command_id, timeout_s=60, parts=1):
        _say(f"!! the workers did not publish the settlement ({command_id}) in time")
    return coverage(settings), suspected(settings), reviews, lines


# The money flows' own people (CONTRACT additions 2026-12), certified after tax's answers above so
# that tax has answered none of them: (region, certified on, name, the claim of its flow or None).
MONEY_PEOPLE: tuple[tuple[str, dt.date, str, tuple[str, str, str, int] | str | None], ...] = (
    ("410102", dt.date(2024, 6, 1), "孙异", ("CROSS_REGION_ENROLMENT", "440106", "RESIDENT", 40000)),  # 豫 三、六
    ("500101", dt.date(2019, 7, 1), "周职", ("EMPLOYEE_INSURANCE", "500103", "EMPLOYEE", 180000)),  # 渝 三
    ("510402", dt.date(2021, 5, 1), "吴外", ("CROSS_REGION_ENROLMENT", "410102", "RESIDENT", 32000)),  # 攀 六(二)
    ("410102", dt.date(2024, 10, 1), "陈后", "paid in full"),  # tax: paid in full in the window, 豫 六
    ("371002", dt.date(2024, 6, 1), "郑渠", None),  # another funder's subsidy: DOUBLE_SUBSIDY
)


def _money_cycle(settings: Settings, codec: Codec):  # type: ignore[no-untyped-def]
    """Money to people: a county's cross-region claim (Henan, paid to the social-security card),
    an employee-insurance claim (Chongqing, payroll card and SMS), a cross-region claim Panzhihua
    refuses (攀医保〔2021〕58号 六(二)), and another funder's subsidy of a premium a standard
    subsidises too. Then every decision and instruction (tax's paid-in-full answers above give
    the post-hoc subsidies and refunds)."""
    from connectors.dev.sample import identity_event, make_id

    at = dt.datetime.now(tz=dt.UTC).replace(microsecond=0)
    producer = make_producer(settings.kafka_bootstrap_servers)
    people = []
    for n, (region, day, name, ask) in enumerate(MONEY_PEOPLE):
        idn = make_id(region, dt.date(1975, 3, 1), 900 + n)
        ev = identity_event(event_id=f"demo-money-{n}", source="CIVIL_AFFAIRS", id_number=idn, name=name,
                            category="MINIMUM_LIVING", region=region, effective=day,
                            occurred=dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC))
        producer.send(settings.topics.identity["CIVIL_AFFAIRS"], key=ev["event_id"].encode(),
                      value=codec.encode("IdentityEvent", ev))
        people.append((idn, name, ask))
    producer.flush()
    keys = {person_key(idn, settings.secret_bytes) for idn, _, _ in people}
    fees: dict[str, FeeStandardIssued] = {}

    def standards(records: list) -> bool:  # type: ignore[type-arg]
        for r in records:
            if r.key and r.key.decode() in keys:
                fee = FeeStandardIssued.from_record(codec.decode(r.value, expect="FeeStandard")[1])
                fees[fee.id_number] = fee
        return len(fees) == len(keys)

    read_topic(settings.kafka_bootstrap_servers, settings.topics.fee_standard, timeout_s=60, until=standards)
    asks = []
    for idn, name, ask in people:
        fee = fees.get(idn)
        if fee is not None and ask == "paid in full":  # tax's answer: the full premium was paid (post-hoc subsidy)
            producer.send(settings.topics.payment_status, key=f"demo-full-{idn[-4:]}".encode(), value=codec.encode(
                "PaymentStatus", {"ack_id": f"demo-full-{fee.message_id}", "id_number": idn,
                                  "insurance_year": fee.insurance_year, "fee_version": fee.version,
                                  "status": "ALREADY_PAID", "amount_fen": fee.premium_fen, "tax_reference": "demo",
                                  "acted_at": at, "contribution_level": None}))
        if fee is None or not isinstance(ask, tuple):
            continue
        kind, enrolled, scheme, paid = ask
        asks.append({"claim_id": f"demo-{kind.lower()}-{fee.region_code}-{fee.insurance_year}", "kind": kind,
                     "id_number": idn, "name": name, "insurance_year": fee.insurance_year,
                     "enrolled_region_code": enrolled, "scheme": scheme, "amount_paid_fen": paid, "paid_at": at,
                     "evidence": "demo-receipt",
                     # before Chongqing's 30 June of the year (渝医保发〔2019〕78号 三)
                     "submitted_at": dt.datetime(fee.insurance_year, 5, 20, tzinfo=dt.UTC)})
    for ask in asks:
        producer.send(settings.topics.claims, key=ask["claim_id"].encode(), value=codec.encode("SubsidyClaim", ask))
    funded = fees.get(people[-1][0])
    if funded is not None:
        producer.send(settings.topics.other_channel, key=b"demo-charity", value=codec.encode("OtherChannelSubsidy", {
            "record_id": f"demo-charity-{funded.insurance_year}", "funder": "慈善总会", "id_number": funded.id_number,
            "insurance_year": funded.insurance_year, "amount_fen": 10000, "reported_at": at}))
    producer.flush()
    producer.close()
    _say(f"== sent {len(asks)} claims to {settings.topics.claims} and 1 other-channel subsidy to "
         f"{settings.topics.other_channel}")
    wanted = {a["claim_id"] for a in asks}

    def decoded(records: list) -> dict[str, dict]:  # type: ignore[type-arg]
        return {d["claim_id"]: d for d in (codec.decode(r.value, expect="ClaimDecision")[1] for r in records)}

    decisions = decoded(read_topic(settings.kafka_bootstrap_servers, settings.topics.claim_decisions, timeout_s=60,
                                   until=lambda rs: wanted <= set(decoded(rs))))
    time.sleep(2.0)
    instructions = {i["instruction_id"]: i for i in (codec.decode(r.value, expect="PaymentInstruction")[1] for r in
                                                     read_to_end(settings.kafka_bootstrap_servers,
                                                                 settings.topics.instructions))}
    doubles = [c for c in (codec.decode(r.value, expect="ReviewCase")[1] for r in read_to_end(
        settings.kafka_bootstrap_servers, settings.topics.review)) if c.get("code") == "DOUBLE_SUBSIDY"]
    return list(decisions.values()), list(instructions.values()), doubles


def _print_money(decisions, instructions, doubles) -> None:  # type: ignore[no-untyped-def]
    _say(f"\n== claims decided ({len(decisions)}), one decision each (subsidy-claim.decided.v1)")
    for d in decisions:
        why = ",".join(d["reasons"]) or d.get("code") or ""
        _say(f"  {d['claim_id']:<44} {mask_id(d['id_number']):<20} {d['outcome']:<8} {yuan(d['amount_fen']):>10} {why}")
    _say(f"\n== payment instructions ({len(instructions)}): money to people, each cause once (payment-instruction.v1)")
    for i in instructions:
        sms = " + SMS" if i["notify_sms"] else ""
        _say(f"  {i['kind']:<26} {mask_id(i['id_number']):<20} {i['region_code']} {i['insurance_year']} "
             f"{yuan(i['amount_fen']):>10} via {i['channel']}{sms}")
    _say(f"\n== the same premium subsidised twice (DOUBLE_SUBSIDY review cases: {len(doubles)})")
    for case in doubles:
        _say(f"  {mask_id(case['id_number']):<20} {case['insurance_year']}  {case['detail'][:110]}")


def _print_cycle(rows, people, reviews, lines) -> None:  # type: ignore[no-untyped-def]
    from connectors.ops.cli.money import print_coverage, print_suspected

    _say("\n== coverage (参保率) per region and year, against each region's target")
    print_coverage(rows)
    print_suspected(people)
    _say("\n== settlement (资助汇总表) of the enrolled, per class and funding source, on settlement.v1")
    for line in lines:
        spot = " 随参随缴" if line["on_the_spot"] else ""
        kind = "" if line["kind"] == "ENROLMENT_SUBSIDY" else f" {line['kind']}"
        dept = f" ({line['department']})" if line["department"] else ""
        _say(f"  {line['region_code']} {line['insurance_year']} {line['category']:<26} {line['funding_source']:<24} "
             f"{line['persons']:>3} persons {yuan(line['subsidy_fen']):>10}{spot}{kind}{dept}")
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
