"""Operations on real Kafka: lag, metrics, dead letters, department import, the dashboard in Chromium."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from kafka import KafkaConsumer

from connectors.importer import run_import
from connectors.kafka_io import read_topic
from connectors.ops.cli import main
from connectors.ops.dlq import dead_letters, replay
from streams.kafka.lag import LagMonitor
from tests.fixtures import HENAN, event, new_id, payment


def lag_of(monitor: LagMonitor, group: str, samples: int = 3):
    for _ in range(samples):
        monitor.sample([group])
        time.sleep(0.3)
    (report,) = monitor.report([group])
    return report


def test_lag_grows_while_the_worker_is_stopped_and_returns_to_ok(running, monkeypatch, capsys):
    group = running.settings.app_id
    first = new_id()
    running.send_identity(event(first, "MINIMUM_LIVING"))
    running.fees_for(first, settle_s=1)
    monitor = LagMonitor(running.settings.kafka_bootstrap_servers, allowed_lag=0, window=3)
    try:
        assert lag_of(monitor, group).status == "OK"
        running.stop_worker()
        for _ in range(5):
            running.send_identity(event(new_id(), "MINIMUM_LIVING"))
        stopped = lag_of(monitor, group)
        assert stopped.total_lag >= 5 and stopped.status == "STOP" and stopped.members == 0
        behind = [p for p in stopped.partitions if p.lag]
        assert behind and all(p.seconds_behind >= 0 for p in behind)
        running.start_worker()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            report = lag_of(monitor, group)
            if report.status == "OK" and report.total_lag == 0:
                break
            time.sleep(1)
        assert (report.status, report.total_lag) == ("OK", 0)
    finally:
        monitor.close()
    running.cli_env(monkeypatch)
    assert main(["lag", "--group", group, "--json", "--samples", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (g,) = doc["groups"]
    assert g["group"] == group and g["status"] == "OK"
    for p in g["partitions"]:
        assert isinstance(p["topic"], str) and isinstance(p["partition"], int) and isinstance(p["lag"], int)


def test_a_stalled_group_is_flagged(stack):
    topic = stack.topics.identity["VETERANS"]
    for _ in range(30):
        stack.send_raw(topic, b"x", key=b"k")
    group = f"{stack.settings.app_id}-stuck"
    consumer = KafkaConsumer(bootstrap_servers=stack.settings.kafka_bootstrap_servers, group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=1)
    consumer.subscribe([topic])
    stop = threading.Event()
    deadline = time.monotonic() + 30
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(timeout_ms=200)
    consumer.commit({tp: _meta(1) for tp in consumer.assignment()})

    def keep_polling() -> None:  # a member that is alive but never moves its offset
        while not stop.is_set():
            consumer.poll(timeout_ms=100)
            for tp in consumer.assignment():
                consumer.seek(tp, 1)

    thread = threading.Thread(target=keep_polling, daemon=True)
    thread.start()
    monitor = LagMonitor(stack.settings.kafka_bootstrap_servers, allowed_lag=5)
    try:
        report = lag_of(monitor, group, samples=4)
        assert report.members == 1 and report.status == "STALL"
        assert any(p.status == "STALL" for p in report.partitions)
    finally:
        stop.set()
        thread.join(5)
        consumer.close()
        monitor.close()


def _meta(offset: int):
    from kafka.structs import OffsetAndMetadata

    return OffsetAndMetadata(offset, "", -1)


def test_metrics_endpoint_counts_in_prometheus_text(running):
    good, bad = new_id(), new_id()
    bad = bad[:17] + ("1" if bad[17] != "1" else "2")
    running.send_identity(event(good, "MINIMUM_LIVING"))
    running.send_identity(event(bad, "MINIMUM_LIVING"))
    running.send_raw(running.topics.identity["CIVIL_AFFAIRS"], b"junk")
    running.fees_for(good, settle_s=1)
    port = int(re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", running.worker_log()).group(1))
    deadline = time.monotonic() + 40
    while True:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        if "zhucan_consumer_lag{" in text or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert 'zhucan_events_in_total{source="CIVIL_AFFAIRS"} 2' in text
    assert 'zhucan_rejections_total{reason="ID_CHECKSUM"} 1' in text
    assert 'zhucan_dead_letters_total{error_class="FRAMING"} 1' in text
    assert 'zhucan_fee_standards_out_total{payment_mode="DIFFERENCE"} 1' in text
    assert "zhucan_decision_latency_seconds_count 1" in text and 'le="+Inf"} 1' in text
    assert "zhucan_consumer_lag{" in text
    assert good not in text and bad not in text


def test_dead_letters_list_show_and_replay_once(running, monkeypatch, capsys):
    topic = running.topics.identity["DISABILITY"]
    running.send_raw(topic, b"\xc3\x01 not really avro", key=b"dept-key")
    read_topic(running.settings.kafka_bootstrap_servers, running.topics.dead_letter, timeout_s=60,
               until=lambda rs: len(rs) >= 1)
    running.cli_env(monkeypatch)
    assert main(["dlq", "list"]) == 0
    out = capsys.readouterr().out
    assert "1 dead letters" in out and topic in out
    (letter,) = dead_letters(running.settings)
    assert main(["dlq", "show", letter.coordinate]) == 0
    shown = capsys.readouterr().out
    assert "zhucan.origin.topic: " + topic in shown and "still undecodable" in shown
    done = replay(running.settings, [letter])
    assert (done.sent, done.skipped, done.failed) == ([letter.coordinate], [], [])
    assert main(["dlq", "replay", letter.coordinate]) == 0  # a second replay sends nothing
    assert "replayed 0" in capsys.readouterr().out
    back = [r for r in read_topic(running.settings.kafka_bootstrap_servers, topic, timeout_s=20, idle_s=1)
            if r.value == b"\xc3\x01 not really avro"]
    assert len(back) == 2 and dict(back[1].headers)["zhucan.replayed-from"] == f"dlq:{letter.coordinate}".encode()


def test_dlq_show_shows_no_id_number_however_it_is_encoded(running, monkeypatch, capsys):
    """Issue #20 (7): `dlq show` printed the first bytes of the value in hex: JSON sent by mistake
    showed `{"id_number":"<full ID>` in hex, which an 18-digit sweep cannot see. The sweep of this
    suite (tests/integration/fixtures.full_ids) now looks in hex and base64 too."""
    import base64

    from tests.integration.fixtures import full_ids

    idn = new_id()
    assert full_ids(json.dumps({"id_number": idn}).encode().hex()) and full_ids(base64.b64encode(idn.encode()).decode())
    topic = running.topics.identity["VETERANS"]
    running.send_raw(topic, json.dumps({"id_number": idn, "event_id": f"{idn}-20241201"}).encode(), key=b"k")
    letters = read_topic(running.settings.kafka_bootstrap_servers, running.topics.dead_letter, timeout_s=60,
                         until=lambda rs: any(topic.encode() in dict(r.headers).get("zhucan.origin.topic", b"")
                                              for r in rs))
    assert letters
    running.cli_env(monkeypatch)
    (letter,) = [d for d in dead_letters(running.settings) if d.origin.startswith(topic)]
    assert main(["dlq", "show", letter.coordinate]) == 0
    shown = capsys.readouterr().out
    assert "no known framing" in shown and full_ids(shown) == [], shown


def test_import_reports_every_bad_row_publishes_good_ones_and_only_once(running, tmp_path, monkeypatch, capsys):
    good = [new_id() for _ in range(3)]
    bad_sum = new_id()
    bad_sum = bad_sum[:17] + ("1" if bad_sum[17] != "1" else "2")
    path = tmp_path / "民政-2024-06.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["姓名", "身份证号", "身份类别", "认定地区划代码", "生效日期", "变动类型", "学生儿童"])
        for idn in good:
            w.writerow(["好", idn, "低保对象", HENAN, "2024-06-01", "认定", "否"])
        w.writerow(["坏1", bad_sum, "低保对象", HENAN, "2024-06-01", "认定", "否"])
        w.writerow(["坏2", new_id(), "无此类别", HENAN, "2024-06-01", "认定", "否"])
        w.writerow(["坏3", new_id(), "低保对象", "4101", "2024-06-01", "认定", "否"])
    running.cli_env(monkeypatch)
    assert main(["import", "--source", "civil-affairs", str(path)]) == 3  # some rows were bad
    out = capsys.readouterr().out
    assert "6 rows: 3 published, 3 bad" in out
    report = list(csv.reader(open(str(path) + ".errors.csv", encoding="utf-8-sig")))[1:]
    assert sorted((r[0], r[2]) for r in report) == [("5", "ID_CHECKSUM"), ("6", "UNKNOWN_CATEGORY"),
                                                    ("7", "UNKNOWN_REGION")]
    for idn in good:
        assert len(running.fees_for(idn, settle_s=0)) == 1
    topic = running.topics.identity["CIVIL_AFFAIRS"]
    before = len(read_topic(running.settings.kafka_bootstrap_servers, topic, timeout_s=20, idle_s=1))
    assert main(["import", "--source", "civil-affairs", str(path)]) == 0
    assert "already imported" in capsys.readouterr().out
    forced = run_import(running.settings, "civil-affairs", path, force=True, quiet=True)
    assert forced.published == 3  # forced: sent again, with the same content-derived event ids
    after = read_topic(running.settings.kafka_bootstrap_servers, topic, timeout_s=20, idle_s=1)
    assert len(after) == before + 3
    time.sleep(2)
    for idn in good:
        assert len(running.fees_for(idn, settle_s=0)) == 1  # the broker saw redeliveries: nothing new


def test_dashboard_shows_lag_throughput_rejections_and_coverage_in_chromium(running, tmp_path):
    """Issue #24, 4: the page in Chinese with English beside, its charts drawn from the ledger's
    totals and the dashboard's own samples; read in Chromium (the DOM), and photographed (the
    README's screenshot: ZHUCAN_SCREENSHOT=docs/dashboard.png)."""
    from connectors.ops.dashboard import DashboardState, serve_dashboard

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout if shutil.which("fc-list") else ""
    assert fonts.strip(), "no CJK font: `make install` (deploy/ensure-system.sh chromium) installs fonts-wqy-zenhei"
    assert chromium, "Chromium is missing: `make install` (deploy/ensure-system.sh) installs Debian's chromium"
    good, bad = new_id(), new_id()
    bad = bad[:17] + ("1" if bad[17] != "1" else "2")
    running.send_identity(event(good, "MINIMUM_LIVING"))
    running.send_identity(event(bad, "MINIMUM_LIVING"))
    running.fees_for(good, settle_s=1)
    running.read(running.topics.rejected, "Rejection", until=lambda rs: len(rs) >= 1)
    paid = new_id()  # one person enrolled: the settlement chart has a bar
    running.send_identity(event(paid, "MINIMUM_LIVING"))
    running.fees_for(paid, settle_s=0)
    running.send_payment(payment(paid, 2025, 1, "PAID", 12000))
    state = DashboardState(running.settings, interval_s=1.0, coverage_every_s=0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the ledger's totals count the payment within ledger_publish_s
        state.refresh()
        if any(r["enrolled"] for r in state.snapshot()["coverage"]):
            break
        time.sleep(0.5)
    state.refresh()
    server = serve_dashboard(state, "127.0.0.1", 0)
    shot = Path(os.environ.get("ZHUCAN_SCREENSHOT") or tmp_path / "dashboard.png").resolve()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--virtual-time-budget=10000"]
        proc = subprocess.run([*flags, f"--user-data-dir={tmp_path / 'profile-dom'}", "--dump-dom", url],
                              capture_output=True, text=True, timeout=120)
        photo = subprocess.run([*flags, f"--user-data-dir={tmp_path / 'profile-shot'}", "--window-size=1400,1500",
                                "--hide-scrollbars", f"--screenshot={shot}", url], capture_output=True, text=True,
                               timeout=120)
    finally:
        server.shutdown()
        state.stop()
    dom = proc.stdout
    assert "zhucan 助参 — 运行监控" in dom and "operations" in dom, proc.stderr[-2000:]
    assert "更新于 updated 20" in dom  # the script ran and filled the page
    assert "Noto Sans CJK SC" in dom  # a CJK font stack
    # the charts, read off their marks: lag and throughput over the samples, coverage per county
    # against the 99% line, settlement by funding source, from the ledger's totals
    assert re.search(rf'<polyline [^>]*data-series="{re.escape(running.settings.app_id)}"', dom)
    assert re.search(r'<polyline [^>]*data-series="fee standards out"[^>]*data-points="[1-9]', dom)
    assert re.search(r'<rect [^>]*data-label="410102 2025" data-value="(0\.\d+|1)"', dom)  # enrolled / live
    assert 'data-target="0.99"' in dom and "99% 目标 target" in dom
    assert re.search(r'<rect [^>]*data-label="医疗救助基金" data-value="(\d+)', dom)
    assert "医疗救助基金 MEDICAL_ASSISTANCE_FUND" in dom
    assert photo.returncode == 0 and shot.stat().st_size > 20_000, photo.stderr[-2000:]
    assert f"<td class=\"l\">{running.settings.app_id}</td>" in dom  # the worker's group, with its status
    assert re.search(rf"{re.escape(running.settings.app_id)}</td><td class=\"(OK|WARN|STALL|STOP)\">", dom)
    assert "identity events in" in dom and "fee standards out" in dom
    assert "<td class=\"l\">ID_CHECKSUM</td><td>1</td>" in dom
    assert re.search(r'<td class="l">410102</td><td>2025</td><td>\d+</td><td>[1-9]\d*</td>', dom)
    assert good not in dom and bad not in dom
