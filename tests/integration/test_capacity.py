"""No silent limits (issue 14 item 8): `devices add` past a protocol's capacity says so, and the
site points count the chargers a protocol does not expose."""

from __future__ import annotations

import asyncio

from gateway.main import main
from tests.conftest import GatewayRunner
from tests.integration.test_bacnet import free_udp_port
from tests.integration.test_modbus import modbus, read_input, register_address, settled


async def _taken_slots(gateway, last: int) -> None:
    """Slots 1..last given to earlier chargers (a slot is never reused, so the next add gets last + 1)."""
    def work() -> None:
        with gateway.history.db.conn:
            gateway.history.db.conn.execute("INSERT INTO slots(charger_id, slot) VALUES (?, ?)", ("old", last))
    await gateway.history.run(work)


async def test_devices_add_past_the_bacnet_and_flat_modbus_capacity_says_so(runner: GatewayRunner, capsys):
    gateway = await runner.start(bacnet={"enabled": True, "address": "127.0.0.1/8", "port": free_udp_port()},
                                 modbus={"enabled": True, "port": 0})
    await _taken_slots(gateway, 418)
    code = await asyncio.to_thread(main, [*runner.cli_args, "devices", "add", "CP-419"])
    out = capsys.readouterr().out
    assert code == 0 and "added CP-419 in slot 419" in out
    assert "warning: not on BACnet: slot 419" in out and "Larger sites" in out
    assert "warning: not on Modbus: slot 419 is beyond the 247 Modbus unit ids" in out
    table = gateway.points.table
    assert table.read(table.get("Site-Chargers-NotOnBACnet")) == 1.0
    assert table.read(table.get("Site-Chargers-NotOnModbus")) == 1.0
    await settled(gateway)
    async with modbus(gateway) as client:
        assert await read_input(client, register_address("Site-Header-ChargersNotServed"), 1) == [1]


async def test_devices_add_past_the_flat_map_names_the_unit_id_setting(runner: GatewayRunner, capsys):
    gateway = await runner.start(modbus={"enabled": True, "port": 0})
    await _taken_slots(gateway, 60)
    await asyncio.to_thread(main, [*runner.cli_args, "devices", "add", "CP-61"])
    out = capsys.readouterr().out
    assert "not on Modbus: slot 61 is beyond the 60 slots" in out and "modbus.unit_id_per_charger" in out
    assert "BACnet" not in out  # BACnet is off in this gateway
