"""The hostile-input benchmark runs end to end at tiny scale, so it cannot rot (docs/reliability.md,
"Hostile input"). It checks answers only: speed and memory goals are the benchmark's, not a test's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hostile_benchmark_gets_the_expected_answer_for_every_category():
    out = subprocess.run([sys.executable, "-m", "bench.hostile", "--frames", "300", "--closing", "1",
                          "--honest", "2", "--hostile", "2", "--quiet", "0.5", "--after", "0.5", "--probe"],
                         cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    wrong = {name: c["answers"] for name, c in report["categories"].items() if c["as_expected"] != c["total"]}
    assert not wrong
    assert "invalid UTF-8 in a text frame" in report["categories"]
    assert report["close_codes_on_hostile_connections"] == {} and report["honest_errors"] == {}
    assert report["gateway_log_lines_with_traceback"] == 0
    memory = report["memory"]  # the breakdown of bench.memprobe, before and after the load
    assert set(memory) == {"before", "after", "grew"}
    assert {"smaps_kib", "sqlite", "pymalloc", "objects", "tables", "heap_trim"} <= set(memory["after"])
