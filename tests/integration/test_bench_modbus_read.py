"""`python -m bench.modbus_read` runs end to end and prints the figures docs/modbus.md quotes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_modbus_read_benchmark_prints_p50_and_p99_as_json():
    out = subprocess.run([sys.executable, "-m", "bench.modbus_read", "--chargers", "3", "--requests", "20",
                          "--updates-per-s", "20"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["errors"] == 0 and result["requests"] == 20
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
