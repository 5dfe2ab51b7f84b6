"""Restore of last known readings at start: `python -m bench.restore_points --chargers 500 --rows 200`.

Fills a fresh database with `rows` stored MeterValues per charger (three sampled values each), then
times `points.restore.restore_last_known` (the newest rows of each charger, newest reading per
value) as the points service runs it at start. `--no-index` leaves the per-charger index of meter
rows empty (every row then read from the table), to show what it saves. One JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from gateway.history import charger_rows
from gateway.history.store import HistoryStore
from gateway.model.station import Station
from points.restore import restore_last_known

SAMPLED = json.dumps([{"value": "7000", "measurand": "Power.Active.Import", "unit": "W"},
                      {"value": "123456", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                      {"value": "16", "measurand": "Current.Import", "phase": "L1", "unit": "A"}])


async def run(chargers: int, rows: int, index: bool) -> dict[str, object]:
    store = HistoryStore(Path(tempfile.mkdtemp()) / "gateway.sqlite")
    await store.open()

    def fill() -> None:
        data = [(f"CP{i}", 1, None, "2026-12-05T00:00:00Z", 123456.0, SAMPLED)
                for _ in range(rows) for i in range(chargers)]
        with store.db.conn:
            store.db.conn.executemany(
                "INSERT INTO meter_values(identifier, connector_id, transaction_id, ts, energy_wh, "
                "sampled_values) VALUES (?, ?, ?, ?, ?, ?)", data)
            if index:  # as the store does when it opens (gateway.history.charger_rows)
                charger_rows.catch_up(store.db.conn, limit=None)
    await store.run(fill)
    stations = [Station(f"CP{i}", slot=i + 1) for i in range(chargers)]
    start = time.perf_counter()
    await restore_last_known(store, stations)
    seconds = time.perf_counter() - start
    await store.close()
    return {"benchmark": "restore_points", "chargers": chargers, "rows_per_charger": rows, "index": index,
            "restore_s": round(seconds, 3), "readings": sum(len(s.meters) for s in stations)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=500)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--no-index", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.chargers, args.rows, not args.no_index))))


if __name__ == "__main__":
    main()
