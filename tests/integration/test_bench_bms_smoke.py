"""The BMS-side benchmarks run end to end at tiny scale, so they cannot rot (docs/benchmarks.md,
"BMS side and smart charging"). Each runs the real command and checks its JSON and zero errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _udp_bind_works() -> bool:
    try:
        import BAC0  # noqa: F401
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
        return True
    except (ImportError, OSError):
        return False


needs_bacnet = pytest.mark.skipif(not _udp_bind_works(), reason="BAC0 missing or cannot bind UDP on loopback")


def run_bench(*argv: str) -> dict:
    out = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["errors"] == 0, result
    return result


@needs_bacnet
def test_cov_benchmark_receives_one_notification_per_meter_value():
    r = run_bench("bench.bms", "cov", "--chargers", "3", "--rate", "15", "--seconds", "2", "--sample", "2",
                  "--drain", "1")
    assert r["subscribed_objects"] == 2 and r["notifications_expected"] > 0
    assert r["notifications_received"] == r["notifications_expected"] and r["missing"] == 0
    assert 0 < r["latency"]["p50_ms"] <= r["latency"]["p99_ms"] <= r["latency"]["max_ms"]


@needs_bacnet
def test_rpm_benchmark_reads_a_connectors_objects():
    r = run_bench("bench.bms", "rpm", "--chargers", "2", "--requests", "10")
    assert r["latency"]["count"] == 10 and r["objects_per_request"]["min"] >= 20
    assert r["values_read"] >= 10 * r["objects_per_request"]["min"]


@needs_bacnet
def test_modbus_benchmark_reports_what_the_layout_addresses():
    r = run_bench("bench.bms", "modbus", "--chargers", "2", "--requests", "10")
    assert r["latency"]["count"] == 10 and r["chargers_addressable"] == 2 and r["chargers_not_addressable"] == 0


@needs_bacnet
def test_startup_benchmark_serves_every_object_after_a_restart():
    r = run_bench("bench.bms", "startup", "--chargers", "2")
    assert r["objects_after_start"] == r["objects_before_restart"] > 0
    assert 0 < r["gateway_start_s"] and r["first_answer_s"] is not None


@needs_bacnet
def test_site_limit_write_reaches_every_charger_once():
    r = run_bench("bench.site_limit", "--chargers", "3", "--values", "20,15", "--settle", "0.5")
    assert [x["chargers_reached"] for x in r["rounds"]] == [3, 3]
    assert r["max_profiles_per_charger_per_write"] == 1
    assert all(x["sum_of_shares_kw"] <= x["site_limit_kw"] for x in r["rounds"])
