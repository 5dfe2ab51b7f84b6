"""Smoke tests for the benchmark harness (bench/, docs/benchmarks.md), so it cannot rot.

The frames the generator sends and the answers the floor gives are checked against the
OCPP 1.6 JSON schemas that ship inside the `ocpp` package: a gateway that validates would
otherwise answer CALLERROR and the benchmark would measure refusals. The runs go through
`python -m bench.run`, the same code path as a real benchmark, on loopback with ports
the kernel picks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import fastjsonschema
import ocpp
import pytest

from bench import frames
from bench.floor import FloorServer
from bench.stats import Stage, percentiles_ms
from bench.summary import stage_rows, storm_rows

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(ocpp.__file__).parent / "v16" / "schemas"


def _validator(name: str) -> Any:
    return fastjsonschema.compile(json.loads((SCHEMAS / f"{name}.json").read_text()))


def _fill(template: str) -> list[Any]:
    return json.loads(template % {"uid": "42", "ts": "2026-01-01T00:00:00Z", "wh": 1234})


def _smoke_run(only: str, extra: list[str] | None = None) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.run", "--only", only, "--chargers", "5", "--rates", "50"]
    argv += ["--stage-seconds", "2", "--drain-seconds", "2", "--settle-seconds", "0.2"]
    done = subprocess.run(argv + (extra or []), capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert done.stdout.strip(), done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, report.get(only, {}).get("error", done.stderr)
    return report


def _assert_complete_and_clean(result: dict[str, Any]) -> None:
    assert result["chargers"] == 5
    storm = result["storm"]
    assert storm["chargers_ok"] == 5
    assert storm["calls"] == 5 * 6
    assert storm["seconds"] > 0
    assert set(storm["latency_ms"]) >= {"connect", "all_calls", "BootNotification", "StartTransaction"}
    assert storm["error_total"] == 0, storm["errors"]
    server = result["server"]
    assert server["rss_before_kib"] > 0
    assert server["rss_kib_per_charger"] is not None
    (stage,) = result["stages"]
    assert stage["offered_rate"] == 50
    assert stage["achieved_rate"] >= 0.9 * 50
    assert stage["measured"] > 0
    for key in ("p50", "p99", "max"):
        assert stage["latency_ms"][key] > 0
    assert stage["server_cpu_pct"] is not None
    assert stage["error_total"] == 0, stage["errors"]
    assert stage["unfinished"] == 0
    assert result["teardown"]["failures"] == 0
    assert result["errors_total"] == 0


@pytest.mark.parametrize(
    ("action", "template"),
    [
        ("BootNotification", frames.boot_notification("BENCH00001")),
        ("StatusNotification", frames.status_notification(1, "Charging")),
        ("Authorize", frames.authorize("TAG00001")),
        ("StartTransaction", frames.start_transaction("TAG00001")),
        ("MeterValues", frames.meter_values(7)),
        ("StopTransaction", frames.stop_transaction(7)),
    ],
)
def test_generator_frames_pass_the_ocpp16_schemas(action: str, template: str) -> None:
    """OCPP-J 1.6 section 4.2.1: [2, uniqueId, action, payload], payload per the action's schema."""
    kind, uid, sent_action, payload = _fill(template)
    assert (kind, uid, sent_action) == (2, "42", action)
    _validator(action)(payload)


def test_meter_values_carry_the_eight_measurands() -> None:
    payload = _fill(frames.meter_values(7))[3]
    sampled = payload["meterValue"][0]["sampledValue"]
    assert len(sampled) == 8
    assert {s["measurand"] for s in sampled} == {
        "Energy.Active.Import.Register",
        "Power.Active.Import",
        "Current.Import",
        "Voltage",
    }


@pytest.mark.parametrize("keys", [None, ["GetConfigurationMaxKeys"], ["HeartbeatInterval", "NoSuchKey"]])
def test_generator_reports_its_configuration_like_a_real_charger(keys: list[str] | None) -> None:
    """OCPP 1.6 section 9.1: every required Core key is there, so one unkeyed read is complete."""
    answer = json.loads(frames.get_configuration_answer(keys))
    _validator("GetConfigurationResponse")(answer)
    returned = {entry["key"] for entry in answer["configurationKey"]}
    if keys is None:
        assert "MeterValueSampleInterval" in returned and "SupportedFeatureProfiles" in returned
    else:
        assert returned | set(answer.get("unknownKey", [])) == set(keys)


@pytest.mark.parametrize("action", sorted(frames.SERVER_CALL_ANSWERS))
def test_generator_answers_to_gateway_calls_pass_the_schemas(action: str) -> None:
    _validator(f"{action}Response")(json.loads(frames.SERVER_CALL_ANSWERS[action]))


@pytest.mark.parametrize(
    "action",
    [
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "Authorize",
        "StartTransaction",
        "MeterValues",
        "StopTransaction",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
    ],
)
def test_floor_answers_every_charger_call_with_a_valid_callresult(action: str) -> None:
    kind, uid, payload = json.loads(FloorServer().answer(json.dumps([2, "u1", action, {}])) or "null")
    assert (kind, uid) == (3, "u1")
    _validator(f"{action}Response")(payload)


def test_floor_hands_out_increasing_transaction_ids() -> None:
    floor = FloorServer()
    start = json.dumps([2, "u", "StartTransaction", {}])
    ids = [json.loads(floor.answer(start) or "null")[2]["transactionId"] for _ in range(3)]
    assert ids == [1, 2, 3]


def test_percentiles_are_nearest_rank_in_ms() -> None:
    samples = [i / 1000.0 for i in range(1, 101)]  # 1..100 ms
    assert percentiles_ms(samples) == {"count": 100, "p50": 50.0, "p99": 99.0, "max": 100.0}
    assert percentiles_ms([])["p99"] is None


def test_stage_counts_latency_from_the_scheduled_time_inside_the_window_only() -> None:
    """No coordinated omission: a call queued behind a slow one carries its wait."""
    stage = Stage(rate=10, window_start=1.0, window_end=2.0)
    stage.record(sched=0.5, sent=0.5, now=1.1, ok=True)  # warm-up send, answered in the window
    stage.record(sched=1.2, sent=1.5, now=1.6, ok=True)  # waited 0.3 s behind another call
    stage.record(sched=1.9, sent=1.9, now=2.4, ok=False)  # CALLERROR answered after the window
    assert [round(x, 3) for x in stage.latencies] == [0.4, 0.5]
    assert [round(x, 3) for x in stage.rtts] == [0.1, 0.5]
    assert stage.completed_in_window == 2
    assert stage.errors == {"callerror": 1}


def test_floor_smoke_run_reports_every_field_with_zero_errors() -> None:
    report = _smoke_run("floor")
    assert report["machine"]["nproc"] >= 1
    _assert_complete_and_clean(report["floor"])
    # docs/benchmarks.md tables are rendered from such reports
    assert storm_rows([("smoke", report)])[2].startswith("| smoke | floor | 5 |")
    assert stage_rows([("smoke", report)])[2].startswith("| smoke | floor | 5 | 50 |")


def test_gateway_smoke_run_accepts_bench_chargers_without_errors() -> None:
    """The gateway as `python -m gateway.main ... run` starts it (the ocpp-gateway entry point)."""
    report = _smoke_run("gateway", ["--startup-timeout", "15"])
    _assert_complete_and_clean(report["gateway"])
    # The gateway's own loop-lag probe (gateway/lagprobe.py), matched to the storm and the stage.
    for part in (report["gateway"]["storm"], report["gateway"]["stages"][0]):
        assert part["loop_lag"]["seconds"] >= 1 and part["loop_lag"]["lag_max_ms"] is not None
    # Every answered MeterValues is in the gateway's database: nothing answered before its commit.
    kept = report["gateway"]["durability"]
    assert kept["meter_values_answered"] > 0 and kept["all_answered_stored"], kept


def test_runner_compares_a_gateway_command_with_the_floor() -> None:
    """The --gateway-cmd path and the ratios, with the floor standing in for the gateway."""
    stand_in = "{python} -m bench.floor --host {host} --port {port}"
    report = _smoke_run("both", ["--gateway-cmd", stand_in])
    _assert_complete_and_clean(report["gateway"])
    _assert_complete_and_clean(report["floor"])
    (stage_ratio,) = report["ratios"]["stages"]
    assert stage_ratio["offered_rate"] == 50
    assert stage_ratio["achieved_rate"] is not None
    assert report["ratios"]["storm_seconds"] is not None


def test_ocpp_library_reference_server_answers_the_same_load() -> None:
    """The third reference of the benchmark table: a central system on the ocpp library's defaults."""
    report = _smoke_run("ocpplib")
    _assert_complete_and_clean(report["ocpplib"])


def test_gc_stall_times_each_step_of_the_policy() -> None:
    """`python -m bench.gc_stall` (docs/benchmarks.md, issue 17) runs small and reports each step."""
    done = subprocess.run([sys.executable, "-m", "bench.gc_stall", "--objects", "20000"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["frozen"] >= 20000
    assert {"old_hourly_full_ms", "policy_freeze_tick_ms", "policy_hourly_tick_ms"} <= report.keys()


def test_session_cpu_drives_whole_sessions_in_process() -> None:
    """`python -m bench.session_cpu` (docs/benchmarks.md, issue 17) runs small: every MeterValues
    answered, and the CPU of the loop and of the other threads (the writer) reported apart."""
    done = subprocess.run([sys.executable, "-m", "bench.session_cpu", "--chargers", "5", "--messages", "3"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["messages"] == 15 and report["cpu_us_per_message"] > 0
    assert set(report["threads"]) == {"loop", "other threads"}
