"""Niagara parity (issue 14 item 12): per-connector Last Update (Niagara guide 6.2) and the
BootNotification ICCID, IMSI, meter type and meter serial (6.1), in BACnet, Modbus, the EDE
file and the register map, under one name."""

from __future__ import annotations

import asyncio
import csv

from gateway.main import main
from points.modbus.codec import RegType, decode
from tests.conftest import wait_until
from tests.integration.test_bacnet import added_charger, bms  # noqa: F401  (fixture)
from tests.integration.test_modbus import modbus, read_input, register_address, settled

BOOT = {"iccid": "8931440400012345678", "imsi": "204043456789012", "meterType": "EM340 DIN",
        "meterSerialNumber": "KZ1234567890123456789012"}


async def test_identity_and_last_update_points_on_both_protocols_and_in_both_exports(bms, tmp_path):  # noqa: F811
    runner, client = bms
    await runner.stop()
    gateway = await runner.start(bacnet={"enabled": True, "address": "127.0.0.1/8", "port": client.server_port},
                                 modbus={"enabled": True, "port": 0})
    charger = await added_charger(runner, "CP-N")
    await charger.boot(**BOOT)
    await charger.status(1, "Available")
    table = gateway.points.table
    bacnet = gateway.points.bacnet
    await wait_until(lambda: set(bacnet.objects) == {p.uid for p in table.points()})
    assert await client.read("characterstring-value,15030") == BOOT["iccid"]  # CP1-ICCID
    assert await client.read("characterstring-value,15033") == BOOT["meterSerialNumber"]
    assert await client.read("characterstring-value,15030", "objectName") == "CP1-ICCID"
    last_update = await client.read("characterstring-value,10530")  # CP1-C1-LastUpdate
    assert last_update.endswith("Z") and last_update[:2] == "20"
    await settled(gateway)
    async with modbus(gateway) as mb:
        iccid = decode(await read_input(mb, register_address("CP1-ICCID"), 10), RegType.STRING)
        meter_type = decode(await read_input(mb, register_address("CP1-MeterType"), 13), RegType.STRING)
        imsi = decode(await read_input(mb, register_address("CP1-IMSI"), 8), RegType.STRING)
        serial = decode(await read_input(mb, register_address("CP1-MeterSerial"), 13), RegType.STRING)
        update = decode(await read_input(mb, register_address("CP1-C1-LastUpdate"), 10), RegType.STRING)
    assert (iccid, imsi, meter_type, serial) == (BOOT["iccid"], BOOT["imsi"], BOOT["meterType"],
                                                 BOOT["meterSerialNumber"])
    assert update == last_update
    await charger.close()
    code = await asyncio.to_thread(main, [*runner.cli_args, "points", "export",
                                          "--ede", str(tmp_path / "ede"), "--project", "N",
                                          "--modbus", str(tmp_path / "map.csv")])
    assert code == 0
    ede = (tmp_path / "ede" / "N_EDE.csv").read_text(encoding="utf-8")
    names = {r["name"] for r in csv.DictReader((tmp_path / "map.csv").open())}
    for name in ("CP1-ICCID", "CP1-IMSI", "CP1-MeterType", "CP1-MeterSerial", "CP1-C1-LastUpdate"):
        assert f";{name};" in ede and name in names, name
