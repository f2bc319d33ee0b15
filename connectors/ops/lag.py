"""``zhucan lag``: the lag report as text (the evaluation is ``streams/kafka/lag.py``)."""

from __future__ import annotations

from streams.kafka.lag import GroupLag


def format_report(groups: list[GroupLag], show_ok_partitions: bool = True) -> str:
    lines = []
    for g in groups:
        lines.append(f"group {g.group}: {g.status}  state={g.state} members={g.members} total lag={g.total_lag}")
        lines.append(f"  {'topic':<40} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8} {'behind s':>9}  status")
        for p in g.partitions:
            if show_ok_partitions or p.status != "OK" or p.lag:
                lines.append(f"  {p.topic:<40} {p.partition:>4} {p.committed:>10} {p.end:>10} {p.lag:>8} "
                             f"{_behind(p.seconds_behind):>9}  {p.status}")
    return "\n".join(lines)


def _behind(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}"
