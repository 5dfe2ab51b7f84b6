"""EDE export (B.I.G.-EU 2.3, notes 3.1) and `ocpp-gateway points list|export` (issue 5).

The EDE file is checked against what the BACnet device really serves, and the table built
from the database file (--db) against the live one: one code path for both.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

from gateway.main import main
from gateway.model.station import ConfigKey
from points.export.ede import EDE_COLUMNS
from points.service import point_rows
from tests.conftest import wait_until
from tests.integration.test_bacnet import free_udp_port
from tests.support.charger import TestCharger


async def cli(capsys, runner, *argv: str) -> tuple[int, str]:
    code = await asyncio.to_thread(main, [*runner.cli_args, *argv])
    out = capsys.readouterr()
    return code, out.out + out.err


def read_ede(path: Path) -> tuple[list[str], list[list[str]]]:
    raw = path.read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    lines = raw.decode("utf-8").split("\r\n")
    header = [line for line in lines if line.startswith("#")]
    rows = [r for r in csv.reader((line for line in lines[6:] if line and not line.startswith("#")),
                                  delimiter=";")]
    return header, rows


async def test_ede_lists_every_object_the_device_serves(runner, capsys, tmp_path):
    gw = await runner.start(bacnet={"enabled": True, "address": "127.0.0.1/8", "port": free_udp_port()})
    await gw.device_book.add_device("CP-A")
    async with TestCharger(runner.url, "CP-A") as charger:
        await charger.boot()
        await charger.status(1, "Charging")
        await charger.call("MeterValues", {"connectorId": 1, "meterValue": [{
            "timestamp": "2026-11-21T06:00:00Z",
            "sampledValue": [{"value": "230.1", "measurand": "Voltage", "phase": "L1-N", "unit": "V"}]}]})
        gw.registry.set_config(gw.registry.get("CP-A"), ConfigKey("VendorKey", "x", readonly=False))
        bacnet = gw.points.bacnet
        table = gw.points.table
        await wait_until(lambda: set(bacnet.objects) == {p.uid for p in table.points()})

    code, out = await cli(capsys, runner, "points", "export", "--ede", str(tmp_path / "ede"),
                          "--project", "Garage")
    assert code == 0, out
    header, rows = read_ede(tmp_path / "ede" / "Garage_EDE.csv")
    assert header[-1].lstrip("# ").split(";") == list(EDE_COLUMNS)
    assert all(len(r) == 16 for r in rows)
    assert rows[0][3] == "8" and rows[0][4] == str(gw.settings.bacnet.device_id)
    codes = {"analog-input": "0", "analog-value": "2", "binary-input": "3", "binary-value": "5",
             "multi-state-input": "13", "multi-state-value": "19", "characterstring-value": "40"}
    served = {(codes[t], str(i)) for t, i in bacnet.objects}
    assert {(r[3], r[4]) for r in rows[1:]} == served
    names = {r[2]: r for r in rows}
    assert names["CP1-C1-Voltage-L1-N"][14] == "5"  # volts
    assert names["CP1-C1-Status"][13] and names["Site-PowerLimit"][9] == "Y"
    states = (tmp_path / "ede" / "Garage_StateTexts.csv").read_text(encoding="utf-8").splitlines()
    status_ref = int(names["CP1-C1-Status"][13])
    assert states[1 + status_ref].split(";")[1:4] == ["Available", "Preparing", "Charging"]
    assert all(r[14] for r in rows[1:] if r[3] in ("0", "2"))  # analog: unit-code always filled
    assert all(r[13] for r in rows[1:] if r[3] in ("3", "5", "13", "19"))  # state texts always
    assert (tmp_path / "ede" / "Garage_Units.csv").exists()

    code, out = await cli(capsys, runner, "points", "list", "--charger", "CP-A")
    assert code == 0 and "CP1-C1-Status" in out and "Site-PowerLimit" not in out

    live = {(r["name"], r["object_type"], r["instance"]) for r in point_rows(table)}
    db_path = gw.settings.database.path
    await runner.stop()
    code = await asyncio.to_thread(main, ["points", "export", "--ede", str(tmp_path / "db"),
                                          "--db", db_path])
    assert code == 0, capsys.readouterr()
    _, db_rows = read_ede(next((tmp_path / "db").glob("*_EDE.csv")))
    assert {(r[2], r[3], r[4]) for r in db_rows[1:]} == {
        (n, codes[t], str(i)) for n, t, i in live}
