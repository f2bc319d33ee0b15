"""Worker metrics in Prometheus text format, served on a small HTTP endpoint (not Faust's web)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from streams.kafka.topics import TOPICS, TopicSpec

log = logging.getLogger("zhucan.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HELP = {
    "zhucan_events_in_total": ("counter", "Identity events decoded, per sending source"),
    "zhucan_rejections_total": ("counter", "Identity records sent back to their sender, per reason"),
    "zhucan_dead_letters_total": ("counter", "Records moved to the dead-letter topic, per error class"),
    "zhucan_acks_in_total": ("counter", "Payment-status acknowledgements received, per status"),
    "zhucan_consumer_lag": ("gauge", "Lag of the worker's consumer group, per topic and partition"),
    "zhucan_intake_retries_total": ("counter", "Fetches of the intake loop fetched again after their handling or "
                                               "the fetch itself raised (a bug, not a failed send: those retry quietly)"),
    "zhucan_event_loop_held_seconds_max": ("gauge", "The longest one piece of work held the worker's event loop since "
                                                    "it started (the intake's consumer heartbeats on it: 10 s session)"),
    "zhucan_person_newcomers_total": ("counter", "People decided at their first command (an identity): by the rules, "
                                                 "or given the remembered decisions of an earlier person of the same "
                                                 "facts (streams/domain/newcomers.py)"),
    "zhucan_person_second_identities_total": ("counter", "Second identities of people held as newcomers are (one "
                                                         "fact, nothing else): decided by the rules, or given the "
                                                         "remembered decisions of an earlier person of the same two "
                                                         "facts (streams/domain/newcomers.py)"),
    "zhucan_intake_first_fetch_ms": ("gauge", "When this worker's intake loop first took in department records "
                                              "(epoch ms; the bench's clock starts at the earliest)"),
}  # and one counter per output topic of the person stage (its TopicSpec's ``counted``)


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"


class Metrics:
    def __init__(self, specs: tuple[TopicSpec, ...] = TOPICS) -> None:
        counted = [s.counted for s in specs if s.counted is not None]
        self.help = {**HELP, **{c.name: ("counter", c.help) for c in counted}}
        self._labelled = {c.name: bool(c.labels) for c in counted}  # unlabelled ones show 0 before any
        self.values: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self._lock = threading.Lock()

    def inc(self, name: str, n: float = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self.values[name]
            series[key] = series.get(key, 0) + n

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self.values[name][tuple(sorted(labels.items()))] = value

    def high(self, name: str, value: float, **labels: str) -> bool:
        """Keep ``value`` if it is the highest yet; True if it was."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            if value <= self.values[name].get(key, float("-inf")):
                return False
            self.values[name][key] = value
            return True

    def observe_latency(self, seconds: float, n: int = 1) -> None:
        """``n`` observations of ``seconds`` (a batch's fee standards share their record's time)."""
        with self._lock:
            self.latency_sum += seconds * n
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self.latency_counts[i] += n
                    break
            else:
                self.latency_counts[-1] += n

    def total(self, name: str) -> float:
        with self._lock:
            return sum(self.values.get(name, {}).values())

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, (kind, text) in self.help.items():
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
                series = self.values.get(name) or ({(): 0.0} if name in self._labelled and not self._labelled[name] else {})
                for labels, value in sorted(series.items()):  # a whole number whole (an epoch ms too)
                    shown = f"{int(value)}" if float(value).is_integer() else f"{value:g}"
                    lines.append(f"{name}{_labels(labels)} {shown}")
            name = "zhucan_decision_latency_seconds"
            lines += [f"# HELP {name} Event time (the department's record) to fee standard published",
                      f"# TYPE {name} histogram"]
            cumulative = 0
            for bound, count in zip(LATENCY_BUCKETS, self.latency_counts, strict=False):
                cumulative += count
                lines.append(f'{name}_bucket{{le="{bound:g}"}} {cumulative}')
            cumulative += self.latency_counts[-1]
            lines.append(f'{name}_bucket{{le="+Inf"}} {cumulative}')
            lines.append(f"{name}_sum {self.latency_sum:.6f}")
            lines.append(f"{name}_count {cumulative}")
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        parts = []
        for name in ("zhucan_events_in_total", "zhucan_rejections_total", "zhucan_dead_letters_total",
                     "zhucan_fee_standards_out_total", "zhucan_acks_in_total", "zhucan_review_cases_total"):
            total = self.total(name)
            if total:
                parts.append(f"{name.removeprefix('zhucan_').removesuffix('_total')}={total:g}")
        return ", ".join(parts)


def serve_metrics(metrics: Metrics, host: str, port: int) -> ThreadingHTTPServer:
    """Serve ``/metrics`` in a daemon thread; returns the server (``server_port`` tells the port)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics here")
                return
            body = metrics.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="zhucan-metrics", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    return server


async def watch_loop(metrics: Metrics, probe_s: float = 0.25, warn_s: float = 3.0) -> None:
    """How long work held this event loop: a sleep of ``probe_s`` that wakes late was kept from
    running by one piece of work for the difference (``zhucan_event_loop_held_seconds_max``).
    A hold over ``warn_s`` is logged: the intake's consumer heartbeats on this loop, and a hold
    past its 10 s session expels the worker from the intake's group (the person stage's take held
    it for up to 6 s on a slow machine before ``person_hold_s``)."""
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(probe_s)
        held = loop.time() - start - probe_s
        if metrics.high("zhucan_event_loop_held_seconds_max", round(held, 3)) and held > warn_s:
            log.warning("the event loop was held %.1f s by one piece of work (the intake's consumer could not "
                        "heartbeat meanwhile; its session is 10 s)", held)
