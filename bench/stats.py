"""What the load generator measures: latency percentiles, stage counters, its own pauses.

Kept apart from the websocket code so the bookkeeping can be read (and trusted) on its own.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from collections.abc import Sequence


def percentiles_ms(samples: Sequence[float]) -> dict[str, float | int | None]:
    """p50/p99/max of latencies given in seconds, in ms (nearest-rank)."""
    if not samples:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    ordered = sorted(samples)
    n = len(ordered)

    def rank(q: float) -> float:
        return round(ordered[min(n - 1, max(0, int(q * n + 0.999999) - 1))] * 1000.0, 3)

    return {"count": n, "p50": rank(0.50), "p99": rank(0.99), "max": round(ordered[-1] * 1000.0, 3)}


class GenHealth:
    """The generator's own pauses: GC collections and event-loop lag.

    Latency is taken from the scheduled send time, so a generator pause shows up as server
    latency. These figures tell the two apart: a p99 spike next to a generator pause of the
    same size is the generator's.
    """

    def __init__(self) -> None:
        self.gc_max_s = 0.0
        self.gc_collections = 0
        self.lag_max_s = 0.0
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_collections += 1
            self.gc_max_s = max(self.gc_max_s, time.perf_counter() - self._gc_started)

    def reset(self) -> None:
        self.gc_max_s = self.lag_max_s = 0.0
        self.gc_collections = 0

    async def watch_loop(self, tick_s: float = 0.005) -> None:
        """Sleep in short ticks; any overshoot is time the loop could not run us."""
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(tick_s)
            self.lag_max_s = max(self.lag_max_s, time.perf_counter() - t0 - tick_s)

    def report(self) -> dict[str, float | int]:
        return {
            "gen_gc_collections": self.gc_collections,
            "gen_gc_max_ms": round(self.gc_max_s * 1000.0, 1),
            "gen_loop_lag_max_ms": round(self.lag_max_s * 1000.0, 1),
        }


class Stage:
    """What one MeterValues stage measured; latencies only for sends scheduled in the window."""

    def __init__(self, rate: float, window_start: float, window_end: float) -> None:
        self.rate = rate
        self.window_start = window_start
        self.window_end = window_end
        self.latencies: list[float] = []
        self.rtts: list[float] = []
        self.scheduled = 0
        self.completed_in_window = 0
        self.errors: Counter[str] = Counter()

    def record(self, sched: float, sent: float, now: float, ok: bool) -> None:
        if not ok:
            self.errors["callerror"] += 1
        if self.window_start <= sched < self.window_end:
            self.latencies.append(now - sched)
            self.rtts.append(now - sent)
        if self.window_start <= now < self.window_end:
            self.completed_in_window += 1


def own_cpu(*samples: float | None) -> float | None:
    """Server plus generator CPU seconds between two samples each (srv0, srv1, gen0, gen1)."""
    if any(x is None for x in samples):
        return None
    srv0, srv1, gen0, gen1 = samples
    return (srv1 - srv0) + (gen1 - gen0)  # type: ignore[operator]
