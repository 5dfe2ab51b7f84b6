"""The point table's work for chargers connecting for the first time:
`python -m bench.table_first_connection --chargers 200 --runs 5`.

Plain objects, no sockets: the registry and the point table as the gateway wires them, with every
charger added (a slot) but never seen. Each charger then does what a first connection makes the
model publish: online, boot, a status, the configuration read of the AC wallbox (manual 001, the
simulator's keys), a transaction start, one MeterValues, a heartbeat. Prints one JSON line: the
table's CPU time per charger for each run (time.process_time, so another process on the machine
does not count), the points built and the offset writes asked for. The end-to-end figure is
`python -m bench.torture --chargers 200 --kills 0` (`first_start_latency_ms`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from gateway.model.station import BootInfo, ConfigKey, MeterKey, Registry
from gateway.simulator.profile import load_profile
from points.table import PointTable


def first_connections(chargers: int) -> dict[str, float | int]:
    keys = [(k.name, k.value or "", k.readonly) for k in load_profile("acwallbox").keys.values()]
    registry, table = Registry(clock=lambda: 1000.0), PointTable(clock=lambda: 1000.0)
    offset_writes: list[dict[str, str]] = []
    table.persist = offset_writes.append
    registry.subscribe(lambda event: table.handle(event, registry))
    for i in range(chargers):
        registry.ensure(f"CP{i}").slot = i + 1
    table.sync(registry)
    start = time.process_time()
    for i in range(chargers):
        station = registry.ensure(f"CP{i}")
        registry.update_station(station, online=True, connected=True)
        registry.update_station(station, boot=BootInfo(vendor="AC EV Wallbox", model="AC Wallbox"),
                                boot_status="Accepted")
        registry.update_connector(station, 1, status="Available")
        registry.set_configs(station, [ConfigKey(key, value, readonly) for key, value, readonly in keys])
        registry.update_connector(station, 1, transaction_id=i, status="Charging")
        registry.record_readings(station, 1, 1000.0, [
            (MeterKey(1, "Energy.Active.Import.Register"), 1.0, "Wh", "Sample.Periodic"),
            (MeterKey(1, "Power.Active.Import"), 7.0, "kW", "Sample.Periodic")])
        registry.update_station(station, last_heartbeat=1000.0)
    return {"ms_per_charger": round((time.process_time() - start) / chargers * 1000, 3),
            "points": len(table.points()), "offset_writes": len(offset_writes), "config_keys": len(keys)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    runs = [first_connections(args.chargers) for _ in range(args.runs)]
    per_charger = [r["ms_per_charger"] for r in runs]
    print(json.dumps({"chargers": args.chargers, "ms_per_charger": per_charger,
                      "median_ms_per_charger": statistics.median(per_charger),
                      **{k: runs[0][k] for k in ("points", "offset_writes", "config_keys")}}))


if __name__ == "__main__":
    main()
