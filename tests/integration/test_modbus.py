"""The Modbus TCP server over loopback with simulated chargers (issue 6; docs/modbus.md).

A real gateway (as `ocpp-gateway run` builds it) on port 0, TestCharger sending OCPP 1.6
StatusNotification and MeterValues (spec 4.9, 4.7), read back with the pymodbus client and,
when installed, with mbpoll as an independent client.
"""

from __future__ import annotations

import asyncio
import shutil
import struct
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ExceptionResponse

from gateway.main import Gateway
from gateway.model.station import ConfigKey
from points.modbus.codec import RegType, decode
from points.modbus.layout import connector_area_base, site_locations, slot_locations
from points.modbus.registers import CHARGER_BASE, MAP_VERSION
from tests.conftest import GatewayRunner
from tests.support.charger import TestCharger

T0 = "2026-11-21T08:00:00Z"


def register_address(name: str, slot: int = 1, per_unit: bool = False) -> int:
    """The address the map gives the point (or header) of this name, as BACnet names it."""
    locations = site_locations() if name.startswith("Site-") else slot_locations(slot, per_unit=per_unit)
    for loc in locations:
        if loc.register.name(loc.slot or 0, loc.connector_id) == name:
            return loc.address
    raise KeyError(name)


def connector_address(gateway: Gateway, slot: int, connector_id: int, key: str, per_unit: bool = False) -> int:
    return register_address(f"CP{slot}-C{connector_id}-{key}", slot, per_unit)


def site_address(gateway: Gateway, key: str) -> int:
    return register_address(f"Site-{key}")


async def start(runner: GatewayRunner, **modbus: object) -> Gateway:
    return await runner.start(modbus={"enabled": True, "port": 0, **modbus})


async def settled(gateway: Gateway) -> None:
    """Every model change so far is in the registers (the server flushes once per loop turn)."""
    server = gateway.modbus
    assert server is not None
    await asyncio.sleep(0)
    await asyncio.wait_for(server.flushed(), 10)


@asynccontextmanager
async def modbus(gateway: Gateway) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient("127.0.0.1", port=gateway.ports["modbus"], timeout=3)
    assert await client.connect()
    try:
        yield client
    finally:
        client.close()


async def read_input(client: AsyncModbusTcpClient, address: int, count: int, unit: int = 1) -> list[int]:
    reply = await client.read_input_registers(address, count=count, device_id=unit)
    assert not reply.isError(), reply
    return reply.registers


async def charging_charger(runner: GatewayRunner, charger_id: str, power_w: float, energy_wh: float) -> TestCharger:
    cp = TestCharger(runner.url, charger_id)
    cp.unrecorded.add("GetConfiguration")  # the read after boot is not under test here
    await cp.connect()
    await cp.boot()
    await cp.status(1, "Charging")
    await cp.call("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": T0, "sampledValue": [
        {"value": str(power_w), "measurand": "Power.Active.Import", "unit": "W"},
        {"value": str(energy_wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]})
    return cp


# --- reading -------------------------------------------------------------------------------
async def test_connector_status_and_meter_values_reach_input_registers(runner: GatewayRunner):
    gateway = await start(runner)
    await gateway.device_book.add_device("CP1")
    cp = await charging_charger(runner, "CP1", 7650.0, 70_000.6)
    try:
        await settled(gateway)
        async with modbus(gateway) as client:
            status = await read_input(client, connector_address(gateway, 1, 1, "Status"), 1)
            power = await read_input(client, connector_address(gateway, 1, 1, "Power-Active-Import"), 2)
            wh = await read_input(client, connector_address(
                gateway, 1, 1, "Energy-Active-Import-Register-Wh"), 2)
            kwh = await read_input(client, connector_address(
                gateway, 1, 1, "Energy-Active-Import-Register"), 2)
            header = await read_input(client, connector_area_base(1, 1), 2)
            site = await read_input(client, 0, 9)
    finally:
        await cp.close()
    assert status == [3]  # Charging: the same 1-based code as the BACnet multi-state value
    assert power == [0x45EF, 0x1000]  # 7650.0 W, high word first (the documented example)
    assert decode(wh, RegType.UINT32) == 70_001
    assert decode(kwh, RegType.FLOAT32) == pytest.approx(70.0006)
    assert header == [1, 1]  # connector 1, point valid
    assert site[0] == MAP_VERSION and site[1] == CHARGER_BASE and site[6:9] == [1, 1, 1]


@pytest.mark.parametrize("word_order", ["big", "little"])
async def test_floats_decode_in_the_configured_word_order(runner: GatewayRunner, word_order):
    gateway = await start(runner, word_order=word_order)
    await gateway.device_book.add_device("CP1")
    cp = await charging_charger(runner, "CP1", -12.5 + 7000, 1234.0)
    try:
        await settled(gateway)
        async with modbus(gateway) as client:
            regs = await read_input(client, connector_address(gateway, 1, 1, "Power-Active-Import"), 2)
            wh = await read_input(client, connector_address(
                gateway, 1, 1, "Energy-Active-Import-Register-Wh"), 2)
            as_float = client.convert_from_registers(regs, client.DATATYPE.FLOAT32, word_order=word_order)
    finally:
        await cp.close()
    assert as_float == 6987.5
    high_first = struct.unpack(">f", struct.pack(">HH", *regs))[0]
    assert (high_first == 6987.5) == (word_order == "big")
    assert client.convert_from_registers(wh, client.DATATYPE.UINT32, word_order=word_order) == 1234


async def test_offline_charger_keeps_its_last_value_with_online_and_valid_flags_zero(runner: GatewayRunner):
    """One meaning on both protocols: a stale value is the last value, flagged (BACnet:
    communication-failure; Modbus: online and valid flags 0); "not available" is no value."""
    gateway = await start(runner)
    await gateway.device_book.add_device("CP1")
    cp = await charging_charger(runner, "CP1", 7650.0, 1.0)
    await cp.close()
    await asyncio.sleep(0.05)
    await settled(gateway)
    async with modbus(gateway) as client:
        power = await read_input(client, connector_address(gateway, 1, 1, "Power-Active-Import"), 2)
        online = await read_input(client, CHARGER_BASE + 1, 1)
        valid = await read_input(client, connector_area_base(1, 1) + 1, 1)
    assert power == [0x45EF, 0x1000]  # 7650 W, the last value
    assert online == [0] and valid == [0]


async def test_same_addresses_after_restart_with_chargers_added_in_another_order(runner: GatewayRunner):
    gateway = await start(runner)
    await gateway.device_book.add_device("CP-A")
    await gateway.device_book.add_device("CP-B")
    seen = {}
    for charger_id, power in (("CP-B", 2000.0), ("CP-A", 1000.0)):
        cp = await charging_charger(runner, charger_id, power, 5.0)
        await settled(gateway)
        await cp.close()
    await runner.stop()

    gateway = await start(runner)
    await gateway.device_book.add_device("CP-C")  # a new charger takes a new slot, moves nothing
    chargers = [await charging_charger(runner, cid, p, 5.0)
                for cid, p in (("CP-C", 3000.0), ("CP-A", 1000.0), ("CP-B", 2000.0))]
    try:
        await settled(gateway)
        async with modbus(gateway) as client:
            for slot in (1, 2, 3):
                address = connector_address(gateway, slot, 1, "Power-Active-Import")
                seen[slot] = decode(await read_input(client, address, 2), RegType.FLOAT32)
                seen[f"slot{slot}"] = (await read_input(client, CHARGER_BASE + (slot - 1) * 1000, 1))[0]
    finally:
        for cp in chargers:
            await cp.close()
    assert (seen[1], seen[2], seen[3]) == (1000.0, 2000.0, 3000.0)
    assert (seen["slot1"], seen["slot2"], seen["slot3"]) == (1, 2, 3)


async def test_a_removed_charger_leaves_an_empty_block_and_keeps_the_others(runner: GatewayRunner):
    gateway = await start(runner)
    await gateway.device_book.add_device("CP1")
    await gateway.device_book.add_device("CP2")
    await settled(gateway)
    async with modbus(gateway) as client:
        before = [(await read_input(client, CHARGER_BASE + i * 1000, 1))[0] for i in (0, 1)]
        await gateway.device_book.remove_device("CP1")
        await settled(gateway)
        after = [(await read_input(client, CHARGER_BASE + i * 1000, 1))[0] for i in (0, 1)]
    assert before == [1, 2]
    assert after == [0xFFFF, 2]


async def test_unit_id_addressing_serves_each_slot_at_the_first_block(runner: GatewayRunner):
    gateway = await start(runner, unit_id_per_charger=True)
    await gateway.device_book.add_device("CP1")
    await gateway.device_book.add_device("CP2")
    cp = await charging_charger(runner, "CP2", 4321.0, 1.0)
    try:
        await settled(gateway)
        async with modbus(gateway) as client:
            by_unit = await read_input(client, connector_address(
                gateway, 1, 1, "Power-Active-Import", per_unit=True), 2, unit=2)
            flat = await read_input(client, connector_address(gateway, 2, 1, "Power-Active-Import"), 2,
                                    unit=0)
            slot_header = await read_input(client, CHARGER_BASE, 1, unit=2)
    finally:
        await cp.close()
    assert decode(by_unit, RegType.FLOAT32) == decode(flat, RegType.FLOAT32) == 4321.0
    assert slot_header == [2]


async def test_a_taken_port_is_a_configuration_error_naming_the_setting(runner: GatewayRunner):
    import socket

    from gateway.errors import ConfigError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError, match="modbus.port"):
            await start(runner, port=taken.getsockname()[1])


# --- writing -------------------------------------------------------------------------------
async def _exception(reply: object) -> int | None:
    return reply.exception_code if isinstance(reply, ExceptionResponse) else None


async def test_bad_writes_answer_modbus_exception_codes(runner: GatewayRunner):
    gateway = await start(runner)
    await gateway.device_book.add_device("CP1")
    limit = site_address(gateway, "PowerLimit")
    status = connector_address(gateway, 1, 1, "Status")
    async with modbus(gateway) as client:
        to_regs = client.convert_to_registers
        out_of_range = await client.write_registers(limit, to_regs(20_000.0, client.DATATYPE.FLOAT32), device_id=1)
        nan = await client.write_registers(limit, [0x7F80, 1], device_id=1)  # a NaN, not "not available"
        infinite = await client.write_registers(limit, [0x7F80, 0], device_id=1)
        swapped = await client.write_registers(limit, [0x0000, 0x41B0], device_id=1)  # 22.0 low word first
        half = await client.write_register(limit, 0x4120, device_id=1)
        read_only = await client.write_register(status, 1, device_id=1)
        header = await client.write_register(0, 7, device_id=1)
        beyond = await client.write_register(65_500, 1, device_id=1)
        availability = connector_address(gateway, 1, 1, "Availability")
        bad_state = await client.write_register(availability, 9, device_id=1)
        masked = await client.mask_write_register(address=availability, and_mask=0, or_mask=2, device_id=1)
        coil = await client.write_coil(0, True, device_id=1)
    assert await _exception(out_of_range) == 3
    assert await _exception(nan) == 3
    assert await _exception(infinite) == 3
    assert await _exception(swapped) == 3  # a denormal near 0 would pause all charging (issue 14 item 6)
    assert await _exception(half) == 2
    assert await _exception(read_only) == 2
    assert await _exception(header) == 2
    assert await _exception(beyond) == 2
    assert await _exception(bad_state) == 3
    assert await _exception(masked) == 1
    assert await _exception(coil) == 2


def _config_address(gateway: Gateway, slot: int, key: str) -> int:
    return register_address(f"CP{slot}-Cfg-{key}", slot)


async def test_one_fc16_request_writes_both_site_limits(runner: GatewayRunner):
    gateway = await start(runner)
    power, current = site_address(gateway, "PowerLimit"), site_address(gateway, "CurrentLimit")
    assert current == power + 2
    async with modbus(gateway) as client:
        regs = client.convert_to_registers
        reply = await client.write_registers(power, regs(22.0, client.DATATYPE.FLOAT32)
                                             + regs(32.0, client.DATATYPE.FLOAT32), device_id=1)
        await settled(gateway)
        back = await client.read_holding_registers(power, count=4, device_id=1)
    site = gateway.points.table.state.site
    assert not reply.isError(), reply
    assert (site.power_limit_kw, site.current_limit_a) == (22.0, 32.0)
    assert [decode(back.registers[0:2], RegType.FLOAT32), decode(back.registers[2:4], RegType.FLOAT32)] == [22.0, 32.0]


async def test_read_write_multiple_fc23_writes_and_reads_in_one_request(runner: GatewayRunner):
    gateway = await start(runner)
    limit = site_address(gateway, "PowerLimit")
    async with modbus(gateway) as client:
        reply = await client.readwrite_registers(read_address=0, read_count=1, write_address=limit,
                                                 values=client.convert_to_registers(11.5, client.DATATYPE.FLOAT32),
                                                 device_id=1)
        refused = await client.readwrite_registers(read_address=0, read_count=1, write_address=limit,
                                                   values=[0x4120], device_id=1)
    assert not reply.isError(), reply
    assert gateway.points.table.state.site.power_limit_kw == 11.5
    assert await _exception(refused) == 2


async def test_mirrored_inputs_read_alike_in_holding_registers_and_stay_read_only(runner: GatewayRunner):
    gateway = await start(runner, mirror_inputs_in_holding=True)
    await gateway.device_book.add_device("CP1")
    cp = await charging_charger(runner, "CP1", 7650.0, 1.0)
    try:
        await settled(gateway)
        address = connector_address(gateway, 1, 1, "Status")
        async with modbus(gateway) as client:
            as_input = await read_input(client, address, 1)
            as_holding = await client.read_holding_registers(address, count=1, device_id=1)
            write = await client.write_register(address, 1, device_id=1)
    finally:
        await cp.close()
    assert as_input == as_holding.registers == [3]
    assert await _exception(write) == 2


async def test_configuration_key_write_reaches_the_charger_as_change_configuration(runner: GatewayRunner):
    gateway = await start(runner)
    await gateway.device_book.add_device("CP1")
    cp = TestCharger(runner.url, "CP1")
    cp.unrecorded.add("GetConfiguration")
    await cp.connect()
    cp.answers["ChangeConfiguration"] = lambda p: {"status": "Accepted"}
    try:
        await cp.boot()
        station = gateway.registry.get("CP1")
        gateway.registry.set_config(station, ConfigKey("HeartbeatInterval", "300", readonly=False))
        await settled(gateway)
        address = _config_address(gateway, 1, "HeartbeatInterval")
        async with modbus(gateway) as client:
            before = await client.read_holding_registers(address, count=2, device_id=1)
            reply = await client.write_registers(address, [0, 60], device_id=1)
            action, payload = await asyncio.wait_for(cp.received.get(), 5)
            await settled(gateway)
            after = await client.read_holding_registers(address, count=2, device_id=1)
    finally:
        await cp.close()
    assert before.registers == [0, 300]
    assert not reply.isError(), reply
    assert (action, payload) == ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"})
    assert after.registers == [0, 60]


async def test_availability_write_reaches_the_charger_as_change_availability(runner: GatewayRunner):
    gateway = await start(runner)
    await gateway.device_book.add_device("CP1")
    cp = TestCharger(runner.url, "CP1")
    cp.unrecorded.add("GetConfiguration")
    await cp.connect()
    cp.answers["ChangeAvailability"] = lambda p: {"status": "Accepted"}
    try:
        await cp.boot()
        await cp.status(1, "Available")
        await settled(gateway)
        address = connector_address(gateway, 1, 1, "Availability")
        async with modbus(gateway) as client:
            reply = await client.write_register(address, 2, device_id=1)  # 2 = Inoperative
            action, payload = await asyncio.wait_for(cp.received.get(), 5)
            await settled(gateway)
            after = await client.read_holding_registers(address, count=1, device_id=1)
    finally:
        await cp.close()
    assert not reply.isError(), reply
    assert (action, payload) == ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
    assert after.registers == [2]


async def test_a_refused_command_answers_04_and_the_register_keeps_the_charger_value(runner: GatewayRunner):
    gateway = await start(runner)
    await gateway.device_book.add_device("CP1")
    cp = TestCharger(runner.url, "CP1")
    cp.unrecorded.add("GetConfiguration")
    await cp.connect()
    cp.answers["ChangeConfiguration"] = lambda p: {"status": "Rejected"}
    try:
        await cp.boot()
        gateway.registry.set_config(gateway.registry.get("CP1"), ConfigKey("MeterValueSampleInterval", "60", False))
        await settled(gateway)
        address = _config_address(gateway, 1, "MeterValueSampleInterval")
        async with modbus(gateway) as client:
            reply = await client.write_registers(address, [0, 5], device_id=1)
            await settled(gateway)
            after = await client.read_holding_registers(address, count=2, device_id=1)
    finally:
        await cp.close()
    assert await _exception(reply) == 4
    assert after.registers == [0, 60]


async def test_a_write_for_an_offline_charger_answers_04(runner: GatewayRunner):
    gateway = await start(runner)
    await gateway.device_book.add_device("CP1")
    cp = TestCharger(runner.url, "CP1")
    cp.unrecorded.add("GetConfiguration")
    await cp.connect()
    await cp.boot()
    await cp.status(1, "Available")
    await cp.close()
    await asyncio.sleep(0.05)
    async with modbus(gateway) as client:
        reply = await client.write_register(connector_address(gateway, 1, 1, "Availability"), 2, device_id=1)
        empty_slot = await client.write_register(connector_address(gateway, 5, 1, "Availability"), 2, device_id=1)
    assert await _exception(reply) == 4
    assert await _exception(empty_slot) == 2


# --- an independent client ------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll is not installed")
async def test_mbpoll_reads_the_power_float_high_word_first(runner: GatewayRunner):
    gateway = await start(runner)
    await gateway.device_book.add_device("CP1")
    cp = await charging_charger(runner, "CP1", 7650.0, 1.0)
    try:
        await settled(gateway)
        address = connector_address(gateway, 1, 1, "Power-Active-Import")
        # -0: PDU addresses, -1: poll once, -B: high word first, -t 3:float: input registers.
        cmd = ["mbpoll", "-m", "tcp", "-a", "1", "-0", "-1", "-B", "-p", str(gateway.ports["modbus"]),
               "-r", str(address), "-c", "1", "-t", "3:float", "127.0.0.1"]
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        await cp.close()
    assert proc.returncode == 0, out.decode()
    assert f"[{address}]: \t7650" in out.decode()


async def test_standard_keys_spelled_the_chargers_way_get_the_standard_point_and_register(runner: GatewayRunner):
    """Issue 14 item 10: EVlink reports HeartBeatInterval and meterValueSampleInterval (OCPP key
    names are case-insensitive); they got vendor instances and no register. The charger's own
    spelling is what a write sends."""
    gateway = await start(runner)
    await gateway.device_book.add_device("CP1")
    cp = TestCharger(runner.url, "CP1")
    cp.unrecorded.add("GetConfiguration")
    cp.answers["ChangeConfiguration"] = lambda payload: {"status": "Accepted"}
    await cp.connect()
    try:
        await cp.boot()
        station = gateway.registry.get("CP1")
        gateway.registry.set_config(station, ConfigKey("HeartBeatInterval", "300", readonly=False))
        gateway.registry.set_config(station, ConfigKey("meterValueSampleInterval", "60", readonly=False))
        table = gateway.points.table
        heartbeat = table.get("CP1-Cfg-HeartbeatInterval")
        assert heartbeat is not None and heartbeat.instance == 10_000 + 5_200 + 9
        assert table.get("CP1-Cfg-MeterValueSampleInterval") is not None
        await settled(gateway)
        async with modbus(gateway) as client:
            reply = await client.read_holding_registers(
                _config_address(gateway, 1, "HeartbeatInterval"), count=2, device_id=1)
            written = await client.write_registers(_config_address(gateway, 1, "MeterValueSampleInterval"),
                                                   [0, 30], device_id=1)
        assert decode(reply.registers, RegType.UINT32) == 300
        assert not written.isError()
        assert await asyncio.wait_for(cp.received.get(), 5) == (
            "ChangeConfiguration", {"key": "meterValueSampleInterval", "value": "30"})
    finally:
        await cp.close()
