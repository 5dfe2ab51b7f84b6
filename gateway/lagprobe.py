"""Event-loop lag measured inside the gateway, for benchmarks (issue 17: no stall over 50 ms).

A charger's latency can come from the gateway's loop being busy (a long callback, a full garbage
collection) or from the machine; only a probe inside the process tells them apart. The probe
sleeps in short ticks and records how late each wake-up is, plus how long each garbage
collection took (`gc.callbacks`), and appends one JSON line per second to a file:
``{"t0": wall start, "t1": wall end, "ticks": n, "lag_max_ms": ..., "lag_p99_ms": ...,
"gc_max_ms": ..., "gc_collections": n, "frozen": objects the GC policy froze}``. The benchmark matches the lines to its storm and
stages by wall-clock time (the processes share one host clock).

Off unless the environment names the file (`OCPP_GATEWAY_LAG_LOG`); it costs one wake-up every
`tick_s` and one short write a second. The frozen count is read every `frozen_every_s` only:
CPython counts the frozen set by walking it (7 ms for a million objects, more in a fragmented
heap), so reading it every second made the probe itself a stall and 2.5 % of the loop's time.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from typing import Any, TextIO

ENV_VAR = "OCPP_GATEWAY_LAG_LOG"


class LagProbe:
    """Loop lag and GC pauses, summarised once a second into a JSON-lines file."""

    def __init__(self, path: str, tick_s: float = 0.005, period_s: float = 1.0,
                 frozen_every_s: float = 30.0) -> None:
        self.path = path
        self.frozen_every_s = frozen_every_s
        self._frozen: int | None = None
        self._frozen_read = float("-inf")
        self.tick_s = tick_s
        self.period_s = period_s
        self.lag_max_s = 0.0  # since start, for a caller that wants one figure
        self.ticks = 0  # wake-ups since start
        self._lags: list[float] = []
        self._gc_max_s = 0.0
        self._gc_max_generation: int | None = None
        self._gc_count = 0
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None
        self._out: TextIO | None = None

    @classmethod
    def from_env(cls) -> LagProbe | None:
        path = os.environ.get(ENV_VAR)
        return cls(path) if path else None

    def start(self) -> None:
        self._out = open(self.path, "a", encoding="utf-8")  # noqa: SIM115  (closed in stop)
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop lag probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._out is not None:
            self._out.close()

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self._gc_count += 1
            took = time.perf_counter() - self._gc_started
            if took > self._gc_max_s:
                self._gc_max_s, self._gc_max_generation = took, info.get("generation")

    async def _run(self) -> None:
        wall0, mono0 = time.time(), time.perf_counter()
        while True:
            t = time.perf_counter()
            await asyncio.sleep(self.tick_s)
            now = time.perf_counter()
            lag = max(0.0, now - t - self.tick_s)
            self._lags.append(lag)
            self.ticks += 1
            self.lag_max_s = max(self.lag_max_s, lag)
            if now - mono0 >= self.period_s:
                wall1 = time.time()
                self._write(self._summary(wall0, wall1))
                wall0, mono0 = wall1, now

    def _summary(self, wall0: float, wall1: float) -> dict[str, Any]:
        lags = sorted(self._lags)
        line = {
            "t0": round(wall0, 3), "t1": round(wall1, 3), "ticks": len(lags),
            "lag_max_ms": round(lags[-1] * 1000.0, 1) if lags else None,
            "lag_p99_ms": round(lags[min(len(lags) - 1, int(0.99 * len(lags)))] * 1000.0, 1) if lags else None,
            "gc_max_ms": round(self._gc_max_s * 1000.0, 1), "gc_max_generation": self._gc_max_generation,
            "gc_collections": self._gc_count, "frozen": self._frozen_count(),
        }
        self._lags.clear()
        self._gc_max_s, self._gc_count, self._gc_max_generation = 0.0, 0, None
        return line

    def _frozen_count(self) -> int:
        now = time.perf_counter()
        if self._frozen is None or now - self._frozen_read >= self.frozen_every_s:
            self._frozen, self._frozen_read = gc.get_freeze_count(), now
        return self._frozen

    def _write(self, line: dict[str, Any]) -> None:
        if self._out is not None:
            self._out.write(json.dumps(line) + "\n")
            self._out.flush()


def summarise(lines: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """The probe's lines overlapping [start, end] (wall clock): worst lag, seconds over 50 ms."""
    inside = [ln for ln in lines if ln["t1"] > start and ln["t0"] < end and ln.get("lag_max_ms") is not None]
    if not inside:
        return {"seconds": 0, "lag_max_ms": None, "lag_p99_max_ms": None, "seconds_over_50ms": None,
                "gc_max_ms": None, "gc_max_generation": None}
    worst_gc = max(inside, key=lambda ln: ln["gc_max_ms"])
    return {
        "seconds": len(inside),
        "lag_max_ms": max(ln["lag_max_ms"] for ln in inside),
        "lag_p99_max_ms": max(ln["lag_p99_ms"] for ln in inside),
        "seconds_over_50ms": sum(1 for ln in inside if ln["lag_max_ms"] > 50.0),
        "gc_max_ms": worst_gc["gc_max_ms"],
        "gc_max_generation": worst_gc.get("gc_max_generation"),
    }


def read_lines(path: str) -> list[dict[str, Any]]:
    """The probe's file, skipping a torn last line."""
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for text in f:
                try:
                    out.append(json.loads(text))
                except ValueError:
                    continue
    except OSError:
        return []
    return out
