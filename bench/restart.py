"""Gateway restart with known chargers: `python -m bench.restart --chargers 500 --rounds 3`.

What a site sees when its gateway restarts (a crash, an update, a power cut of the gateway alone):

1. **Prepare** a data directory with N known chargers: added to the device database (slots 1..N),
   then commissioned by a first run of the gateway: each charger booted, reported its connectors,
   sent a MeterValues and had its configuration read; the gateway is then stopped (SIGTERM).
2. **Restart**, `--rounds` times: start the gateway as users run it (`python -m gateway.main
   --config FILE run`, BACnet and Modbus on, loopback, ports picked per run), with the N chargers
   waiting to reconnect. The moment the OCPP port opens they all connect at once; `--booting`
   of them (a share) send BootNotification and StatusNotification (a power cycle), the others
   only a Heartbeat, and report their connectors when the gateway asks (TriggerMessage after
   `ocpp.status_trigger_after_s`), as real firmware does after a mere reconnect.
3. **Measure**, from the moment the process was started:
   * `port_open_s`: the first TCP connection to the OCPP port;
   * `all_accepted_s`: the last charger accepted (its BootNotification answered Accepted, or its
     Heartbeat answered);
   * `all_online_live_s`: the last charger whose `Online` point reads active and reliable over
     BACnet (a BACnet client in its own process, ReadPropertyMultiple), and for booting
     chargers their connector 1 status too (reported again, so reliable);
   * `all_statuses_confirmed_s`: the last charger whose connectors' status points read reliable
     (for chargers that do not boot: after the gateway asked them);
   * `get_configuration_calls`: configuration reads the restart caused.
   The report gives each round and the median of the rounds.

Chargers in slots beyond 418 have no BACnet points (docs/bacnet.md); they count for acceptance
only. One JSON line; the figures are in docs/benchmarks.md ("Restart with known chargers").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench import procstat
from bench.bms_harness import Agent, add_devices, free_udp_port, machine, tempdir
from bench.run import free_port
from points.identity import MAX_SLOT

CONFIG = """\
# Written by bench.restart.
[ocpp]
host = "127.0.0.1"
port = {port}
require_password = false  # the chargers send no password: this measures the restart, not scrypt
{ocpp_extra}
[database]
path = "{data_dir}/gateway.sqlite"

[admin]
port = {admin_port}

[modbus]
port = {modbus_port}

[bacnet]
address = "127.0.0.1/8"
port = {bacnet_port}
"""

CHARGER_POINTS = ("Online",)  # read for every charger
BOOT_POINTS = ("C1-Status",)  # reported again after a BootNotification
STATUS_POINTS = ("C0-Status", "C1-Status")


class Rig:
    """One data directory, its gateway process, the chargers and the BACnet client."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.ids = [f"RST{i:05d}" for i in range(1, args.chargers + 1)]
        every = max(1, round(1 / args.booting)) if args.booting > 0 else 0
        self.booting = [c for i, c in enumerate(self.ids) if every and i % every == 0]
        self.port, self.bacnet_port = free_port("127.0.0.1"), free_udp_port()
        self.config = work / "gateway.toml"
        trigger = args.status_trigger_after_s
        self.config.write_text(CONFIG.format(
            port=self.port, data_dir=work, admin_port=free_port("127.0.0.1"),
            modbus_port=free_port("127.0.0.1"), bacnet_port=self.bacnet_port,
            ocpp_extra=f"status_trigger_after_s = {trigger}\n" if trigger is not None else ""))
        self.url = f"ws://127.0.0.1:{self.port}/ocpp/"
        self.proc: asyncio.subprocess.Process | None = None
        self.chargers: Agent | None = None
        self.bacnet: Agent | None = None
        self.log = (Path(args.log_dir) if args.log_dir else work) / "gateway.log"

    async def start_gateway(self, profile: str | None = None) -> float:
        """Start `ocpp-gateway run` as users run it; the wall time just before the process starts.
        With `profile`, under the py-spy sampling profiler (raw stacks into that file)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        log = self.log.open("a")
        spy = ["py-spy", "record", "-r", "200", "-f", "raw", "-o", profile, "--"] if profile else []
        started_at = time.time()
        self.proc = await asyncio.create_subprocess_exec(
            *spy, sys.executable, "-m", "gateway.main", "--config", str(self.config), "run",
            stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        return started_at

    async def stop_gateway(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            for pid in _children(self.proc.pid) or [self.proc.pid]:  # under py-spy: the gateway
                os.kill(pid, signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.proc = None

    async def prepare(self) -> dict[str, Any]:
        await add_devices(str(self.work / "gateway.sqlite"), self.ids)
        self.chargers = await Agent.spawn("bench.restart_chargers", {"ids": self.ids, "booting": self.booting})
        self.bacnet = await Agent.spawn("bench.bms_bacnet", {
            "bind": f"127.0.0.1/8:{free_udp_port()}", "server": f"127.0.0.1:{self.bacnet_port}"})
        started_at = await self.start_gateway()
        probe = await self.chargers.ask("wait_port", port=self.port, until=started_at + 60, timeout=120)
        result = await self.chargers.ask("commission", url=self.url, timeout=600)
        await self.stop_gateway()
        return {"commission_s": result["seconds"], "commission_errors": result["errors"],
                "first_start_port_open_s": _since(probe["port_open_at"], started_at)}

    def watch_groups(self, points: tuple[str, ...], only: list[str] | None = None) -> dict[str, list[list[Any]]]:
        """The BACnet objects to read per charger (chargers with BACnet points only)."""
        types = {"Online": "binary-input", "C0-Status": "multi-state-input", "C1-Status": "multi-state-input"}
        instances = {"Online": 5000, "C0-Status": 0, "C1-Status": 500}  # docs/bacnet.md, "Numbering"
        groups = {}
        for slot, charger_id in enumerate(self.ids, start=1):
            if slot > MAX_SLOT or (only is not None and charger_id not in only):
                continue
            groups[charger_id] = [[types[p], slot * 10000 + instances[p]] for p in points]
        return groups

    async def round(self, number: int) -> dict[str, Any]:
        assert self.chargers is not None and self.bacnet is not None
        booting = set(self.booting)
        online = self.watch_groups(CHARGER_POINTS)
        for charger_id in online:
            if charger_id in booting:
                online[charger_id] += self.watch_groups(BOOT_POINTS, [charger_id])[charger_id]
        statuses = self.watch_groups(STATUS_POINTS)
        within = self.args.within
        profile = str(Path(self.args.py_spy) / f"restart-{number}.txt") if self.args.py_spy else None
        agents = [self.chargers.proc.pid, self.bacnet.proc.pid]
        cpu0, machine0, t0 = [procstat.cpu_seconds(p) for p in agents], procstat.machine_times(), time.perf_counter()
        started_at = await self.start_gateway(profile)
        assert self.proc is not None
        gateway_pid = self.proc.pid  # under py-spy: the profiler's (see _cpu_window)
        chargers = asyncio.ensure_future(self.chargers.ask(
            "reconnect", url=self.url, port=self.port, started_at=started_at, within=within, timeout=within + 60))
        live = await self.bacnet.ask("watch", groups=online, within=within, timeout=within + 60)
        cpu = _cpu_window(_children(gateway_pid)[0] if profile else gateway_pid, agents, cpu0, machine0,
                          time.perf_counter() - t0)
        confirmed = await self.bacnet.ask("watch", groups=statuses, within=within, timeout=within + 60)
        reconnect = await chargers
        reads = await self.chargers.ask("config_reads")
        await self.stop_gateway()
        accepted = reconnect["accepted_at"]
        return {
            "port_open_s": _since(reconnect["port_open_at"], started_at),
            "accepted": len(accepted), "accept_errors": reconnect["errors"], "accept_failed": reconnect["failed"],
            "all_accepted_s": _since(max(accepted.values(), default=None), started_at),
            "chargers_with_points": len(online),
            "online_live": len(live["live_at"]), "not_live": live["not_live"],
            "all_online_live_s": _since(max(live["live_at"].values(), default=None), started_at),
            "statuses_confirmed": len(confirmed["live_at"]),
            "all_statuses_confirmed_s": _since(max(confirmed["live_at"].values(), default=None), started_at),
            "get_configuration_calls": reads["get_configuration_calls"],
            **cpu,
        }

    async def close(self) -> None:
        await self.stop_gateway()
        for agent in (self.chargers, self.bacnet):
            if agent is not None:
                await agent.close()


def _cpu_window(gateway_pid: int, agents: list[int], cpu0: list[float | None],
                machine0: Any, wall_s: float) -> dict[str, Any]:
    """From the gateway's start until every charger was live: the CPU the gateway, the chargers
    and the BACnet client used, and what every other program on the machine used (100 = one core)."""
    gateway_s = procstat.cpu_seconds(gateway_pid)
    agents_s = [b - a for a, b in zip(cpu0, [procstat.cpu_seconds(p) for p in agents], strict=True)
                if a is not None and b is not None]
    own = (gateway_s or 0.0) + sum(agents_s)
    return {"gateway_cpu_s": round(gateway_s, 2) if gateway_s is not None else None,
            "clients_cpu_s": round(sum(agents_s), 2),
            **procstat.others_percent(machine0, procstat.machine_times(), own, wall_s)}


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _since(at: float | None, started_at: float) -> float | None:
    return round(at - started_at, 3) if at is not None else None


def median_of(rounds: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rounds if r.get(key) is not None]
    return round(statistics.median(values), 3) if len(values) == len(rounds) and values else None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempdir() as tmp:
        rig = Rig(args, Path(tmp))
        try:
            prepared = await rig.prepare()
            rounds = [await rig.round(n) for n in range(1, args.rounds + 1)]
        finally:
            await rig.close()
    keys = ("port_open_s", "all_accepted_s", "all_online_live_s", "all_statuses_confirmed_s")
    return {"benchmark": "restart", "chargers": args.chargers, "booting": len(rig.booting),
            "rounds": rounds, "median": {k: median_of(rounds, k) for k in keys},
            "errors": sum(r["accept_errors"] + (r["chargers_with_points"] - r["online_live"]) for r in rounds)
            + prepared["commission_errors"],
            **prepared, "machine": machine()}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.restart", description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--booting", type=float, default=0.5,
                        help="share of chargers that send BootNotification on reconnecting (0..1)")
    parser.add_argument("--status-trigger-after-s", type=float,
                        help="ocpp.status_trigger_after_s for the gateway (its default when not given)")
    parser.add_argument("--within", type=float, default=60.0, help="seconds a round may take")
    parser.add_argument("--log-dir", help="keep the gateway's output here")
    parser.add_argument("--py-spy", metavar="DIR",
                        help="profile each restarted gateway with py-spy (raw stacks into DIR; dev only)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    t0 = time.perf_counter()
    result = asyncio.run(run(args))
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    result["command"] = "python -m bench.restart " + " ".join(sys.argv[1:] if argv is None else argv)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
