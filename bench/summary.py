"""Render `bench.run` reports as the Markdown tables of docs/benchmarks.md.

``python -m bench.run ... > run.json; python -m bench.summary run.json [more.json ...]``
Why: the figures in the docs should be copied by a program, not by hand, and the
gateway's section is filled from the same kind of report as the floor's.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


SERVERS = ("gateway", "floor", "ocpplib")


def _lag(part: dict[str, Any]) -> str:
    """The server's own worst loop lag in the window (gateway only: its probe, gateway/lagprobe.py)."""
    lag = part.get("loop_lag") or {}
    return _fmt(lag.get("lag_max_ms"))


def _cpu_us(stage: dict[str, Any]) -> str:
    """Server CPU per answered message, in microseconds (100% = one core)."""
    cpu, rate = stage.get("server_cpu_pct"), stage.get("achieved_rate")
    return _fmt(cpu / 100.0 / rate * 1e6, 0) if cpu is not None and rate else "–"


def storm_rows(reports: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
    rows = [
        "| run | server | N | storm s | calls/s | setup call p50 / p99 ms | connect p99 ms "
        "| server CPU % | gen CPU % | others CPU % | KiB/charger | server loop lag max ms | storm errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, report in reports:
        for server in SERVERS:
            r = report.get(server)
            if not r or "error" in r:
                continue
            s = r["storm"]
            calls = s["latency_ms"]["all_calls"]
            rows.append(
                f"| {label} | {server} | {_fmt(r['chargers'])} | {_fmt(s['seconds'], 2)} | {_fmt(s['calls_per_s'], 0)} "
                f"| {_fmt(calls['p50'])} / {_fmt(calls['p99'])} | {_fmt(s['latency_ms']['connect']['p99'])} "
                f"| {_fmt(s['server_cpu_pct'])} | {_fmt(s.get('gen_cpu_pct'))} | {_fmt(s.get('others_cpu_pct'))} "
                f"| {_fmt(r['server']['rss_kib_per_charger'])} | {_lag(s)} | {s['error_total']} |"
            )
    return rows


def stage_rows(reports: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
    rows = [
        "| run | server | N | offered msg/s | achieved | p50 ms | p99 ms | max ms | server CPU % "
        "| server µs/msg | gen CPU % | others CPU % | gen lag max ms | server loop lag max ms | errors | sustained |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, report in reports:
        for server in SERVERS:
            r = report.get(server)
            if not r or "error" in r:
                continue
            for st in r["stages"]:
                lat = st["latency_ms"]
                rows.append(
                    f"| {label} | {server} | {_fmt(r['chargers'])} | {_fmt(st['offered_rate'], 0)} "
                    f"| {_fmt(st['achieved_rate'], 0)} | {_fmt(lat['p50'], 2)} | {_fmt(lat['p99'], 1)} "
                    f"| {_fmt(lat['max'], 1)} | {_fmt(st['server_cpu_pct'])} | {_cpu_us(st)} | {_fmt(st['gen_cpu_pct'])} "
                    f"| {_fmt(st.get('others_cpu_pct'))} | {_fmt(st.get('gen_loop_lag_max_ms'))} | {_lag(st)} "
                    f"| {st['error_total'] + st['unfinished']} | {'yes' if st['sustained'] else 'no'} |"
                )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths:
        print("usage: python -m bench.summary REPORT.json [...]", file=sys.stderr)
        return 2
    reports = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            reports.append((path.rsplit("/", 1)[-1].removesuffix(".json"), json.load(f)))
    print("\n".join(storm_rows(reports)))
    print()
    print("\n".join(stage_rows(reports)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
