"""Benchmark runner: the gateway and the floor server under the same load, and their ratio.

``python -m bench.run --chargers 1000 --rates 1000,2000,5000`` starts each server in its
own process, waits until its port accepts TCP, pins server and load generator to
different cores (the performance notes measured one server core against one generator
core), runs ``bench.loadgen`` in a third process, stops the server, and prints one JSON
object with both results and gateway/floor ratios. Ratios, not absolute figures, are what
compare across machines and days (notes, section 2.6).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.loadgen import parse_rates, raise_fd_limit
from gateway import lagprobe

REPO_ROOT = Path(__file__).resolve().parent.parent

# The gateway's CLI takes --config before the subcommand (gateway/operator/cli.py: a global option).
# `python -m gateway.main` is the console script's own entry point, from this checkout (an installed
# `ocpp-gateway` script may come from another one).
DEFAULT_GATEWAY_CMD = "{python} -m gateway.main --config {config} run"

# Used when `ocpp-gateway` is given but the console script is not installed: the same
# entry point the script calls, with the same argv, so the measured process is the gateway.
_CLI_SHIM = "import sys; from gateway.main import main; sys.argv[0] = 'ocpp-gateway'; sys.exit(main())"

# The gateway settings the benchmark needs (keys from gateway/config.py); everything else
# stays at the gateway's defaults, schema validation included. Placeholders: {host},
# {port}, {data_dir}, {admin_port}, {modbus_port}, {bacnet_port}; replace the whole text
# with --gateway-config-template FILE.
GATEWAY_TOML = """\
# Written by bench.run for one benchmark run.
[ocpp]
host = "{host}"
port = {port}
# The load generator sends no password: this measures messages, not the per-login scrypt.
require_password = false

[registration]
# The BENCHnnnnn chargers are not in the device database: accept them as guests, so the
# boot storm measures the accept path rather than Pending/Rejected answers.
guest_response = "Accepted"

[database]
path = "{data_dir}/gateway.sqlite"

# The BMS side stays on (its cost is part of the gateway's), on ports picked per run so
# that a benchmark never collides with a gateway already running on this machine.
[admin]
port = {admin_port}

[modbus]
port = {modbus_port}

[bacnet]
port = {bacnet_port}
"""


def machine_info() -> dict[str, Any]:
    """What a reader needs to compare figures: cores, CPU model, Python and library versions."""
    model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for dist in ("websockets", "ocpp"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        **versions,
    }


def free_port(host: str, kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port the kernel just handed out; the tiny race with other programs is accepted."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def pinning_plan(enabled: bool) -> tuple[set[int], set[int]] | None:
    """Server on one allowed CPU, generator on another; None if that is not possible."""
    if not enabled or not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, {cpus[1]}


def _pin(cpus: set[int] | None) -> Callable[[], None] | None:
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def _child_env() -> dict[str, str]:
    """Children import bench (and gateway) from this checkout even if it is not installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def gateway_command(template: str, config: Path, host: str, port: int, data_dir: Path) -> list[str]:
    """Expand --gateway-cmd; fall back to the CLI module if the console script is missing."""
    argv = [
        part.format(config=config, host=host, port=port, data_dir=data_dir, python=sys.executable)
        for part in shlex.split(template)
    ]
    if argv and argv[0] == "ocpp-gateway" and shutil.which("ocpp-gateway") is None:
        argv[:1] = [sys.executable, "-c", _CLI_SHIM]
    return argv


def floor_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "bench.floor", "--host", host, "--port", str(port)]


def library_command(host: str, port: int) -> list[str]:
    """A central system on the `ocpp` library's defaults (bench/ocpp_library_server.py)."""
    return [sys.executable, "-m", "bench.ocpp_library_server", "--host", host, "--port", str(port)]


class ServerUnderTest:
    """A server subprocess: started pinned, awaited on its port, stopped with SIGTERM."""

    def __init__(self, name: str, argv: list[str], host: str, port: int, log: Path, cpus: set[int] | None,
                 env: dict[str, str] | None = None):
        self.name = name
        self.env = env or {}
        self.argv = argv
        self.host = host
        self.port = port
        self.log = log
        self.cpus = cpus
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float) -> int:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO_ROOT,
                env={**_child_env(), **self.env},
                preexec_fn=_pin(self.cpus),  # safe: the runner starts no threads
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self.proc.pid
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not accept on port {self.port} in {timeout_s} s: {self.log_tail()}"
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def run_loadgen(args: argparse.Namespace, url: str, server_pid: int, cpus: set[int] | None) -> dict[str, Any]:
    """Run bench.loadgen in its own process and return its JSON line."""
    argv = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--url",
        url,
        "--chargers",
        str(args.chargers),
        "--rates",
        ",".join(f"{r:g}" for r in args.rates),
        "--stage-seconds",
        str(args.stage_seconds),
        "--drain-seconds",
        str(args.drain_seconds),
        "--connect-concurrency",
        str(args.connect_concurrency),
        "--call-timeout",
        str(args.call_timeout),
        "--server-pid",
        str(server_pid),
    ]
    argv += ["--gen-gc", args.gen_gc]
    if args.warmup_seconds is not None:
        argv += ["--warmup-seconds", str(args.warmup_seconds)]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=_child_env(),
        preexec_fn=_pin(cpus),
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(
    args: argparse.Namespace, name: str, plan: tuple[set[int], set[int]] | None, work: Path
) -> dict[str, Any]:
    """Start one server, load it, stop it; an error becomes {"error": ...} in the report."""
    port = free_port(args.host)
    if name == "floor":
        argv = floor_command(args.host, port)
    elif name == "ocpplib":
        argv = library_command(args.host, port)
    else:
        data_dir = work / "gateway-data"
        data_dir.mkdir(exist_ok=True)
        config = work / "gateway.toml"
        template = (
            Path(args.gateway_config_template).read_text() if args.gateway_config_template else GATEWAY_TOML
        )
        config.write_text(
            template.format(
                host=args.host,
                port=port,
                data_dir=data_dir,
                admin_port=free_port(args.host),
                modbus_port=free_port(args.host),
                bacnet_port=free_port(args.host, socket.SOCK_DGRAM),
            )
        )
        argv = gateway_command(args.gateway_cmd, config, args.host, port, data_dir)
    log_dir = Path(args.log_dir) if args.log_dir else work
    log_dir.mkdir(parents=True, exist_ok=True)
    # The gateway measures its own loop lag (gateway/lagprobe.py); the other servers have no probe.
    lag_log = log_dir / f"{name}-loop-lag.jsonl"
    lag_log.unlink(missing_ok=True)
    env = {lagprobe.ENV_VAR: str(lag_log)} if name == "gateway" else {}
    server = ServerUnderTest(name, argv, args.host, port, log_dir / f"{name}.log", plan[0] if plan else None, env)
    try:
        # Other programs on the machine move every figure; record how busy it was.
        loadavg_before = list(os.getloadavg())
        pid = server.start(args.startup_timeout)
        time.sleep(args.settle_seconds)  # let lazy imports finish before the RSS baseline
        result = run_loadgen(args, f"ws://{args.host}:{port}/ocpp/", pid, plan[1] if plan else None)
        result["command"] = argv
        result["loadavg_before"] = loadavg_before
        if env:
            add_loop_lag(result, lagprobe.read_lines(str(lag_log)))
        result["log"] = str(server.log) if args.log_dir else None
    except RuntimeError as exc:
        return {"error": str(exc), "command": argv}
    finally:
        server.stop()
    if name == "gateway":
        result["durability"] = durability(work / "gateway-data" / "gateway.sqlite", result)
    return result


def durability(database: Path, result: dict[str, Any]) -> dict[str, Any] | None:
    """Every MeterValues the gateway answered is in its database (read after it stopped): the
    throughput does not come from skipping the commit that precedes each answer."""
    if not database.exists():
        return None  # a --gateway-cmd that keeps no database
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        stored = conn.execute("SELECT COUNT(*) FROM meter_values").fetchone()[0]
    answered = result.get("counters", {}).get("meter_values_answered")
    return {"meter_values_answered": answered, "meter_value_rows_stored": stored,
            "all_answered_stored": answered is not None and stored >= answered}


def add_loop_lag(result: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    """The server's own loop lag during the storm and each stage (`loop_lag`), from its probe."""
    for part in [result.get("storm", {}), *result.get("stages", [])]:
        window = part.get("wall_window")
        if window:
            part["loop_lag"] = lagprobe.summarise(lines, window[0], window[1])


def _ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return round(a / b, 3)
    return None


def ratios(gateway: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    """gateway / floor for each headline figure; stages are matched on offered rate."""
    floor_stages = {s["offered_rate"]: s for s in floor.get("stages", [])}
    stages = []
    for g in gateway.get("stages", []):
        f = floor_stages.get(g["offered_rate"])
        if f is None:
            continue
        stages.append(
            {
                "offered_rate": g["offered_rate"],
                "achieved_rate": _ratio(g["achieved_rate"], f["achieved_rate"]),
                "p50": _ratio(g["latency_ms"]["p50"], f["latency_ms"]["p50"]),
                "p99": _ratio(g["latency_ms"]["p99"], f["latency_ms"]["p99"]),
                "server_cpu_pct": _ratio(g["server_cpu_pct"], f["server_cpu_pct"]),
            }
        )
    return {
        "storm_seconds": _ratio(
            gateway.get("storm", {}).get("seconds"), floor.get("storm", {}).get("seconds")
        ),
        "rss_kib_per_charger": _ratio(
            gateway.get("server", {}).get("rss_kib_per_charger"),
            floor.get("server", {}).get("rss_kib_per_charger"),
        ),
        "stages": stages,
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The runner's options; used by `python -m bench.run`."""
    p.add_argument("--chargers", type=int, default=1000)
    p.add_argument("--rates", type=parse_rates, default=parse_rates("1000,2000,5000"))
    p.add_argument("--stage-seconds", type=float, default=10.0)
    p.add_argument("--warmup-seconds", type=float, default=None)
    p.add_argument("--drain-seconds", type=float, default=5.0)
    p.add_argument("--connect-concurrency", type=int, default=200)
    p.add_argument("--call-timeout", type=float, default=30.0)
    p.add_argument(
        "--gen-gc", choices=("default", "freeze", "off"), default="freeze", help="see bench.loadgen"
    )
    p.add_argument("--only", choices=("floor", "gateway", "ocpplib", "both", "all"), default="both",
                   help="both: gateway and floor; all: also a central system on the ocpp library's defaults")
    p.add_argument(
        "--gateway-cmd",
        default=DEFAULT_GATEWAY_CMD,
        help="gateway command; {config} {host} {port} {data_dir} {python} are filled in",
    )
    p.add_argument(
        "--gateway-config-template",
        default=None,
        help="TOML template to use instead of the built-in one ({host} {port} {data_dir})",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--log-dir", default=None, help="keep each server's output here (default: a temporary dir)"
    )
    p.add_argument("--startup-timeout", type=float, default=30.0)
    p.add_argument("--settle-seconds", type=float, default=1.0)
    p.add_argument("--no-pin", action="store_true", help="do not pin server and generator to separate cores")


def execute(args: argparse.Namespace) -> int:
    """Run the selected servers, print the JSON report; exit status 1 if a run failed."""
    raise_fd_limit()  # inherited by both children: each charger is a socket on each side
    plan = pinning_plan(not args.no_pin)
    report: dict[str, Any] = {
        "machine": machine_info(),
        "pinning": {"server_cpus": sorted(plan[0]), "loadgen_cpus": sorted(plan[1])} if plan else None,
        "settings": {
            "chargers": args.chargers,
            "rates": args.rates,
            "stage_seconds": args.stage_seconds,
            "connect_concurrency": args.connect_concurrency,
        },
    }
    names = {"both": ["gateway", "floor"], "all": ["gateway", "floor", "ocpplib"]}.get(args.only, [args.only])
    with tempfile.TemporaryDirectory(prefix="ocpp-bench-") as tmp:
        for name in names:
            report[name] = measure(args, name, plan, Path(tmp))
    if "gateway" in report and "floor" in report:
        report["ratios"] = ratios(report["gateway"], report["floor"])
    sys.stdout.write(json.dumps(report) + "\n")
    failed = any("error" in report[n] for n in names)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return execute(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
