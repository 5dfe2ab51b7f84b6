"""The EDE export of a site with the four simulated chargers of shared/seeds (issue 5).

Checked for its columns and for every object the BACnet device serves, after each charger
booted, reported its connectors, sent meter values and had its configuration read.
"""

from __future__ import annotations

import asyncio
import csv

from gateway.main import main
from points.export.ede import EDE_COLUMNS
from tests.compat.harness import PROFILES, Bench
from tests.integration.test_bacnet import free_udp_port

BACNET_TYPE_CODES = {"analog-input": "0", "analog-value": "2", "binary-input": "3", "binary-value": "5",
                     "multi-state-input": "13", "multi-state-value": "19", "characterstring-value": "40"}


async def test_ede_of_the_four_chargers_lists_every_served_object(runner, tmp_path):
    gw = await runner.start(bacnet={"enabled": True, "address": "127.0.0.1/8", "port": free_udp_port()})
    for index, profile in enumerate(PROFILES, start=1):
        charger_id = f"{profile.upper()}-{index}"
        await gw.device_book.add_device(charger_id)
        bench = Bench(runner, gw, profile, charger_id)
        sim = await bench.connect()
        await sim.send_meter_values(1)
        await bench.watch.until(lambda b=bench: any(k.connector_id == 1 for k in b.station.meters))
    service = gw.points
    await bench.watch.until(lambda: set(service.bacnet.objects) == {p.uid for p in service.table.points()})

    code = await asyncio.to_thread(main, [*runner.cli_args, "points", "export",
                                          "--ede", str(tmp_path / "ede"), "--project", "Site"])
    assert code == 0
    lines = (tmp_path / "ede" / "Site_EDE.csv").read_text(encoding="utf-8").splitlines()
    header = [line for line in lines if line.startswith("#")]
    assert header[-1].lstrip("# ").split(";") == list(EDE_COLUMNS)
    rows = list(csv.reader((line for line in lines[6:] if line and not line.startswith("#")), delimiter=";"))
    assert all(len(r) == len(EDE_COLUMNS) for r in rows)
    served = {(BACNET_TYPE_CODES[t], str(i)) for t, i in service.bacnet.objects}
    assert {(r[3], r[4]) for r in rows[1:]} == served
    names = {r[2] for r in rows}
    for slot in range(1, len(PROFILES) + 1):  # every charger: status, a meter value, a configuration key
        assert {f"CP{slot}-C1-Status", f"CP{slot}-C1-Energy-Active-Import-Register"} <= names
        assert any(name.startswith(f"CP{slot}-Cfg-") for name in names)
