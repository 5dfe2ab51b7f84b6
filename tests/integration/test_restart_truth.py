"""Points tell the last known truth after a gateway restart and at the edges (issue 14 items 1-3).

A real gateway with Modbus on port 0, simulated chargers (gateway/simulator) that keep charging
while the gateway restarts and then reconnect without BootNotification or StatusNotification,
as many real chargers do (real-firmware notes, "Outages and restarts"). Read back with the
pymodbus client; BACnet shows the same reliability (`PointTable.reliability`, pushed to the
objects' reliability and status-flags).
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.simulator import Simulator
from points.modbus.codec import NA_UINT16, RegType, decode
from points.table import NO_FAULT, NOT_AVAILABLE, STALE
from tests.conftest import GatewayRunner, wait_until
from tests.integration.test_bacnet import bms  # noqa: F401  (fixture)
from tests.integration.test_modbus import modbus, read_input, register_address, settled
from tests.support.charger import SITE_PASSWORD, TestCharger

T0 = "2026-11-21T08:00:00Z"
CHARGERS = ("CP1", "CP2")


async def _start(runner: GatewayRunner) -> Any:
    return await runner.start(modbus={"enabled": True, "port": 0}, ocpp={"status_trigger_after_s": 0.2})


async def _registers(gateway: Any, slot: int) -> dict[str, Any]:
    """Status, valid flag, energy, power and the identity flag of slot's connector 1."""
    await settled(gateway)
    async with modbus(gateway) as client:
        status = await read_input(client, register_address(f"CP{slot}-C1-Status", slot), 1)
        valid = await read_input(client, register_address(f"CP{slot}-C1-Header-Valid", slot), 1)
        energy = await read_input(client, register_address(f"CP{slot}-C1-Energy-Active-Import-Register-Wh", slot), 2)
        identity = await read_input(client, register_address(f"CP{slot}-Header-IdentityValid", slot), 1)
        vendor = await read_input(client, register_address(f"CP{slot}-Vendor", slot), 10)
    return {"status": status[0], "valid": valid[0], "energy_wh": decode(energy, RegType.UINT32),
            "identity": identity[0], "vendor": decode(vendor, RegType.STRING)}


def _reliability(gateway: Any, name: str) -> str:
    table = gateway.points.table
    point = table.get(name)
    assert point is not None, name
    return table.reliability(point)


async def test_restart_with_sessions_running_and_reconnects_without_boot(runner: GatewayRunner):
    """Items 1 and 2: Charging stays Charging (flagged), energy never drops to 0, identity is
    kept; a charger that reconnects without a boot is asked for StatusNotification."""
    gateway = await _start(runner)
    sims = [Simulator("generic", cid, runner.url, SITE_PASSWORD, heartbeat=False, reconnect_delay_s=0.05,
                      boot_on_reconnect=False) for cid in CHARGERS]
    for cid in CHARGERS:
        await gateway.device_book.add_device(cid)
    try:
        for sim in sims:
            await sim.start()
            await asyncio.wait_for(sim.start_session(1), 10)
            sim.advance(600)  # ten minutes of charging
            await asyncio.wait_for(sim.send_meter_values(1), 10)
        await wait_until(lambda: all(_reliability(gateway, f"CP{s}-C1-Energy-Active-Import-Register") == NO_FAULT
                                     for s in (1, 2)))
        before = [await _registers(gateway, s) for s in (1, 2)]
        assert [b["status"] for b in before] == [3, 3] and [b["valid"] for b in before] == [1, 1]

        await asyncio.wait_for(runner.stop(), 30)
        gateway = await _start(runner)
        after_restart = [await _registers(gateway, s) for s in (1, 2)]
        for old, new in zip(before, after_restart, strict=True):
            assert new["status"] == 3 and new["valid"] == 0      # Charging, not yet confirmed
            assert new["energy_wh"] == old["energy_wh"] > 0      # never 0, never backwards
            assert new["vendor"] == old["vendor"] != "" and new["identity"] == 0
        assert _reliability(gateway, "CP1-C1-Status") == STALE
        assert _reliability(gateway, "CP1-Vendor") == STALE

        for sim in sims:  # the chargers come back on the new port, without BootNotification
            sim.url = runner.url.rstrip("/")
        await wait_until(lambda: all(any(a == "TriggerMessage" and p.get("requestedMessage") == "StatusNotification"
                                         for a, p in sim.received_calls) for sim in sims), timeout=10)
        await wait_until(lambda: _reliability(gateway, "CP1-C1-Status") == NO_FAULT)
        assert all(s.boot_count == 1 for s in sims)  # no boot after the reconnect
        for sim in sims:
            await asyncio.wait_for(sim.send_meter_values(1), 10)
        await wait_until(lambda: _reliability(gateway, "CP2-C1-Energy-Active-Import-Register") == NO_FAULT)
        confirmed = [await _registers(gateway, s) for s in (1, 2)]
        assert [c["valid"] for c in confirmed] == [1, 1]
        assert all(c["energy_wh"] >= b["energy_wh"] for c, b in zip(confirmed, before, strict=True))
    finally:
        for sim in sims:
            await asyncio.wait_for(sim.stop(), 15)


async def test_power_reads_zero_after_a_session_on_a_charger_that_meters_only_in_transactions(
        runner: GatewayRunner):
    """Item 2: EVlink sends MeterValues only during a load (manual 3.1); 7,000 W while Available
    was the last in-session value."""
    gateway = await _start(runner)
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        cp.unrecorded.add("GetConfiguration")
        await cp.boot()
        await cp.status(1, "Charging")
        started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 1000,
                                                     "timestamp": T0})
        await cp.call("MeterValues", {"connectorId": 1, "transactionId": started["transactionId"], "meterValue": [
            {"timestamp": "2026-11-21T08:10:00Z", "sampledValue": [
                {"value": "7000", "measurand": "Power.Active.Import", "unit": "W"},
                {"value": "2000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]})
        table = gateway.points.table
        assert table.read(table.get("CP1-C1-Power-Active-Import")) == 7000.0
        await cp.call("StopTransaction", {"transactionId": started["transactionId"], "meterStop": 2100,
                                          "timestamp": "2026-11-21T08:20:00Z"})
        await cp.status(1, "Available")
        assert table.read(table.get("CP1-C1-Power-Active-Import")) == 0.0
        assert table.read(table.get("CP1-C1-Energy-Active-Import-Register")) == 2.1  # meterStop, the newest register


async def test_a_replayed_older_reading_does_not_take_energy_backwards(runner: GatewayRunner):
    gateway = await _start(runner)
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        cp.unrecorded.add("GetConfiguration")
        await cp.boot()
        for ts, wh in (("2026-11-21T08:10:00Z", "5000"), ("2026-11-21T08:05:00Z", "4000")):
            await cp.call("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": ts, "sampledValue": [
                {"value": wh, "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]})
        table = gateway.points.table
        assert table.read(table.get("CP1-C1-Energy-Active-Import-Register")) == 5.0


async def test_connector_zero_never_reported_is_not_available_on_both_protocols(runner: GatewayRunner):
    """Item 3: Smappee and the AC wallbox never report connector 0; it read Unavailable (8)."""
    gateway = await _start(runner)
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        cp.unrecorded.add("GetConfiguration")
        await cp.boot()
        await cp.status(1, "Available")
        await settled(gateway)
        async with modbus(gateway) as client:
            c0 = await read_input(client, register_address("CP1-C0-Status", 1), 1)
            c1 = await read_input(client, register_address("CP1-C1-Status", 1), 1)
        assert c0 == [NA_UINT16] and c1 == [1]
        table = gateway.points.table
        assert table.read(table.get("CP1-C0-Status")) is None
        assert _reliability(gateway, "CP1-C0-Status") == NOT_AVAILABLE


async def test_a_charger_that_sends_no_status_after_its_boot_is_asked_for_one(runner: GatewayRunner):
    """Issue 13 item 9: some stacks send no StatusNotification after a (triggered) boot; the
    gateway used to be left with no connectors. It asks with TriggerMessage (OCPP 1.6 5.17)."""
    gateway = await _start(runner)
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        cp.unrecorded.add("GetConfiguration")
        await cp.boot()
        assert await asyncio.wait_for(cp.received.get(), 5) == (
            "TriggerMessage", {"requestedMessage": "StatusNotification"})



async def test_bacnet_shows_the_restored_status_flagged_and_connector_zero_not_available(bms):  # noqa: F811
    """Items 1 and 3 with an independent BACnet client: after a restart a charging connector is
    Charging with reliability communication-failure (not Unavailable and no-fault-detected), and
    a connector 0 that was never reported is unreliable-other (not Unavailable)."""
    runner, client = bms
    gateway = runner.gateway
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        cp.unrecorded.add("GetConfiguration")
        await cp.boot()
        await cp.status(1, "Charging")
        table = gateway.points.table
        await wait_until(lambda: table.reliability(table.get("CP1-C1-Status")) == NO_FAULT)
    await runner.stop()
    await runner.start(bacnet={"enabled": True, "address": "127.0.0.1/8", "port": client.server_port})
    assert await client.read("multi-state-input,10500") == 3  # CP1-C1-Status: Charging
    assert await client.read("multi-state-input,10500", "reliability") == "communication-failure"
    assert await client.read("multi-state-input,10000", "reliability") == "unreliable-other"  # C0


async def test_evlinks_own_spelling_of_standard_keys_gets_the_standard_points(runner: GatewayRunner):
    """Issue 14 item 10 with the EVlink simulator (manual 8.1: HeartBeatInterval,
    meterValueSampleInterval), read by the gateway's own configuration read."""
    gateway = await _start(runner)
    await gateway.device_book.add_device("CP1")
    sim = Simulator("evlink", "CP1", runner.url, SITE_PASSWORD, heartbeat=False)
    try:
        await sim.start()
        table = gateway.points.table
        await wait_until(lambda: table.get("CP1-Cfg-MeterValueSampleInterval") is not None, timeout=10)
        point = table.get("CP1-Cfg-MeterValueSampleInterval")
        assert point.subject == "meterValueSampleInterval" and point.instance == 10_000 + 5_200 + 18
        assert table.get("CP1-Cfg-HeartbeatInterval") is not None
        assert not any("eartBeat" in p.name or "meterValue" in p.name for p in table.points())
        await settled(gateway)
        async with modbus(gateway) as client:
            reply = await client.read_holding_registers(register_address("CP1-Cfg-MeterValueSampleInterval"),
                                                        count=2, device_id=1)
        assert decode(reply.registers, RegType.UINT32) == 900
    finally:
        await sim.stop()


async def test_an_idle_connector_confirmed_after_a_restart_has_valid_readings(runner: GatewayRunner):
    """A charger that meters only during transactions sends no reading while idle: once it
    confirms the connector idle, the kept energy register is the truth, not a stale value."""
    gateway = await _start(runner)
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        cp.unrecorded.add("GetConfiguration")
        await cp.boot()
        await cp.status(1, "Available")
        await cp.call("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": T0, "sampledValue": [
            {"value": "5000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]})
    await runner.stop()
    gateway = await _start(runner)
    assert _reliability(gateway, "CP1-C1-Energy-Active-Import-Register") == STALE
    async with TestCharger(runner.url, "CP1") as cp:
        cp.unrecorded.add("GetConfiguration")
        await cp.status(1, "Available")  # no boot, no reading: idle
        await wait_until(lambda: _reliability(gateway, "CP1-C1-Status") == NO_FAULT)
        assert _reliability(gateway, "CP1-C1-Energy-Active-Import-Register") == NO_FAULT
        assert (await _registers(gateway, 1))["valid"] == 1
