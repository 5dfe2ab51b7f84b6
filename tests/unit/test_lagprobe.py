"""The loop-lag probe the benchmark reads (gateway/lagprobe.py): a stall of the loop is seen,
written once a period, and matched to a time window."""

from __future__ import annotations

import gc
import time

from gateway.lagprobe import LagProbe, read_lines, summarise
from tests.support.wait import wait_until


async def test_a_stalled_loop_shows_in_the_probe_file(tmp_path) -> None:
    path = tmp_path / "lag.jsonl"
    probe = LagProbe(str(path), tick_s=0.002, period_s=0.05)
    probe.start()
    try:
        await wait_until(lambda: probe.ticks > 0, what="the probe ticking")
        start = time.time()
        time.sleep(0.08)  # the stall under test: a callback that holds the loop for 80 ms
        gc.collect()
        await wait_until(lambda: any(ln["lag_max_ms"] >= 70 for ln in read_lines(str(path))),
                         what="the stall written")
    finally:
        await probe.stop()
    lines = read_lines(str(path))
    seen = summarise(lines, start, time.time())
    assert seen["lag_max_ms"] >= 70 and seen["seconds_over_50ms"] >= 1
    assert any(ln["gc_collections"] >= 1 and ln["gc_max_generation"] == 2 for ln in lines)
    assert summarise(lines, 0.0, 1.0)["lag_max_ms"] is None  # a window before the probe ran


def test_a_torn_last_line_is_skipped(tmp_path) -> None:
    path = tmp_path / "lag.jsonl"
    path.write_text('{"t0": 1, "t1": 2, "ticks": 3, "lag_max_ms": 4.0, "lag_p99_ms": 1.0, "gc_max_ms": 0.0}\n{"t0"')
    assert [ln["ticks"] for ln in read_lines(str(path))] == [3]
    assert read_lines(str(tmp_path / "missing.jsonl")) == []
