"""BMS-side benchmarks: `python -m bench.bms cov|rpm|modbus|startup [options]`, one JSON line each.

* `cov`: MeterValues -> BACnet COV latency. N added chargers on raw websockets send an open-loop
  MeterValues load whose Power.Active.Import changes by more than the COV increment every time;
  a BACnet client subscribed (unconfirmed) to the power objects of a sample of chargers
  timestamps each notification. Latency = arrival - send (`time.time()` in both processes).
* `rpm`: ReadPropertyMultiple of presentValue of one connector's objects, repeated over chargers.
* `modbus`: 125-register reads of one connector's meter area (flat map, or a unit id per charger).
* `startup`: N chargers seen before (connectors, meters, configuration keys in the database);
  restart and time Gateway.start() and the first ReadProperty answer of the last object.

Everything runs the gateway as users run it (`bench.bms_harness`); clients are other processes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
import time
from collections import defaultdict, deque
from typing import Any

from bench.bms_harness import (
    Agent,
    CpuWindow,
    LoopWatch,
    add_devices,
    charger_ids,
    free_udp_port,
    gateway_settings,
    machine,
    percentiles,
    start_gateway,
    tempdir,
)

POWER_NAME = "CP{slot}-C1-Power-Active-Import"


class Rig:
    """A gateway with N added, connected chargers, and the two client processes."""

    def __init__(self, args: argparse.Namespace, tmp: str) -> None:
        self.args = args
        self.db = f"{tmp}/gateway.sqlite"
        self.ids = charger_ids(args.chargers)
        self.bacnet_port = free_udp_port()
        self.gateway: Any = None
        self.chargers: Agent | None = None
        self.bacnet: Agent | None = None

    async def start(self, transaction: bool = True, unit_ids: bool = False, **smart: Any) -> dict[str, Any]:
        await add_devices(self.db, self.ids)
        self.gateway = await start_gateway(gateway_settings(self.db, self.bacnet_port, unit_ids, **smart))
        url = f"ws://127.0.0.1:{self.gateway.ports['ocpp']}/ocpp/"
        self.chargers = await Agent.spawn("bench.bms_chargers", {"url": url, "ids": self.ids})
        self.bacnet = await Agent.spawn("bench.bms_bacnet", {
            "bind": f"127.0.0.1/8:{free_udp_port()}", "server": f"127.0.0.1:{self.bacnet_port}"})
        setup = await self.chargers.ask("setup", transaction=transaction, timeout=150)
        # One MeterValues per charger, so every meter point (and its BACnet object) exists.
        n = len(self.ids)
        warm = await self.chargers.ask("load", rate=min(2000.0, 20.0 * n), seconds=n / min(2000.0, 20.0 * n))
        t0 = time.perf_counter()
        await self.objects_built()
        from points.table import MAX_SLOT
        return {"setup_s": setup["seconds"], "setup_errors": setup["errors"]["setup"],
                "warmup_answered": warm["answered"], "objects_built_s": round(time.perf_counter() - t0, 1),
                "objects_served": len(self.table.points()),
                "chargers_with_points": min(len(self.ids), MAX_SLOT)}

    @property
    def table(self) -> Any:
        return self.gateway.points.table

    async def objects_built(self, timeout: float = 60) -> None:
        server = self.gateway.points.bacnet
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if server._queue == [] and all(p.uid in server.objects for p in self.table.points()):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("BACnet objects not built in time")

    def power_object(self, slot: int) -> list[Any]:
        point = self.table.get(POWER_NAME.format(slot=slot))
        if point is None:
            raise RuntimeError(f"no power point for slot {slot}")
        return [point.spec.bacnet_type, point.instance]

    async def stop(self) -> None:
        if self.chargers is not None:
            try:
                await self.chargers.ask("stop", timeout=60)
            except (RuntimeError, TimeoutError):
                pass
            await self.chargers.close()
        if self.bacnet is not None:
            await self.bacnet.close()
        if self.gateway is not None:
            await self.gateway.stop()


def sample_slots(n: int, k: int) -> list[int]:
    """k slots spread evenly over 1..n, among those that have points (docs/bacnet.md: 1..418)."""
    from points.table import MAX_SLOT
    n = min(n, MAX_SLOT)
    k = max(1, min(k, n))
    return sorted({1 + (i * n) // k for i in range(k)})


async def bench_cov(args: argparse.Namespace) -> dict[str, Any]:
    with tempdir() as tmp:
        rig = Rig(args, tmp)
        try:
            prep = await rig.start()
            if args.gc_freeze:  # an experiment, not what users run: see docs/benchmarks.md
                gc.collect()
                gc.freeze()
            slots = sample_slots(args.chargers, args.sample)
            objects = [rig.power_object(s) for s in slots]
            by_object = {f"{o[0]},{o[1]}": rig.ids[s - 1] for o, s in zip(objects, slots, strict=True)}
            assert rig.bacnet is not None and rig.chargers is not None
            sub = await rig.bacnet.ask("subscribe", objects=objects, lifetime=600)
            await asyncio.sleep(0.5)
            await rig.bacnet.ask("notifications")  # the initial notification of each subscription
            window, watch = CpuWindow([rig.chargers, rig.bacnet]), LoopWatch()
            watch.start()
            load = await rig.chargers.ask("load", rate=args.rate, seconds=args.seconds,
                                          sample=[by_object[k] for k in by_object], timeout=args.seconds + 60)
            await asyncio.sleep(args.drain)
            cpu = {**window.result(), **watch.result()}
            records = (await rig.bacnet.ask("notifications"))["records"]
        finally:
            await rig.stop()
    sends: dict[tuple[str, float], deque[float]] = defaultdict(deque)
    for charger_id, power_w, sent in load.pop("sends"):
        sends[(charger_id, float(power_w))].append(sent)
    latencies, unmatched = [], 0
    for key, value, arrived in sorted(records, key=lambda r: r[2]):
        queue = sends.get((by_object.get(key, ""), round(value)))
        if queue:
            latencies.append((arrived - queue.popleft()) * 1000)
        else:
            unmatched += 1
    expected = len(latencies) + sum(len(q) for q in sends.values())
    return {"benchmark": "bms cov", "chargers": args.chargers, "gc_freeze": args.gc_freeze, "subscribed_objects": sub["subscribed"],
            "subscribe_failed": sub["failed"], "offered_rate": args.rate, "seconds": args.seconds,
            "meter_values": {k: v for k, v in load.items() if k != "errors"}, "ocpp_errors": load["errors"],
            "notifications_expected": expected, "notifications_received": len(latencies),
            "notifications_unmatched": unmatched, "missing": expected - len(latencies),
            "latency": percentiles(latencies), **prep, **cpu, "goal_p99_ms": 200,
            "errors": sum(load["errors"].values()) + sub["failed"] + prep["setup_errors"],
            "machine": machine()}


def connector_objects(table: Any, slot: int) -> list[list[Any]]:
    """Every object of connector 1 of a charger (status, session, meters, smart charging)."""
    return [[p.spec.bacnet_type, p.instance] for p in table.points()
            if p.slot == slot and p.connector_id == 1]


async def bench_rpm(args: argparse.Namespace) -> dict[str, Any]:
    with tempdir() as tmp:
        rig = Rig(args, tmp)
        try:
            prep = await rig.start()
            assert rig.bacnet is not None and rig.chargers is not None
            requests = [connector_objects(rig.table, s) for s in sample_slots(args.chargers, 50)]
            window, watch = CpuWindow([rig.chargers, rig.bacnet]), LoopWatch()
            watch.start()
            load_task = None
            if args.rate > 0:
                load_task = asyncio.ensure_future(rig.chargers.ask("load", rate=args.rate, seconds=3600))
            result = await rig.bacnet.ask("rpm", objects=requests, requests=args.requests, timeout=170)
            cpu = {**window.result(), **watch.result()}
            if load_task is not None:  # the load runs until the charger process is stopped
                load_task.cancel()
        finally:
            await rig.stop()
    sizes = sorted(len(r) for r in requests)
    return {"benchmark": "bms rpm", "chargers": args.chargers, "background_meter_values_per_s": args.rate,
            "objects_per_request": {"min": sizes[0], "max": sizes[-1]}, "requests": args.requests,
            "latency": percentiles(result["latencies_ms"]), "values_read": result["values"],
            "errors": result["errors"] + prep["setup_errors"],
            **prep, **cpu, "machine": machine()}


async def bench_modbus(args: argparse.Namespace) -> dict[str, Any]:
    from points.modbus.layout import connector_area_base
    from points.modbus.registers import MAX_FLAT_SLOT
    with tempdir() as tmp:
        rig = Rig(args, tmp)
        try:
            prep = await rig.start(unit_ids=args.unit_ids)
            server = rig.gateway.modbus
            assert server is not None
            await server.flushed()
            if args.unit_ids:
                units = list(range(1, min(args.chargers, 247) + 1))
                addresses = [connector_area_base(1, 1, per_unit=True) + 110]
            else:
                units = [1]
                addresses = [connector_area_base(s, 1) + 110 for s in range(1, min(args.chargers, MAX_FLAT_SLOT) + 1)]
            spec = {"port": rig.gateway.ports["modbus"], "units": units, "addresses": addresses,
                    "requests": args.requests, "count": 125}
            window = CpuWindow([])
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.modbus_read", "--client",
                                                        json.dumps(spec), stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(proc.communicate(), 170)
            cpu = window.result()
        finally:
            await rig.stop()
    if proc.returncode:
        raise RuntimeError(f"modbus client failed ({proc.returncode})")
    result = json.loads(out)
    addressable = min(args.chargers, 247 if args.unit_ids else MAX_FLAT_SLOT)
    return {"benchmark": "bms modbus", "chargers": args.chargers,
            "addressing": "unit id per charger" if args.unit_ids else "flat (unit id 1)",
            "chargers_addressable": addressable, "chargers_not_addressable": args.chargers - addressable,
            "registers_per_read": 125, "latency": {"count": result["requests"], "p50_ms": result["p50_ms"],
                                                   "p99_ms": result["p99_ms"], "max_ms": result["max_ms"]},
            "errors": result["errors"] + prep["setup_errors"], **prep, **cpu, "machine": machine()}


async def bench_startup(args: argparse.Namespace) -> dict[str, Any]:
    with tempdir() as tmp:
        rig = Rig(args, tmp)
        try:
            prep = await rig.start(transaction=False)
            points = rig.table.points()
            last = points[-1]
            last_slot = max(p.slot for p in points)
            last_object = [[p.spec.bacnet_type, p.instance] for p in points if p.slot == last_slot][-1]
            before = len(points)
            assert rig.chargers is not None
            await rig.chargers.ask("stop", timeout=60)
            await rig.chargers.close()
            rig.chargers = None
            await rig.gateway.stop()
            rig.gateway = None
            assert rig.bacnet is not None
            waiter = asyncio.ensure_future(rig.bacnet.ask("wait_read", object=last_object, within=120, timeout=150))
            await asyncio.sleep(0.3)  # the client is polling before the gateway starts
            t_start = time.time()
            t0 = time.perf_counter()
            rig.gateway = await start_gateway(gateway_settings(rig.db, rig.bacnet_port))
            start_s = time.perf_counter() - t0
            served = len(rig.gateway.points.bacnet.objects)
            answer = await waiter
        finally:
            await rig.stop()
    answered = answer["answered_at"]
    return {"benchmark": "bms startup", "chargers": args.chargers, "objects_before_restart": before,
            "objects_after_start": served, "last_object": last_object, "last_point": last.name,
            "gateway_start_s": round(start_s, 3),
            "first_answer_s": round(answered - t_start, 3) if answered else None,
            "errors": prep["setup_errors"] + (0 if answered else 1) + (before - served if served < before else 0),
            **prep, "machine": machine()}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bms", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    cov = sub.add_parser("cov", help="MeterValues -> BACnet COV notification latency")
    cov.add_argument("--chargers", type=int, default=1000)
    cov.add_argument("--rate", type=float, default=2000.0, help="MeterValues per second, all chargers")
    cov.add_argument("--seconds", type=float, default=20.0)
    cov.add_argument("--sample", type=int, default=100, help="chargers whose power object is subscribed")
    cov.add_argument("--drain", type=float, default=2.0, help="seconds to wait for late notifications")
    cov.add_argument("--gc-freeze", action="store_true",
                     help="experiment: gc.freeze() in the gateway's process once its objects are built")
    rpm = sub.add_parser("rpm", help="ReadPropertyMultiple latency")
    rpm.add_argument("--chargers", type=int, default=100)
    rpm.add_argument("--requests", type=int, default=1000)
    rpm.add_argument("--rate", type=float, default=0.0, help="background MeterValues per second")
    mb = sub.add_parser("modbus", help="125-register read latency")
    mb.add_argument("--chargers", type=int, default=100)
    mb.add_argument("--requests", type=int, default=2000)
    mb.add_argument("--unit-ids", action="store_true", help="modbus.unit_id_per_charger")
    st = sub.add_parser("startup", help="start-up time with chargers seen before")
    st.add_argument("--chargers", type=int, default=500)
    return parser.parse_args(argv)


RUNNERS = {"cov": bench_cov, "rpm": bench_rpm, "modbus": bench_modbus, "startup": bench_startup}


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    logging.basicConfig(level=logging.ERROR)
    t0 = time.perf_counter()
    result = asyncio.run(RUNNERS[args.what](args))
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    result["command"] = "python -m bench.bms " + " ".join(sys.argv[1:] if argv is None else argv)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
