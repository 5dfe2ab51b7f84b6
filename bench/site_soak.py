"""Site-limit soak: `python -m bench.site_soak --chargers 50 --minutes 10 --limit-every 60 --restarts 2`.

Simulated chargers of the four manual profiles (`gateway.simulator`, with the real-firmware
behaviours on: a car ramps up over seconds, a TxProfile for an unknown transaction is rejected,
sampling goes on while the central system is away and is replayed before the StopTransaction,
a reconnect sends no BootNotification) charge in sessions that start and end at random. Every
`--limit-every` seconds a BMS writes a new site current limit, alternately over BACnet (another
process, WriteProperty at priority 8) and Modbus (FC16, commanding the same priority); the
gateway is restarted `--restarts` times. Printed as one JSON line (`bench/site_soak_report.py`):

* `offered_over_limit`: once a second, the sum of what the charging sessions' chargers offer
  (amperes per phase) against the limit in force; every sample above it, split into new sessions
  no profile applies to yet, a lowering in flight (within 2 s of a change and not above the old
  limit), both at once, and violations (anything else);
* `writes_per_session`: profile writes for each transaction against the issue's goal, 1 + the
  changes of the limit in force during it (a write naming no transaction, to the session's
  connector while it ran, counts for it: the AC wallbox's share in its TxDefaultProfile);
* `limit_to_profile`: from each limit write (BMS client's send) to the profile each charger got
  from the pass that took it; `limit_received_to_profile` from its arrival at the controller;
  `timeline_ms` where the time goes (send, arrival, pass start, first/last profile, pass length);
* `rejected_loops`: transactions with 3 or more rejected profile writes (goal 0);
* `writes_per_charger`: profile writes of each charger in the run, and scaled to an hour.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import random
import socket
import sys
import time
from collections import defaultdict
from typing import Any

from bench import site_soak_report as report
from bench.bms_harness import Agent, free_udp_port, machine, percentiles, tempdir
from gateway.settings import SmartChargingSettings

PROFILES = ("smappee", "acwallbox", "zappi", "evlink")
SITE_CURRENT_LIMIT = ["analog-value", 2]  # points.catalog SITE_SPECS: slot 0, offset 2
MODBUS_SITE_CURRENT_LIMIT = 12  # docs/modbus.md: holding 12-13, FLOAT32 A
PROFILE_LINE = "<- SetChargingProfile"


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Soak:
    """The gateway (restarted in place), the simulated chargers and the two BMS clients."""

    def __init__(self, args: argparse.Namespace, tmp: str) -> None:
        self.args, self.rng = args, random.Random(args.seed)
        self.db = f"{tmp}/gateway.sqlite"
        self.ports = {"ocpp": free_tcp_port(), "modbus": free_tcp_port(), "bacnet": free_udp_port()}
        self.ids = [f"SOAK{i:03d}" for i in range(1, args.chargers + 1)]
        self.gw: Any = None
        self.sims: list[Any] = []
        self.events: dict[str, list[tuple[float, str]]] = defaultdict(list)
        self.limit_writes: list[tuple[float, float, str]] = []  # (time, amps, via)
        self.sessions: dict[tuple[str, int], list[float]] = {}  # (charger, local tx) -> [start, stop]
        self.started: dict[tuple[str, int], Any] = {}  # (charger, local tx) -> the charger's transaction
        self.writes_in_tx: dict[str, list[bool]] = defaultdict(list)  # per profile write: in a transaction
        self.sim_of: dict[str, Any] = {}
        self.samples: list[tuple[float, float, float | None, float]] = []  # (time, offered, limit, unprofiled)
        self.restarted_at: list[float] = []
        self.received_at: list[float] = []
        self.limit_changes: list[tuple[float, float | None, float | None]] = []  # (time, before, after)
        self.passes: list[tuple[float, float]] = []  # smart-charging passes (start, end)
        self.above: list[tuple[float, list[Any]]] = []  # samples above the limit, per charger

    def settings(self) -> Any:
        from gateway.settings import Settings
        s = Settings()
        s.ocpp.host, s.ocpp.port = "127.0.0.1", self.ports["ocpp"]
        s.ocpp.require_password = False  # the simulated chargers send no password
        s.admin.enabled = False
        s.bacnet.address, s.bacnet.port = "127.0.0.1/8", self.ports["bacnet"]
        s.modbus.enabled, s.modbus.host, s.modbus.port = True, "127.0.0.1", self.ports["modbus"]
        # The BACnet BMS writes at priority 8; the Modbus EMS commands the same slot, so the last
        # writer wins (at the default 10 every Modbus write would sit below the BACnet command).
        s.modbus.bacnet_priority = 8
        s.database.path = self.db
        s.smart_charging.start_limit_a = self.args.start_limit
        s.smart_charging.newcomer_reserve_a = self.args.reserve
        return s.validate()

    async def start_gateway(self) -> None:
        from gateway.main import Gateway
        self.gw = Gateway(self.settings())
        await self.gw.start()
        # When each BMS write reached the controller (the BMS client's own send time includes
        # its first-request address resolution: about a second for bacpypes3).
        charging = self.gw.charging
        original, reallocate = charging.set_site_limit, charging.reallocate

        async def traced(*args: Any, **kwargs: Any) -> Any:
            self.received_at.append(time.time())
            before = charging.in_force.limit.current_a
            result = await original(*args, **kwargs)
            self.limit_changes.append((time.time(), before, charging.in_force.limit.current_a))
            return result

        async def traced_pass() -> None:  # when each smart-charging pass starts and ends
            start = time.time()
            await reallocate()
            self.passes.append((start, time.time()))
        charging.set_site_limit, charging.reallocate = traced, traced_pass

    async def restart(self) -> None:
        self.restarted_at.append(time.time())
        await self.gw.stop()
        await self.start_gateway()

    async def start(self) -> None:
        from gateway.simulator import Simulator
        from gateway.simulator.profile import load_profile, with_firmware
        await self.start_gateway()
        for i, charger_id in enumerate(self.ids):
            name = PROFILES[i % len(PROFILES)]
            await self.gw.device_book.add_device(charger_id)
            if name == "acwallbox":
                await self.gw.device_book.assign_quirk(charger_id, "ac-wallbox")  # manual 001 names no model
            profile = with_firmware(load_profile(name), reject_unknown_transaction=True, ramp_s=5.0,
                                    meter_while_offline=True, boot_on_reconnect=False)
            sim = Simulator(profile, charger_id, f"ws://127.0.0.1:{self.ports['ocpp']}/ocpp",
                            heartbeat=False, meter_loop=True, reconnect_delay_s=1.0,
                            on_event=functools.partial(self.on_event, charger_id))
            sim.config.set_internal(profile.quirks.meter_interval_key, str(self.args.meter_interval))
            sim.config.set_internal(profile.quirks.measurands_key, "Energy.Active.Import.Register,Current.Import")
            self.sims.append(sim)
            self.sim_of[charger_id] = sim
        await asyncio.gather(*(sim.start() for sim in self.sims))

    def on_event(self, charger_id: str, line: str) -> None:
        """Every charger event with its time; for a profile write also whether the charger had a
        transaction on connector 1 when it arrived (it emits the line before it handles it)."""
        self.events[charger_id].append((time.time(), line))
        if PROFILE_LINE in line:
            sim = self.sim_of.get(charger_id)
            self.writes_in_tx[charger_id].append(sim is not None and sim.connectors[1].transaction is not None)

    async def write_limit(self, bacnet: Agent, modbus: Any, amps: float, via: str) -> None:
        if via == "bacnet":
            answer = await bacnet.ask("write", object=SITE_CURRENT_LIMIT, value=amps, priority=8)
            sent = answer["sent_at"]
        else:
            sent = time.time()
            words = modbus.convert_to_registers(amps, modbus.DATATYPE.FLOAT32)
            reply = await modbus.write_registers(MODBUS_SITE_CURRENT_LIMIT, words, device_id=1)
            if reply.isError():
                raise RuntimeError(f"Modbus write refused: {reply}")
        self.limit_writes.append((sent, amps, via))

    async def drive_sessions(self, deadline: float) -> None:
        """Each second, an idle charger may start a session and a charging one may end it."""
        while time.time() < deadline:
            for sim in self.sims:
                tx = sim.connectors[1].transaction
                if tx is None and self.rng.random() < 1 / self.args.idle_s:
                    before = time.time()  # the car starts here; its share may arrive before we return
                    started = await sim.start_session(1, "SOAKTAG", authorize=False)
                    if started is not None:
                        self.sessions[(sim.charger_id, started.local_id)] = [before, 0.0]
                        self.started[(sim.charger_id, started.local_id)] = started
                elif tx is not None and self.rng.random() < 1 / self.args.session_s:
                    await sim.stop_session(1)
                    self.sessions[(sim.charger_id, tx.local_id)][1] = time.time()
            await asyncio.sleep(1.0)

    async def sample(self, deadline: float) -> None:
        """Once a second: what the charging sessions are offered, against the limit in force."""
        last_limit: float | None = None
        while time.time() < deadline:
            charging = [s for s in self.sims if s.connectors[1].transaction]
            offered = sum(s.connectors[1].offered_a for s in charging)
            # A session no profile applies to yet offers the charger's maximum (it just started,
            # or started while the gateway was restarting).
            unprofiled = sum(s.connectors[1].offered_a for s in charging if s.limit_a(1) is None)
            if self.gw is not None and self.gw.charging is not None and self.gw.started.is_set():
                last_limit = self.gw.charging.in_force.limit.current_a
            self.samples.append((time.time(), offered, last_limit, unprofiled))
            if last_limit is not None and offered - unprofiled > last_limit:  # for --dump: who offers what
                self.above.append((time.time(), [(s.charger_id, s.connectors[1].offered_a, s.limit_a(1),
                                                  s.connectors[1].transaction.transaction_id) for s in charging]))
            await asyncio.sleep(1.0)

    async def run(self) -> dict[str, Any]:
        from pymodbus.client import AsyncModbusTcpClient
        args = self.args
        await self.start()
        bacnet = await Agent.spawn("bench.bms_bacnet", {
            "bind": f"127.0.0.1/8:{free_udp_port()}", "server": f"127.0.0.1:{self.ports['bacnet']}"})
        t0 = time.time()
        deadline = t0 + args.minutes * 60
        tasks = [asyncio.create_task(self.drive_sessions(deadline)), asyncio.create_task(self.sample(deadline))]
        restarts = [t0 + args.minutes * 60 * (i + 1) / (args.restarts + 1) for i in range(args.restarts)]
        try:
            n = 0
            while time.time() < deadline:
                if restarts and time.time() >= restarts[0]:
                    restarts.pop(0)
                    await self.restart()
                modbus = AsyncModbusTcpClient("127.0.0.1", port=self.ports["modbus"], timeout=5)
                await modbus.connect()
                via = "bacnet" if n % 2 == 0 else "modbus"
                await self.write_limit(bacnet, modbus, float(self.rng.randrange(40, 160, 4)), via)
                modbus.close()
                n += 1
                await asyncio.sleep(min(args.limit_every, max(0.0, deadline - time.time())))
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await bacnet.close()
            for sim in self.sims:
                await sim.stop()
            await self.gw.stop()
        if args.dump:
            with open(args.dump, "w") as out:
                json.dump({"events": self.events, "passes": self.passes, "limit_changes": self.limit_changes,
                           "limit_writes": self.limit_writes, "received_at": self.received_at,
                           "restarted_at": self.restarted_at, "above": self.above}, out)
        return self.report(time.time() - t0)

    def report(self, wall_s: float) -> dict[str, Any]:
        per_session, rejected_loops = report.writes_per_session(self)
        latencies, from_receipt, per_write = report.latencies(self)
        return {
            "benchmark": "site_soak", "chargers": len(self.ids), "minutes": self.args.minutes,
            "limit_writes": len(self.limit_writes), "restarts": self.args.restarts,
            # A write of the value the point already held goes no further than the point.
            "limit_writes_not_at_controller": sum(1 for sent, _a, _v in self.limit_writes
                                                  if report.receipt(self, sent) is None),
            "sessions": len(self.sessions),
            "offered_over_limit": report.over_limit(self),
            "writes_per_session": per_session,
            "limit_to_profile": {**percentiles(latencies), "per_write_max_ms": per_write},
            "limit_received_to_profile": percentiles(from_receipt),
            "timeline_ms": report.timeline(self),
            "rejected_loops": rejected_loops,
            "rejections": sum(1 for ev in self.events.values() for _t, line in ev
                              if "SetChargingProfile rejected" in line),
            "writes_per_charger": report.writes_per_charger(self, wall_s),
            "wall_s": round(wall_s, 1), "machine": machine()}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.site_soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--limit-every", type=float, default=60.0, help="seconds between BMS limit writes")
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--session-s", type=float, default=90.0, help="mean session length")
    parser.add_argument("--idle-s", type=float, default=30.0, help="mean idle time between sessions")
    parser.add_argument("--meter-interval", type=int, default=10, help="MeterValueSampleInterval of every charger")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--reserve", type=float, default=SmartChargingSettings().newcomer_reserve_a,
                        help="smart_charging.newcomer_reserve_a (left free for a car that arrives)")
    parser.add_argument("--dump", default=None, help="also write every charger event and pass to this JSON file")
    parser.add_argument("--start-limit", type=float, default=SmartChargingSettings().start_limit_a,
                        help="smart_charging.start_limit_a (a new session's current until its share arrives; "
                             "default: the setting's default)")
    parser.add_argument("--no-start-limit", dest="start_limit", action="store_const", const=None,
                        help="no start limit (a new session offers the charger's maximum until its share)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    logging.basicConfig(level=logging.CRITICAL)
    with tempdir() as tmp:
        result = asyncio.run(Soak(args, tmp).run())
    result["command"] = "python -m bench.site_soak " + " ".join(sys.argv[1:] if argv is None else argv)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
