"""`zhucan dashboard`: one page for the bureau's operators, in Chinese with English beside:
lag and throughput over the last hour, coverage per county against the 99% line, settlement by
funding source, claims by outcome (charts and tables), rejections and offset repairs.

A background thread samples Kafka (lag through the admin client, throughput from end
offsets, rejections by reason from ``identity.rejected.v1``, what the workers' offset guards
did from ``zhucan.offset-repairs``, coverage and settlement from the ledger's totals: one record
per partition, ``streams/kafka/snapshots.py``) and keeps the last hour of samples for the
charts; the page polls ``/api/state`` and draws them as inline SVG (``CHARTS``: no library, no
build step). Only counts and region codes are shown: no personal data, and nothing like Faust's
``/table`` view.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import OffsetSpec

from connectors.ops.ledger import coverage, live
from schemas.codec import Codec
from schemas.exceptions import DecodeError
from streams.domain.reports import settlement_lines
from streams.kafka.lag import LagMonitor
from streams.kafka.security import kafka_python_config
from streams.policies import load_book
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
        self._samples: deque[dict[str, Any]] = deque(maxlen=max(10, int(3600 / interval_s)))  # the last hour
        self.book = load_book(settings.policy_dir)
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
        # the samples of the last hour, for the charts (kept here: no other service)
        rates = {k: v for k, v in throughput.items() if not k.endswith("(total)")}
        self._samples.append({"t": time.strftime("%H:%M:%S"), "lag": {g["group"]: g["total_lag"] for g in lag},
                              "rates": rates})
        update["samples"] = list(self._samples)
        ours = set(self.settings.worker_groups)  # this deployment's groups, when they are there
        named = sorted({k for s in self._samples for k in s["lag"]})
        update["lag_series"] = [{"name": g} for g in ([g for g in named if g in ours] or named)]
        update["rate_series"] = sorted(rates)
        if time.monotonic() - self._coverage_at > self.coverage_every_s:
            # the ledger's totals (one record per partition): cheap whatever the number of people
            self._coverage_at = time.monotonic()
            totals = live(self.settings, warn=lambda text: None, wait_s=0)
            update["coverage"] = [r.as_dict() for r in coverage(self.settings, by="county", book=self.book,
                                                                totals=totals)]
            lines = settlement_lines(totals.totals, dt.datetime.now(tz=dt.UTC), self.book)
            by_fund: dict[tuple[str, str], list[int]] = {}
            for line in lines:
                slot = by_fund.setdefault((line["funding_source"], line["kind"]), [0, 0])
                slot[0] += line["persons"]
                slot[1] += line["subsidy_fen"]
            update["settlement"] = [{"funding_source": f, "kind": k, "persons": n, "subsidy_fen": fen}
                                    for (f, k), (n, fen) in sorted(by_fund.items())]
            update["ledger_warnings"] = totals.warnings()
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
<html lang="zh-CN"><head><meta charset="utf-8"><title>zhucan 助参 — 运行监控 operations</title>
<style>
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","WenQuanYi Micro Hei","WenQuanYi Zen Hei","PingFang SC",
 "Microsoft YaHei","Hiragino Sans GB",sans-serif;margin:1.2em 1.6em;color:#1f2933;background:#f7f8fa}
h1{font-size:1.35em;margin:.2em 0 .6em}h2{font-size:1.02em;margin:0 0 .5em}h2 .en,.en{color:#6b7280;font-weight:normal;font-size:.85em}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:1em}
.card{background:#fff;border:1px solid #e3e6ea;border-radius:8px;padding:.9em 1em}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eceef1;padding:.25em .5em;text-align:right;font-size:.92em}
th{color:#4b5563;font-weight:600}td.l,th.l{text-align:left}.OK{color:#176b24;font-weight:bold}
.WARN,.BELOW{color:#a66300;font-weight:bold}.STALL,.STOP,.REWIND{color:#b00020;font-weight:bold}
#updated{color:#6b7280;font-size:.8em;font-weight:normal}.note{color:#6b7280;font-size:.85em;margin:.3em 0}
svg{width:100%;height:auto;display:block}svg text{font-size:11px;fill:#4b5563}
.legend span{display:inline-block;margin-right:1em;font-size:.85em}.legend i{display:inline-block;width:.8em;height:.8em;margin-right:.3em}
</style></head><body>
<h1>zhucan 助参 — 运行监控 <span class="en">operations</span> <span id="updated">loading…</span></h1>
<div class="grid">
<div class="card"><h2>消费延迟 <span class="en">consumer lag, last hour</span></h2><svg id="chart-lag" viewBox="0 0 560 180"></svg>
<div class="legend" id="legend-lag"></div>
<table id="lag"><tr><th class="l">消费组 group</th><th>状态 status</th><th class="l">state</th><th>成员 members</th><th>延迟 total lag</th><th class="l">异常分区 partitions not OK</th></tr></table></div>
<div class="card"><h2>吞吐量 <span class="en">throughput (records/s), last hour</span></h2><svg id="chart-throughput" viewBox="0 0 560 180"></svg>
<div class="legend" id="legend-throughput"></div>
<table id="throughput"><tr><th class="l">数据流 stream</th><th>每秒 per second</th><th>累计 total</th></tr></table></div>
<div class="card"><h2>参保率 <span class="en">coverage per county and year, against the 99% line</span></h2><svg id="chart-coverage" viewBox="0 0 560 200"></svg>
<table id="coverage"><tr><th class="l">地区 region</th><th>年度 year</th><th>应参保 live</th><th>已参保 enrolled</th><th>参保率 rate</th><th>目标 target</th><th>状态 status</th></tr></table>
<p class="note" id="ledger-note"></p></div>
<div class="card"><h2>资助资金 <span class="en">settlement by funding source (enrolled, subsidy in 元)</span></h2><svg id="chart-settlement" viewBox="0 0 560 160"></svg>
<table id="settlement"><tr><th class="l">资金来源 funding source</th><th class="l">类型 kind</th><th>人数 persons</th><th>金额 amount (元)</th></tr></table></div>
<div class="card"><h2>个人待遇申请 <span class="en">claims for money to people, by outcome</span></h2><svg id="chart-claims" viewBox="0 0 560 120"></svg>
<table id="claims"><tr><th class="l">结果 outcome</th><th>件数 claims</th></tr></table></div>
<div class="card"><h2>退回原因 <span class="en">rejections by reason</span></h2>
<table id="rejections"><tr><th class="l">原因 reason</th><th>条数 count</th></tr></table>
<h2 style="margin-top:1em">偏移修复 <span class="en">offset repairs (<span id="repairs_total">0</span> in all; the latest)</span></h2>
<p class="note">A record of zhucan.person-commands came before the one due and the missing ones were read and applied (GAP_FILLED), or could not be read and the partition was sought back (GAP_REWIND); commits had stopped and were healed (COMMIT_STALL); the group had committed past records never applied and the partition was sought back to them (COMMIT_AHEAD, an error); records were deleted before they were applied (GAP_ACCEPTED, an error).</p>
<table id="repairs"><tr><th class="l">时间 when</th><th class="l">kind</th><th class="l">partition</th><th>due offset</th><th>seen</th></tr></table></div>
</div>
<script src="/charts.js"></script>
<script>
function row(cells){const tr=document.createElement('tr');for(const [v,c] of cells){const td=document.createElement('td');td.textContent=v;if(c)td.className=c;tr.appendChild(td)}return tr}
function fill(id,rows){const t=document.getElementById(id);while(t.rows.length>1)t.deleteRow(1);for(const r of rows)t.appendChild(row(r))}
const OUTCOME={APPROVED:'批准 APPROVED',REFUSED:'不予支付 REFUSED',REVIEW:'人工复核 REVIEW'};
const FUND={MEDICAL_ASSISTANCE_FUND:'医疗救助基金',COUNTY_BUDGET:'县级财政',OTHER:'其他'};
async function load(){
  const s=await (await fetch('/api/state')).json();
  document.getElementById('updated').textContent='更新于 updated '+(s.updated||'…')+(s.error?' (error: '+s.error+')':'');
  fill('lag',s.lag.map(g=>[[g.group,'l'],[g.status,g.status],[g.state,'l'],[g.members],[g.total_lag],
    [g.partitions.map(p=>p.topic+'['+p.partition+'] lag '+p.lag+' '+p.status).join('; ')||'-','l']]));
  const tp=Object.keys(s.throughput).filter(k=>!k.endsWith('(total)'));
  fill('throughput',tp.map(k=>[[k,'l'],[s.throughput[k]],[s.throughput[k+' (total)']]]));
  fill('rejections',Object.entries(s.rejections).map(([k,v])=>[[k,'l'],[v]]));
  fill('claims',Object.entries(s.claims||{}).map(([k,v])=>[[OUTCOME[k]||k,'l'],[v]]));
  document.getElementById('repairs_total').textContent=s.repairs_total;
  fill('repairs',s.repairs.map(r=>[[r.at,'l'],[r.kind,r.kind=='GAP_ACCEPTED'?'STALL':'WARN'],[r.topic+'['+r.partition+']','l'],[r.expected],[r.seen]]));
  fill('coverage',s.coverage.map(r=>[[r.region_code,'l'],[r.insurance_year],[r.live],[r.enrolled],
    [(r.rate*100).toFixed(1)+'%'],[r.target==null?'-':(r.target*100).toFixed(0)+'%'],
    r.meets_target==null?['no policy','l']:[r.meets_target?'OK':'BELOW',r.meets_target?'OK':'BELOW']]));
  fill('settlement',(s.settlement||[]).map(r=>[[(FUND[r.funding_source]||'')+' '+r.funding_source,'l'],[r.kind,'l'],[r.persons],[(r.subsidy_fen/100).toFixed(2)]]));
  document.getElementById('ledger-note').textContent=(s.ledger_warnings||[]).join(' ')||'';
  const t=(s.samples||[]).map(x=>x.t);
  zc.lines('chart-lag','legend-lag',t,(s.lag_series||[]).map(x=>({name:x.name,values:(s.samples||[]).map(p=>p.lag[x.name]??null)})));
  zc.lines('chart-throughput','legend-throughput',t,(s.rate_series||[]).map(x=>({name:x,values:(s.samples||[]).map(p=>p.rates[x]??null)})));
  zc.bars('chart-coverage',s.coverage.map(r=>({label:r.region_code+' '+r.insurance_year,value:r.rate,text:(r.rate*100).toFixed(1)+'%',
    bad:r.meets_target===false})),{max:1,line:0.99,lineLabel:'99% 目标 target'});
  const funds={};for(const r of (s.settlement||[]))funds[r.funding_source]=(funds[r.funding_source]||0)+r.subsidy_fen;
  zc.bars('chart-settlement',Object.entries(funds).map(([k,v])=>({label:(FUND[k]||k),value:v/100,text:(v/100).toFixed(2)+' 元'})),{});
  zc.bars('chart-claims',Object.entries(s.claims||{}).map(([k,v])=>({label:OUTCOME[k]||k,value:v,text:String(v),bad:k=='REFUSED'})),{});
}
load();setInterval(load,3000);
</script></body></html>
"""

# The dashboard's charts: line charts of samples and bar charts, as inline SVG, with no library
# and no build step. Each mark carries its data (data-label, data-value) so that a browser test
# can read what a chart shows.
CHARTS = r"""
const zc=(function(){
const NS='http://www.w3.org/2000/svg',COLORS=['#2563eb','#dc2626','#16a34a','#d97706','#7c3aed','#0891b2'];
function el(name,attrs,text){const e=document.createElementNS(NS,name);for(const k in attrs)e.setAttribute(k,attrs[k]);if(text!=null)e.textContent=text;return e}
function clear(svg){while(svg.firstChild)svg.removeChild(svg.firstChild)}
function fmt(v){return v>=1000?Math.round(v).toLocaleString('en'):String(Math.round(v*100)/100)}
function nice(v){if(v<=0)return 1;const p=Math.pow(10,Math.floor(Math.log10(v)));for(const m of [1,2,5,10])if(m*p>=v)return m*p;return 10*p}
function lines(id,legendId,times,series){
  const svg=document.getElementById(id);clear(svg);const W=560,H=180,L=48,R=8,T=8,B=22;
  const vals=series.flatMap(s=>s.values.filter(v=>v!=null));const max=nice(Math.max(1,...vals));
  const n=Math.max(2,times.length);const x=i=>L+(W-L-R)*i/(n-1),y=v=>T+(H-T-B)*(1-v/max);
  for(const f of [0,.5,1]){svg.appendChild(el('line',{x1:L,x2:W-R,y1:y(max*f),y2:y(max*f),stroke:'#e5e7eb'}));
    svg.appendChild(el('text',{x:L-4,y:y(max*f)+4,'text-anchor':'end'},fmt(max*f)))}
  if(times.length){svg.appendChild(el('text',{x:L,y:H-6},times[0]));svg.appendChild(el('text',{x:W-R,y:H-6,'text-anchor':'end'},times[times.length-1]))}
  const legend=document.getElementById(legendId);if(legend)legend.innerHTML='';
  series.forEach((s,k)=>{const c=COLORS[k%COLORS.length];const pts=s.values.map((v,i)=>v==null?null:x(i)+','+y(v)).filter(Boolean);
    svg.appendChild(el('polyline',{points:pts.join(' '),fill:'none',stroke:c,'stroke-width':1.8,'data-series':s.name,
      'data-last':String(s.values.length?s.values[s.values.length-1]:''),'data-points':String(pts.length)}));
    if(legend){const sp=document.createElement('span');const i=document.createElement('i');i.style.background=c;sp.appendChild(i);
      sp.appendChild(document.createTextNode(s.name));legend.appendChild(sp)}});
}
function bars(id,items,opt){
  const svg=document.getElementById(id);clear(svg);const W=560,L=150,R=70,T=6,h=20;
  const H=Math.max(50,T+Math.max(1,items.length)*(h+4)+(opt.line!=null?18:6));svg.setAttribute('viewBox','0 0 '+W+' '+H);
  const max=opt.max||nice(Math.max(1,...items.map(i=>i.value)));
  items.forEach((it,k)=>{const y=T+k*(h+4);const w=(W-L-R)*Math.max(0,it.value)/max;
    svg.appendChild(el('text',{x:L-6,y:y+h*.72,'text-anchor':'end'},it.label));
    svg.appendChild(el('rect',{x:L,y:y,width:Math.max(1,w),height:h,rx:2,fill:it.bad?'#d97706':'#2563eb','data-label':it.label,'data-value':String(it.value)}));
    svg.appendChild(el('text',{x:L+w+4,y:y+h*.72},it.text))});
  if(opt.line!=null){const x=L+(W-L-R)*opt.line/max;const bottom=T+items.length*(h+4);
    svg.appendChild(el('line',{x1:x,x2:x,y1:T-2,y2:bottom,stroke:'#b00020','stroke-dasharray':'4 3','data-target':String(opt.line)}));
    svg.appendChild(el('text',{x:x,y:bottom+11,'text-anchor':'middle',fill:'#b00020'},opt.lineLabel||''))}
  if(!items.length)svg.appendChild(el('text',{x:W/2,y:H/2,'text-anchor':'middle'},'暂无数据 no data yet'));
}
return {lines,bars};
})();
"""


def serve_dashboard(state: DashboardState, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            if path == "/":
                body, ctype = PAGE.encode(), "text/html; charset=utf-8"
            elif path == "/charts.js":
                body, ctype = CHARTS.encode(), "text/javascript; charset=utf-8"
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
