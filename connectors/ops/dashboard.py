"""`zhucan dashboard`: one page for operators: lag with status, throughput, rejections, offset
repairs, coverage.

A background thread samples Kafka (lag through the admin client, throughput from end
offsets, rejections by reason from ``identity.rejected.v1``, what the workers' offset guards
did from ``zhucan.offset-repairs``, coverage from the ledger)
and the page polls ``/api/state``. Only counts and region codes are shown: no personal
data, and nothing like Faust's ``/table`` view.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import OffsetSpec

from connectors.ops.ledger import coverage
from schemas.codec import Codec
from schemas.exceptions import DecodeError
from streams.kafka.lag import LagMonitor
from streams.kafka.security import kafka_python_config
from streams.settings import Settings

log = logging.getLogger("zhucan.dashboard")


class DashboardState:
    def __init__(self, settings: Settings, interval_s: float = 3.0, coverage_every_s: float = 30.0) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.coverage_every_s = coverage_every_s
        self.monitor = LagMonitor(settings.kafka_bootstrap_servers)
        self.codec = Codec()
        self.lock = threading.Lock()
        self.state: dict[str, Any] = {"updated": None, "lag": [], "throughput": {}, "rejections": {},
                                      "repairs": [], "repairs_total": 0, "coverage": [], "claims": {}}
        self._repairs: list[dict[str, Any]] = []
        self._repairs_total = 0
        self._repairs_consumer: KafkaConsumer | None = None
        self._claims_consumer: KafkaConsumer | None = None
        self._claims: dict[str, int] = {}
        self._claim_ids: set[str] = set()
        self._ends: dict[str, tuple[float, int]] = {}
        self._rejections: dict[str, int] = {}
        self._rejected_consumer: KafkaConsumer | None = None
        self._coverage_at = 0.0
        self._stop = threading.Event()

    # -- sampling ---------------------------------------------------------------
    def _throughput(self) -> dict[str, float]:
        t = self.settings.topics
        watched = {"identity events in": list(t.identity.values()), "fee standards out": [t.fee_standard],
                   "rejections": [t.rejected], "payment acks in": [t.payment_status]}
        consumer = self._peek()
        tps = {name: [TopicPartition(topic, p) for topic in topics for p in (consumer.partitions_for_topic(topic) or [])]
               for name, topics in watched.items()}
        all_tps = [tp for group in tps.values() for tp in group]
        ends = self.monitor.admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in all_tps}) if all_tps else {}
        now = time.time()
        rates = {}
        for name, group in tps.items():
            total = sum(int(ends[tp].offset) for tp in group if tp in ends)
            before = self._ends.get(name)
            rates[name] = round((total - before[1]) / (now - before[0]), 1) if before and now > before[0] else 0.0
            self._ends[name] = (now, total)
            rates[name + " (total)"] = total
        return rates

    def _peek(self) -> KafkaConsumer:
        if self._rejected_consumer is None:
            self._rejected_consumer = KafkaConsumer(**kafka_python_config(self.settings.kafka_bootstrap_servers),
                                                    group_id=None, enable_auto_commit=False,
                                                    client_id="zhucan-dashboard")
        return self._rejected_consumer

    @staticmethod
    def _follow(consumer: KafkaConsumer, topic: str) -> Iterator[Any]:
        """The records of ``topic`` not read yet by ``consumer`` (from the beginning at first)."""
        if not consumer.assignment():
            parts = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or [])]
            if not parts:
                return
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
        for _ in range(20):
            polled = consumer.poll(timeout_ms=200, max_records=5000)
            if not polled:
                break
            for records in polled.values():
                yield from records

    def _count_rejections(self) -> dict[str, int]:
        for rec in self._follow(self._peek(), self.settings.topics.rejected):
            try:
                _, value = self.codec.decode(rec.value, expect="Rejection")
            except DecodeError:
                continue
            for reason in value["reasons"]:
                self._rejections[reason] = self._rejections.get(reason, 0) + 1
        return dict(self._rejections)

    def _count_claims(self) -> dict[str, int]:
        """Claims decided, per outcome (each claim id once: it has one decision)."""
        if self._claims_consumer is None:
            self._claims_consumer = KafkaConsumer(**kafka_python_config(self.settings.kafka_bootstrap_servers),
                                                  group_id=None, enable_auto_commit=False,
                                                  client_id="zhucan-dashboard-claims")
        for rec in self._follow(self._claims_consumer, self.settings.topics.claim_decisions):
            try:
                _, value = self.codec.decode(rec.value, expect="ClaimDecision")
            except DecodeError:
                continue
            if value["claim_id"] not in self._claim_ids:
                self._claim_ids.add(value["claim_id"])
                self._claims[value["outcome"]] = self._claims.get(value["outcome"], 0) + 1
        return dict(self._claims)

    def _read_repairs(self, keep: int = 20) -> tuple[list[dict[str, Any]], int]:
        """The latest offset repairs (newest first) and how many there were in all."""
        if self._repairs_consumer is None:
            self._repairs_consumer = KafkaConsumer(**kafka_python_config(self.settings.kafka_bootstrap_servers),
                                                   group_id=None, enable_auto_commit=False,
                                                   client_id="zhucan-dashboard-repairs")
        for rec in self._follow(self._repairs_consumer, self.settings.topics.offset_repairs):
            try:
                note = json.loads(rec.value)
            except (ValueError, TypeError):
                continue
            self._repairs_total += 1
            self._repairs.append({k: note.get(k) for k in ("kind", "topic", "partition", "expected", "seen")}
                                 | {"at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(note.get("at_ms", 0) / 1000))})
        self._repairs = sorted(self._repairs, key=lambda n: n["at"])[-keep:]
        return list(reversed(self._repairs)), self._repairs_total

    def refresh(self) -> None:
        groups = self.monitor.groups()
        self.monitor.sample(groups)
        lag = [g.as_dict() for g in self.monitor.report(groups)]
        for g in lag:  # keep the page small: partitions that are not OK, plus totals
            g["partitions"] = [p for p in g["partitions"] if p["status"] != "OK" or p["lag"]]
        throughput = self._throughput()
        rejections = self._count_rejections()
        repairs, repairs_total = self._read_repairs()
        update: dict[str, Any] = {"updated": time.strftime("%Y-%m-%d %H:%M:%S"), "lag": lag,
                                  "throughput": throughput, "rejections": rejections, "repairs": repairs,
                                  "repairs_total": repairs_total, "claims": self._count_claims()}
        if time.monotonic() - self._coverage_at > self.coverage_every_s:
            self._coverage_at = time.monotonic()
            update["coverage"] = [r.as_dict() for r in coverage(self.settings, by="county")]
        with self.lock:
            self.state.update(update)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as exc:  # the page shows stale data rather than dying
                log.warning("dashboard refresh failed: %s", exc)
                with self.lock:
                    self.state["error"] = str(exc)
            self._stop.wait(self.interval_s)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self.state))

    def stop(self) -> None:
        self._stop.set()


PAGE = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>zhucan 助参 — operations</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.4em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.OK{color:#176b24;font-weight:bold}
.WARN,.BELOW{color:#a66300;font-weight:bold}.STALL,.STOP,.REWIND{color:#b00020;font-weight:bold}
#updated{color:#666}.note{color:#555;font-size:.9em}
</style></head><body>
<h1>zhucan 助参 — operations <span id="updated">loading…</span></h1>
<h2>Consumer lag</h2><table id="lag"><tr><th class="l">group</th><th>status</th><th class="l">state</th><th>members</th><th>total lag</th><th class="l">partitions not OK</th></tr></table>
<h2>Throughput (records/s)</h2><table id="throughput"><tr><th class="l">stream</th><th>per second</th><th>total</th></tr></table>
<h2>Rejections by reason</h2><table id="rejections"><tr><th class="l">reason</th><th>count</th></tr></table>
<h2>Claims for money to people, by outcome</h2><table id="claims"><tr><th class="l">outcome</th><th>claims</th></tr></table>
<h2>Offset repairs (<span id="repairs_total">0</span> in all; the latest)</h2>
<p class="note">A record of zhucan.person-commands came before the one due and the missing ones were read and applied (GAP_FILLED), or could not be read and the partition was sought back (GAP_REWIND); commits had stopped and were healed (COMMIT_STALL); records were deleted before they were applied (GAP_ACCEPTED, an error).</p>
<table id="repairs"><tr><th class="l">when</th><th class="l">kind</th><th class="l">partition</th><th>due offset</th><th>seen</th></tr></table>
<h2>Coverage per region and year, against each region's target</h2>
<table id="coverage"><tr><th class="l">region</th><th>year</th><th>live</th><th>enrolled</th><th>rate</th><th>target</th><th>status</th></tr></table>
<script>
function row(cells){const tr=document.createElement('tr');for(const [v,c] of cells){const td=document.createElement('td');td.textContent=v;if(c)td.className=c;tr.appendChild(td)}return tr}
function fill(id,rows){const t=document.getElementById(id);while(t.rows.length>1)t.deleteRow(1);for(const r of rows)t.appendChild(row(r))}
async function load(){
  const s=await (await fetch('/api/state')).json();
  document.getElementById('updated').textContent='updated '+(s.updated||'…')+(s.error?' (error: '+s.error+')':'');
  fill('lag',s.lag.map(g=>[[g.group,'l'],[g.status,g.status],[g.state,'l'],[g.members],[g.total_lag],
    [g.partitions.map(p=>p.topic+'['+p.partition+'] lag '+p.lag+' '+p.status).join('; ')||'-','l']]));
  const tp=Object.keys(s.throughput).filter(k=>!k.endsWith('(total)'));
  fill('throughput',tp.map(k=>[[k,'l'],[s.throughput[k]],[s.throughput[k+' (total)']]]));
  fill('rejections',Object.entries(s.rejections).map(([k,v])=>[[k,'l'],[v]]));
  fill('claims',Object.entries(s.claims||{}).map(([k,v])=>[[k,'l'],[v]]));
  document.getElementById('repairs_total').textContent=s.repairs_total;
  fill('repairs',s.repairs.map(r=>[[r.at,'l'],[r.kind,r.kind=='GAP_ACCEPTED'?'STALL':'WARN'],[r.topic+'['+r.partition+']','l'],[r.expected],[r.seen]]));
  fill('coverage',s.coverage.map(r=>[[r.region_code,'l'],[r.insurance_year],[r.live],[r.enrolled],
    [(r.rate*100).toFixed(1)+'%'],[r.target==null?'-':(r.target*100).toFixed(0)+'%'],
    r.meets_target==null?['no policy','l']:[r.meets_target?'OK':'BELOW',r.meets_target?'OK':'BELOW']]));
}
load();setInterval(load,3000);
</script></body></html>
"""


def serve_dashboard(state: DashboardState, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            if path == "/":
                body, ctype = PAGE.encode(), "text/html; charset=utf-8"
            elif path == "/api/state":
                body, ctype = json.dumps(state.snapshot(), ensure_ascii=False).encode(), "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="zhucan-dashboard", daemon=True).start()
    return server


def run_dashboard(settings: Settings, host: str = "127.0.0.1", port: int = 8050) -> None:
    state = DashboardState(settings)
    threading.Thread(target=state.run, name="zhucan-dashboard-sampler", daemon=True).start()
    server = serve_dashboard(state, host, port)
    print(f"zhucan dashboard on http://{host}:{server.server_port}/ (Ctrl-C stops it)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        state.stop()
        server.shutdown()
