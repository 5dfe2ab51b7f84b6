"""Modbus read latency: ``python -m bench.modbus_read --chargers 100``.

Starts the gateway as `ocpp-gateway run` builds it (point table, Modbus server; BACnet and the
admin API off), puts N added stations straight into the model (no websockets: the registry is
what the Modbus server reads), keeps their meter values changing at `--updates-per-s`, and reads
125 registers (one connector's meter area, the most a BMS can ask in one request) over and over
from a client in another process, so client and server do not share an event loop or a core's
time slice. Prints one JSON object: p50/p99/max latency in ms, and what was measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from typing import Any

MEASURANDS = (("Power.Active.Import", "", "W"), ("Energy.Active.Import.Register", "", "Wh"),
              ("Current.Import", "L1", "A"), ("Current.Import", "L2", "A"), ("Current.Import", "L3", "A"),
              ("Voltage", "L1-N", "V"), ("Voltage", "L2-N", "V"), ("Voltage", "L3-N", "V"))


def _percentile(sorted_ms: list[float], q: float) -> float:
    index = min(len(sorted_ms) - 1, max(0, math.ceil(q * len(sorted_ms)) - 1))
    return sorted_ms[index]


def run_client(port: int, units: list[int], addresses: list[int], requests: int, count: int) -> dict[str, Any]:
    """The measuring side (its own process): sync pymodbus client, one TCP connection."""
    from pymodbus.client import ModbusTcpClient

    client = ModbusTcpClient("127.0.0.1", port=port, timeout=5)
    if not client.connect():
        raise SystemExit(f"cannot connect to 127.0.0.1:{port}")
    latencies, errors = [], 0
    for i in range(requests + 50):
        unit, address = units[i % len(units)], addresses[i % len(addresses)]
        t0 = time.perf_counter()
        reply = client.read_input_registers(address, count=count, device_id=unit)
        elapsed = (time.perf_counter() - t0) * 1000
        if reply.isError():
            errors += 1
        elif i >= 50:  # the first requests warm up the connection and the caches
            latencies.append(elapsed)
    client.close()
    latencies.sort()
    return {"requests": len(latencies), "errors": errors,
            "p50_ms": round(_percentile(latencies, 0.50), 3), "p99_ms": round(_percentile(latencies, 0.99), 3),
            "max_ms": round(latencies[-1], 3), "mean_ms": round(statistics.fmean(latencies), 3)}


def populate(gateway: Any, chargers: int, connectors: int) -> None:
    """N added stations, online, with status, meter values and a few configuration keys."""
    from gateway.model.station import ConfigKey, MeterKey, MeterReading

    registry, now = gateway.registry, time.time()
    for slot in range(1, chargers + 1):
        station = registry.ensure(f"BENCH{slot:05d}")
        registry.update_station(station, slot=slot, registration="Accepted")
        registry.set_online(station, True)
        for key, value in (("HeartbeatInterval", "300"), ("MeterValueSampleInterval", "60"),
                           ("AuthorizeRemoteTxRequests", "true")):
            registry.set_config(station, ConfigKey(key, value, readonly=False))
        for connector_id in range(1, connectors + 1):
            registry.update_connector(station, connector_id, status="Charging")
            for measurand, phase, unit in MEASURANDS:
                registry.record_reading(station, MeterKey(connector_id, measurand, phase),
                                        MeterReading(random.uniform(1, 1000), unit, now))


async def churn(gateway: Any, chargers: int, connectors: int, per_s: float, stop: asyncio.Event) -> int:
    """MeterValues-like updates (all measurands of one connector) at a steady rate."""
    from gateway.model.station import MeterKey, MeterReading

    registry, sent = gateway.registry, 0
    if per_s <= 0:
        await stop.wait()
        return 0
    interval = 1 / per_s
    next_at = time.perf_counter()
    while not stop.is_set():
        station = registry.get(f"BENCH{random.randint(1, chargers):05d}")
        connector_id = random.randint(1, connectors)
        for measurand, phase, unit in MEASURANDS:
            registry.record_reading(station, MeterKey(connector_id, measurand, phase),
                                    MeterReading(random.uniform(1, 1000), unit, time.time()))
        sent += 1
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    return sent


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from gateway.main import Gateway
    from gateway.settings import Settings
    from points.modbus.layout import connector_area_base
    from points.modbus.registers import MAX_FLAT_SLOT

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings()
        settings.ocpp.host, settings.ocpp.port = "127.0.0.1", 0
        settings.admin.enabled = settings.bacnet.enabled = False
        settings.modbus.port, settings.modbus.unit_id_per_charger = 0, args.unit_ids
        settings.database.path = f"{tmp}/gateway.sqlite"
        gateway = Gateway(settings.validate())
        t0 = time.perf_counter()
        await gateway.start()
        start_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        populate(gateway, args.chargers, args.connectors)  # the model and the point table
        populate_s = time.perf_counter() - t0
        server = gateway.modbus
        assert server is not None
        t0 = time.perf_counter()
        await asyncio.sleep(0)
        await server.flushed()  # every register of every charger pushed
        first_push_s = time.perf_counter() - t0

        if args.unit_ids:
            units = list(range(1, min(args.chargers, 247) + 1))
            addresses = [connector_area_base(1, 1, per_unit=True) + 110]
        else:
            units = [1]
            addresses = [connector_area_base(slot, 1) + 110 for slot in range(1, min(args.chargers, MAX_FLAT_SLOT) + 1)]
        stop = asyncio.Event()
        churner = asyncio.create_task(churn(gateway, args.chargers, args.connectors, args.updates_per_s, stop))
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.modbus_read", "--client", json.dumps(
                {"port": gateway.ports["modbus"], "units": units, "addresses": addresses,
                 "requests": args.requests, "count": 125}),
            stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        elapsed = time.perf_counter() - t0
        stop.set()
        updates = await churner
        await gateway.stop()
    if proc.returncode:
        raise SystemExit(f"client failed with {proc.returncode}")
    result = json.loads(out)
    return {
        "benchmark": "modbus_read", "chargers": args.chargers, "connectors": args.connectors,
        "addressing": "unit id per charger" if args.unit_ids else "flat",
        "slots_read": len(units) if args.unit_ids else len(addresses), "registers_per_read": 125,
        **result, "reads_per_s": round(result["requests"] / elapsed, 1),
        "meter_updates_per_s": round(updates / elapsed, 1),
        "gateway_start_s": round(start_s, 3), "populate_model_s": round(populate_s, 3),
        "first_register_push_s": round(first_push_s, 3),
        "python": platform.python_version(), "pymodbus": metadata.version("pymodbus"),
        "cpus": _cpus(),
    }


def _cpus() -> int:
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.modbus_read", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=int, default=100)
    parser.add_argument("--connectors", type=int, default=2, help="connectors per charger (1..3)")
    parser.add_argument("--requests", type=int, default=2000, help="reads of 125 registers to time")
    parser.add_argument("--updates-per-s", type=float, default=100.0,
                        help="meter updates (8 measurands of one connector) per second during the reads")
    parser.add_argument("--unit-ids", action="store_true", help="modbus.unit_id_per_charger: one unit id per slot")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    cli = parse()
    if cli.client:
        spec = json.loads(cli.client)
        print(json.dumps(run_client(spec["port"], spec["units"], spec["addresses"], spec["requests"], spec["count"])))
    else:
        # Slots beyond the flat map are warned about once per charger; the JSON is the output.
        logging.basicConfig(level=logging.ERROR)
        print(json.dumps(asyncio.run(main(cli)), indent=2))
