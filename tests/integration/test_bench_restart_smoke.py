"""The restart benchmark runs end to end at tiny scale, so it cannot rot (docs/benchmarks.md,
"Restart with known chargers"): the real command, its JSON, every charger accepted and live."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.test_bench_bms_smoke import needs_bacnet

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ("port_open_s", "all_accepted_s", "all_online_live_s", "all_statuses_confirmed_s")


@needs_bacnet
def test_restart_benchmark_reports_every_charger_accepted_and_live():
    out = subprocess.run([sys.executable, "-m", "bench.restart", "--chargers", "4", "--rounds", "1",
                          "--status-trigger-after-s", "0.5", "--within", "30"],
                         cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["errors"] == 0, result
    assert (result["chargers"], result["booting"], result["commission_errors"]) == (4, 2, 0)
    [round_] = result["rounds"]
    assert round_["accepted"] == round_["online_live"] == round_["statuses_confirmed"] == 4
    assert round_["get_configuration_calls"] == 0  # same identities: nothing is read again
    for figure in FIGURES:
        assert round_[figure] is not None and round_[figure] > 0, figure
        assert result["median"][figure] == round_[figure]
    assert round_["port_open_s"] <= round_["all_accepted_s"]  # no charger before the port opened
