"""Site-limit propagation: `python -m bench.site_limit --chargers 50`, one JSON line.

N added chargers (raw websockets, `bench.bms_chargers`) each run a transaction and accept every
SetChargingProfile. A BMS client in another process writes the site power limit (BACnet
WriteProperty to analog-value 1 `Site-PowerLimit` at priority 8, or Modbus FC16 to holding
registers 10-11); the time to propagate is from the write's send to the arrival of the LAST
charger's SetChargingProfile (`time.time()` in both processes). Several writes of different
values; after each, the run waits `--settle` seconds more and counts the profiles each charger
got, so repeated writes to one charger (churn) show. Only the session shares count: the start
limit each charger holds on connector 0 (smart_charging.start_limit_a, written once when a limit
comes into force) is not a share.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import struct
import sys
import time
from typing import Any

from bench.bms import Rig
from bench.bms_harness import CpuWindow, machine, percentiles, tempdir

SITE_POWER_LIMIT = ["analog-value", 1]  # points.catalog SITE_SPECS: slot 0, offset 1
MODBUS_SITE_POWER_LIMIT = 10  # docs/modbus.md: holding 10-11, FLOAT32 kW, ABCD


def modbus_write(port: int, value_kw: float) -> dict[str, Any]:
    """The client side (its own process): one FC16 write of the site power limit."""
    from pymodbus.client import ModbusTcpClient
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=10)
    if not client.connect():
        raise SystemExit(f"cannot connect to 127.0.0.1:{port}")
    words = list(struct.unpack(">HH", struct.pack(">f", value_kw)))
    sent = time.time()
    reply = client.write_registers(MODBUS_SITE_POWER_LIMIT, words, device_id=1)
    acked = time.time()
    client.close()
    return {"sent_at": sent, "acked_at": acked, "error": str(reply) if reply.isError() else None}


async def write_limit(rig: Rig, via: str, value_kw: float) -> dict[str, Any]:
    if via == "bacnet":
        assert rig.bacnet is not None
        return await rig.bacnet.ask("write", object=SITE_POWER_LIMIT, value=value_kw, priority=8)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.site_limit", "--modbus-client",
        json.dumps({"port": rig.gateway.ports["modbus"], "value": value_kw}), stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return json.loads(out)


def share_kw(payload: dict[str, Any], voltage_v: float = 230.0) -> float:
    """The power a TxProfile in amperes allows (limit x phases x nominal voltage)."""
    schedule = payload["csChargingProfiles"]["chargingSchedule"]
    period = schedule["chargingSchedulePeriod"][0]
    limit = float(period["limit"])
    if schedule.get("chargingRateUnit") == "W":
        return limit / 1000
    return limit * int(period.get("numberPhases", 3)) * voltage_v / 1000


async def run(args: argparse.Namespace) -> dict[str, Any]:
    values = [float(v) for v in args.values.split(",")]
    rounds = []
    with tempdir() as tmp:
        rig = Rig(args, tmp)
        try:
            prep = await rig.start(transaction=True)
            assert rig.chargers is not None and rig.bacnet is not None
            # A first confirmed request to a peer costs bacpypes3 about a second on the client side
            # (seen in a 5-charger run: write acked after 1,043 ms, the next one after 74 ms).
            await rig.bacnet.ask("wait_read", object=SITE_POWER_LIMIT, within=10)
            window = CpuWindow([rig.chargers, rig.bacnet])
            for value in values:
                write = await write_limit(rig, args.via, value)
                if write.get("error"):
                    raise RuntimeError(f"write of {value} kW refused: {write['error']}")
                sent = write["sent_at"]
                deadline = time.time() + args.timeout
                while time.time() < deadline:
                    profiles = (await rig.chargers.ask("profiles"))["profiles"]
                    if all(any(t > sent and p.get("connectorId") != 0 for t, p in got) for got in profiles.values()):
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(args.settle)
                profiles = (await rig.chargers.ask("profiles"))["profiles"]
                after = {cid: [(t, p) for t, p in got if t > sent and p.get("connectorId") != 0]
                         for cid, got in profiles.items()}
                firsts = [got[0][0] for got in after.values() if got]
                lasts = {cid: got[-1][1] for cid, got in after.items() if got}
                counts = [len(got) for got in after.values()]
                rounds.append({
                    "site_limit_kw": value, "write_ack_ms": round((write["acked_at"] - sent) * 1000, 1),
                    "chargers_reached": len(firsts),
                    "first_profile_ms": round((min(firsts) - sent) * 1000, 1) if firsts else None,
                    "last_profile_ms": round((max(firsts) - sent) * 1000, 1) if len(firsts) == len(after) else None,
                    "profiles_per_charger": {"min": min(counts), "max": max(counts)},
                    "sum_of_shares_kw": round(sum(share_kw(p) for p in lasts.values()), 1)})
            cpu = window.result()
        finally:
            await rig.stop()
    lasts = [r["last_profile_ms"] for r in rounds if r["last_profile_ms"] is not None]
    return {"benchmark": "site_limit", "chargers": args.chargers, "via": args.via, "writes": len(values),
            "propagation_last_charger": {**percentiles(lasts),
                                         "median_ms": round(statistics.median(lasts), 1) if lasts else None},
            "rounds": rounds,
            "max_profiles_per_charger_per_write": max(r["profiles_per_charger"]["max"] for r in rounds),
            "errors": prep["setup_errors"] + sum(1 for r in rounds if r["last_profile_ms"] is None),
            **prep, **cpu, "machine": machine()}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.site_limit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=int, default=50)
    parser.add_argument("--values", default="400,300,250,350,450",
                        help="site power limits to write, kW (50 x 11 kW = 552 kW of demand)")
    parser.add_argument("--via", choices=("bacnet", "modbus"), default="bacnet")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to count late or repeated profiles")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for every charger")
    parser.add_argument("--modbus-client", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.modbus_client:
        spec = json.loads(args.modbus_client)
        print(json.dumps(modbus_write(spec["port"], spec["value"])))
        return
    logging.basicConfig(level=logging.ERROR)
    t0 = time.perf_counter()
    result = asyncio.run(run(args))
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    result["command"] = "python -m bench.site_limit " + " ".join(sys.argv[1:] if argv is None else argv)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
