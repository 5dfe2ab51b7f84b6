"""One command source for BACnet and Modbus (issue 13 item 6): a Modbus write commands the same
commandable object, at `modbus.bacnet_priority`; Modbus can relinquish; both show one value; a
burst of Modbus writes is one controller call per change.

Real gateway, BACnet client in its own process (tests/support/bacnet_client.py), pymodbus client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from points.modbus.codec import NAN_F32, RegType, decode, encode
from tests.conftest import GatewayRunner
from tests.integration.test_bacnet import BacnetClient, client_process, free_udp_port
from tests.integration.test_modbus import modbus, register_address

LIMIT = "analog-value,1"  # Site-PowerLimit


@pytest.fixture
async def both(runner: GatewayRunner) -> AsyncIterator[tuple[Any, BacnetClient]]:
    port = free_udp_port()
    gateway = await runner.start(bacnet={"enabled": True, "address": "127.0.0.1/8", "port": port},
                                 modbus={"enabled": True, "port": 0, "bacnet_priority": 10})
    async with client_process(runner, port) as client:
        yield gateway, client


async def _modbus_limit(gateway: Any, regs: list[int]) -> int | None:
    async with modbus(gateway) as client:
        reply = await client.write_registers(register_address("Site-PowerLimit"), regs, device_id=1)
        return getattr(reply, "exception_code", None) if reply.isError() else None


async def _read_limit(gateway: Any) -> float | None:
    async with modbus(gateway) as client:
        reply = await client.read_holding_registers(register_address("Site-PowerLimit"), count=2, device_id=1)
    return decode(reply.registers, RegType.FLOAT32)  # type: ignore[return-value]


async def test_a_modbus_write_commands_the_bacnet_object_at_the_configured_priority(both):
    gateway, bacnet = both
    assert await _modbus_limit(gateway, encode(22.0, RegType.FLOAT32)) is None
    assert await bacnet.read(LIMIT) == pytest.approx(22.0)
    assert await bacnet.read(LIMIT, "currentCommandPriority") == 10
    priorities = await bacnet.read(LIMIT, "priorityArray")
    assert priorities[9] == pytest.approx(22.0) and priorities[7] in (None, [])  # NULL


async def test_bacnet_priority_8_wins_over_modbus_and_modbus_can_relinquish(both):
    gateway, bacnet = both
    assert (await bacnet.write(LIMIT, 30.0, priority=8))["ok"]
    assert await _modbus_limit(gateway, encode(22.0, RegType.FLOAT32)) is None
    assert await bacnet.read(LIMIT) == pytest.approx(30.0)      # priority 8 is in force
    assert await _read_limit(gateway) == pytest.approx(30.0)    # and Modbus shows the same
    assert (await bacnet.write(LIMIT, None, "null", priority=8))["ok"]
    assert await _read_limit(gateway) == pytest.approx(22.0)    # Modbus' priority 10 now
    assert await _modbus_limit(gateway, list(NAN_F32)) is None  # "not available" relinquishes
    default = gateway.settings.smart_charging.site_power_limit_kw or 10000.0
    assert await bacnet.read(LIMIT) == pytest.approx(default)
    assert await bacnet.read(LIMIT, "currentCommandPriority") in (None, [])  # NULL


async def test_a_burst_of_modbus_limit_writes_is_one_controller_call_per_change(both):
    gateway, _bacnet = both
    async with modbus(gateway) as client:
        address = register_address("Site-PowerLimit")
        for value in [22.0] * 50 + [25.0] * 50:
            reply = await client.write_registers(address, encode(value, RegType.FLOAT32), device_id=1)
            assert not reply.isError()
    await gateway.history.flush_log()
    calls = [r["message"] for r in await gateway.history.general_log("site")
             if r["message_type"] == "SiteLimitCommand"]
    assert calls == ["Site-PowerLimit 22 from the BMS", "Site-PowerLimit 25 from the BMS"]


async def test_a_bms_limit_kept_across_a_restart_is_the_same_command_on_both_protocols(runner):
    """Smart charging keeps a BMS limit across a restart (issue 13 item 4); the BACnet object
    shows it in its priority array and present-value, as the Modbus register does."""
    port = free_udp_port()
    settings = {"bacnet": {"enabled": True, "address": "127.0.0.1/8", "port": port},
                "modbus": {"enabled": True, "port": 0}}
    gateway = await runner.start(**settings)
    assert await _modbus_limit(gateway, encode(22.0, RegType.FLOAT32)) is None
    await runner.stop()
    gateway = await runner.start(**settings)
    table = gateway.points.table
    point = table.get("Site-PowerLimit")
    assert table.priority_array(point)[9] == 22.0 and table.effective(point) == 22.0
    assert await _read_limit(gateway) == pytest.approx(22.0)
    obj = gateway.points.bacnet.objects[point.uid]
    assert float(obj.presentValue) == pytest.approx(22.0)
