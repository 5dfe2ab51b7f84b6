"""The BACnet/IP device seen by a BACnet client in another process, over loopback (issue 5).

The client (tests/support/bacnet_client.py, bacpypes3) binds its own UDP port: bacpypes3 0.0.110 never
sends to a 127.x address on its own port (notes 1.4). Everything is loopback and bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.model.station import MeterKey, MeterReading
from tests.conftest import GatewayRunner, wait_until
from tests.support.charger import TestCharger

CLIENT = Path(__file__).resolve().parents[1] / "support" / "bacnet_client.py"
DEVICE_ID = 88870


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BacnetClient:
    """Talks JSON lines to the client process; COV notifications land in `covs`."""

    def __init__(self, proc: asyncio.subprocess.Process, server_port: int) -> None:
        self.proc = proc
        self.addr = f"127.0.0.1:{server_port}"
        self.server_port = server_port
        self.covs: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next = 0
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            msg = json.loads(line)
            if "cov" in msg:
                await self.covs.put(msg)
            elif "id" in msg:
                self._answers.pop(msg["id"]).set_result(msg)

    async def ask(self, op: str, timeout: float = 10, **args: Any) -> dict[str, Any]:
        self._next += 1
        fut = self._answers[self._next] = asyncio.get_running_loop().create_future()
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"id": self._next, "op": op, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        return await asyncio.wait_for(fut, timeout)

    async def value(self, op: str, **args: Any) -> Any:
        answer = await self.ask(op, addr=self.addr, **args)
        assert answer["ok"], answer
        return answer["value"]

    async def read(self, obj: str, prop: str = "presentValue") -> Any:
        return await self.value("read", obj=obj, prop=prop)

    async def write(self, obj: str, value: Any, type_: str = "real", priority: int | None = None) -> dict:
        return await self.ask("write", addr=self.addr, obj=obj, prop="presentValue", value=value,
                              type=type_, priority=priority)


@contextlib.asynccontextmanager
async def client_process(runner: GatewayRunner, server_port: int) -> AsyncIterator[BacnetClient]:
    """The BACnet client in its own process, on its own free port, talking to `server_port`."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(CLIENT), f"127.0.0.1/8:{free_udp_port()}", cwd=str(runner.tmp_path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    assert json.loads(await asyncio.wait_for(proc.stdout.readline(), 20)) == {"ready": True}
    client = BacnetClient(proc, server_port)
    try:
        yield client
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        client._reader.cancel()


@pytest.fixture
async def bms(runner: GatewayRunner) -> AsyncIterator[tuple[GatewayRunner, BacnetClient]]:
    """A gateway with BACnet on a free loopback port, and a client process on another."""
    port = free_udp_port()
    await runner.start(bacnet={"enabled": True, "address": "127.0.0.1/8", "port": port})
    async with client_process(runner, port) as client:
        yield runner, client


async def added_charger(runner: GatewayRunner, charger_id: str) -> TestCharger:
    gw = runner.gateway
    assert gw is not None
    await gw.device_book.add_device(charger_id)
    charger = TestCharger(runner.url, charger_id)
    charger.unrecorded.add("GetConfiguration")  # the gateway's read after boot is not under test here
    await charger.connect()
    await charger.boot(chargePointSerialNumber="SN-1", firmwareVersion="1.2.3")
    return charger


async def test_bms_discovers_the_device_and_reads_its_object_list(bms):
    """Who-Is gets the I-Am; the object list names every point.

    Unicast Who-Is: the I-Am answer to a broadcast goes to the broadcast address on the
    server's port, which a client on another loopback port cannot hear (notes 1.4).
    """
    runner, client = bms
    found = await client.ask("whois", target=client.addr, low=DEVICE_ID, high=DEVICE_ID)
    assert found["ok"] and found["value"] == [DEVICE_ID]
    other = await client.ask("whois", target=client.addr, low=1, high=10)
    assert other["ok"] and other["value"] == []
    objects = await client.read(f"device,{DEVICE_ID}", "objectList")
    assert ["analog-value", 1] in objects  # Site-PowerLimit
    device = await client.value("rpm", obj=f"device,{DEVICE_ID}",
                                props=["vendorName", "objectName", "protocolObjectTypesSupported",
                                       "protocolServicesSupported", "databaseRevision"])
    assert device["vendor-name"] == "ocpp-bms-gateway"
    assert device["object-name"] == "OCPP-BMS-Gateway"
    # The bacpypes3 device defects are fixed (notes 1.3): true service bits, object types listed.
    services = {i for i, bit in enumerate(device["protocol-services-supported"]) if bit}
    assert services == {1, 5, 12, 14, 15, 16, 26, 27, 28, 33, 34}  # no readRange (35): not offered
    types = {i for i, bit in enumerate(device["protocol-object-types-supported"]) if bit}
    assert types == {0, 2, 3, 5, 8, 13, 19, 40, 56}
    property_list = await client.read(f"device,{DEVICE_ID}", "propertyList")
    assert "object-name" not in property_list and "vendor-name" in property_list


async def test_status_and_meter_value_appear_and_cov_follows_a_status_change(bms):
    """StatusNotification and MeterValues become MSI/AI objects; COV arrives within 1 s."""
    runner, client = bms
    charger = await added_charger(runner, "CP-A")
    try:
        await charger.status(1, "Available")
        await charger.call("MeterValues", {"connectorId": 1, "meterValue": [{
            "timestamp": "2026-11-21T06:00:00Z",
            "sampledValue": [{"value": "7200", "measurand": "Power.Active.Import", "unit": "W"}]}]})
        status, power = "multi-state-input,10500", "analog-input,10743"
        await wait_until_read(client, status, 1)
        assert await client.read(status, "objectName") == "CP1-C1-Status"
        assert await client.read(status, "stateText") == [
            "Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing",
            "Reserved", "Unavailable", "Faulted"]
        assert await client.read(power) == 7200.0
        assert await client.read(power, "units") == "watts"
        every = await client.value("rpm", obj=status, props=["all"])  # what BMS tools read first
        assert every["number-of-states"] == 9 and every["event-state"] == "normal"
        assert not every["out-of-service"] and not any(isinstance(v, dict) for v in every.values())
        assert await client.read(f"device,{DEVICE_ID}", "objectList") and \
            ["analog-input", 10743] in await client.read(f"device,{DEVICE_ID}", "objectList")

        assert (await client.value("subscribe", obj=status, lifetime=60)) == "subscribed"
        while not client.covs.empty():  # the initial notification after subscribing
            client.covs.get_nowait()
        await asyncio.sleep(0.2)
        while not client.covs.empty():
            client.covs.get_nowait()
        loop = asyncio.get_running_loop()
        sent = loop.time()
        await charger.status(1, "Charging")
        deadline = sent + 1.0
        while True:
            cov = await asyncio.wait_for(client.covs.get(), max(deadline - loop.time(), 0.01))
            if cov["property"] == "present-value" and cov["value"] == 3:
                break
        assert loop.time() - sent < 1.0
    finally:
        await charger.close()


async def wait_until_read(client: BacnetClient, obj: str, expected: Any, timeout: float = 5) -> None:
    async def reads() -> bool:
        answer = await client.ask("read", addr=client.addr, obj=obj, prop="presentValue")
        return bool(answer["ok"] and answer["value"] == expected)
    await wait_until(reads, timeout, what=f"{obj} reading {expected!r}", interval=0.1)


async def test_configuration_write_reaches_the_charger_and_a_refused_write_errors(bms):
    """A write to a writable key is a ChangeConfiguration; the charger's refusal is an error."""
    runner, client = bms
    gw = runner.gateway
    charger = await added_charger(runner, "CP-A")
    try:
        from gateway.model.station import ConfigKey
        station = gw.registry.get("CP-A")
        gw.registry.set_config(station, ConfigKey("HeartbeatInterval", "300", readonly=False))
        gw.registry.set_config(station, ConfigKey("NumberOfConnectors", "1", readonly=True))
        key, result = "characterstring-value,15209", "characterstring-value,17609"
        await wait_until_read(client, key, "300")
        charger.answers["ChangeConfiguration"] = lambda p: {
            "status": "Accepted" if p["value"].isdigit() else "Rejected"}

        answer = await client.write(key, "60", "string")
        assert answer["ok"], answer
        action, payload = await asyncio.wait_for(charger.received.get(), 5)
        assert (action, payload) == ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"})
        await wait_until_read(client, key, "60")
        assert await client.read(result) == "Accepted"

        refused = await client.write(key, "soon", "string")
        assert not refused["ok"] and "service-request-denied" in refused["error"]
        assert await client.read(key) == "60"  # nothing half-applied
        assert await client.read(result) == "Rejected"  # the charger's answer (a result word)

        read_only = await client.write("characterstring-value,15220", "2", "string")
        assert not read_only["ok"] and "write-access-denied" in read_only["error"]
        status = await client.write("multi-state-input,10000", 1, "unsigned")
        assert not status["ok"] and "write-access-denied" in status["error"]
    finally:
        await charger.close()


async def test_site_limit_is_commandable_and_range_checked(bms):
    """The EMS writes at its priority, relinquishes to the default; out of range is an error."""
    runner, client = bms
    limit = "analog-value,1"
    assert (await client.write(limit, 55.5, "real", priority=10))["ok"]
    assert await client.read(limit) == 55.5
    assert await client.read(limit, "currentCommandPriority") == 10
    assert runner.gateway.points.table.state.site.power_limit_kw == 55.5
    too_big = await client.write(limit, 50000.0, "real", priority=10)
    assert not too_big["ok"] and "value-out-of-range" in too_big["error"]
    assert (await client.write(limit, None, "null", priority=10))["ok"]
    assert await client.read(limit) == 10000.0


async def test_offline_charger_is_flagged_and_its_writes_fail(bms):
    """Stale values carry a fault status flag; a command to an offline charger is refused."""
    runner, client = bms
    charger = await added_charger(runner, "CP-A")
    await charger.status(1, "Charging")
    status = "multi-state-input,10500"
    await wait_until_read(client, status, 3)
    assert await client.read(status, "reliability") == "no-fault-detected"
    assert await client.value("subscribe", obj=status, lifetime=60) == "subscribed"
    await charger.close()
    await wait_until(lambda: not runner.gateway.registry.get("CP-A").online)
    # COV subscribers hear the fault flag at once (bacpypes3 alone would not tell them, notes 1.3)
    while True:
        cov = await asyncio.wait_for(client.covs.get(), 2)
        if cov["property"] == "status-flags" and cov["value"][1] == 1:
            break
    assert await client.read(status, "reliability") == "communication-failure"
    assert (await client.read(status, "statusFlags"))[1] == 1  # fault
    offline = await client.write("binary-value,10520", 1, "unsigned")
    assert not offline["ok"] and "operational-problem" in offline["error"]


async def test_instances_survive_a_restart_with_chargers_added_in_another_order(runner):
    """Same names and instances after a restart, served before the chargers report again.

    Vendor keys and vendor measurands keep the offsets persisted when first seen; a new
    charger added after the restart only gets a new slot. (Reordering within one gateway
    run is covered at table level in test_points_table.)
    """
    from gateway.model.station import ConfigKey, MeterKey, MeterReading
    from points.service import point_rows
    bacnet = {"enabled": True, "address": "127.0.0.1/8", "port": free_udp_port()}
    gw = await runner.start(bacnet=bacnet)
    for charger_id in ("CP-A", "CP-B"):
        await gw.device_book.add_device(charger_id)
    reg = gw.registry
    reg.set_config(reg.get("CP-B"), ConfigKey("VendorY", "1", readonly=False))
    reg.record_reading(reg.get("CP-A"), MeterKey(2, "Vendor.Flow", "", "Body"), MeterReading(1.0, "", 1.0))
    before = {r["name"]: (r["object_type"], r["instance"]) for r in point_rows(gw.points.table)}
    assert before["CP2-Cfg-VendorY"] == ("characterstring-value", 25300)
    await runner.stop()  # waits for what is being persisted

    gw = await runner.start(bacnet=bacnet)
    await gw.device_book.add_device("CP-C")
    reg = gw.registry
    reg.set_config(reg.get("CP-C"), ConfigKey("VendorZ", "1", readonly=False))
    reg.set_config(reg.get("CP-B"), ConfigKey("VendorY", "2", readonly=False))
    table = gw.points.table
    after = {r["name"]: (r["object_type"], r["instance"]) for r in point_rows(table)}
    assert {k: v for k, v in after.items() if not k.startswith("CP3")} == before
    assert after["CP3-Cfg-VendorZ"] == ("characterstring-value", 35301)
    assert not table.reliable(table.get("CP1-C2-Vendor-Flow-Body"))  # restored, charger offline
    await wait_until(lambda: set(gw.points.bacnet.objects) == set(after.values()))


async def test_command_points_send_their_action_and_show_the_answer(bms):
    """Niagara 6 actions as points: Reset, ChangeAvailability (commandable), RemoteStart."""
    runner, client = bms
    charger = await added_charger(runner, "CP-A")
    try:
        await charger.status(1, "Available")
        revision = await client.read(f"device,{DEVICE_ID}", "databaseRevision")
        charger.answers.update({
            "Reset": lambda p: {"status": "Accepted"},
            "ChangeAvailability": lambda p: {"status": "Rejected" if p["connectorId"] == 0 else "Accepted"},
            "RemoteStartTransaction": lambda p: {"status": "Accepted"},
        })
        await wait_until_read(client, "multi-state-input,10500", 1)

        assert (await client.write("multi-state-value,15020", 3, "unsigned"))["ok"]  # Reset: Hard
        assert await asyncio.wait_for(charger.received.get(), 5) == ("Reset", {"type": "Hard"})
        assert await client.read("characterstring-value,15021") == "Accepted"
        assert await client.read("multi-state-value,15020") == 1  # back to Idle

        availability = "multi-state-value,10504"  # CP1-C1-Availability
        assert (await client.write(availability, 2, "unsigned", priority=8))["ok"]
        assert await asyncio.wait_for(charger.received.get(), 5) == (
            "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
        assert await client.read(availability) == 2
        assert await client.read(availability, "currentCommandPriority") == 8
        refused = await client.write("multi-state-value,10004", 2, "unsigned", priority=8)  # connector 0
        assert not refused["ok"] and "service-request-denied" in refused["error"]
        await asyncio.wait_for(charger.received.get(), 5)
        assert await client.read("multi-state-value,10004") == 1  # nothing stored
        assert not await client.read("multi-state-value,10004", "currentCommandPriority")  # NULL
        assert await client.read("characterstring-value,10005") == "Rejected"

        assert (await client.write("characterstring-value,10522", "TAG-1", "string"))["ok"]
        assert await asyncio.wait_for(charger.received.get(), 5) == (
            "RemoteStartTransaction", {"connectorId": 1, "idTag": "TAG-1"})
        empty = await client.write("characterstring-value,10522", "", "string")
        assert not empty["ok"] and "invalid-data-type" in empty["error"]

        await charger.call("MeterValues", {"connectorId": 1, "meterValue": [{
            "timestamp": "2026-11-21T06:00:00Z",
            "sampledValue": [{"value": "16", "measurand": "Current.Import", "phase": "L1", "unit": "A"}]}]})
        await wait_until_read(client, "analog-input,10612", 16.0)  # 500 + 100 + 1*11 + L1 (1)
        assert await client.read(f"device,{DEVICE_ID}", "databaseRevision") > revision
    finally:
        await charger.close()


async def test_a_taken_port_or_missing_address_is_a_clear_configuration_error(runner):
    """Never start BAC0 without an address (it would announce itself on the LAN, notes 1.4)."""
    import dataclasses

    from gateway.errors import ConfigError
    from points.bacnet.device import BacnetServer
    from points.table import PointTable
    gw = await runner.start(bacnet={"enabled": True, "address": "127.0.0.1/8", "port": free_udp_port()})
    table = PointTable(clock=lambda: 0.0)
    with pytest.raises(ConfigError, match="is another BACnet application"):
        await BacnetServer(gw.settings.bacnet, table, gw.tasks.spawn).start()
    no_address = dataclasses.replace(gw.settings.bacnet, address="")
    with pytest.raises(ConfigError, match="bacnet.address"):
        await BacnetServer(no_address, table, gw.tasks.spawn).start()


async def test_the_limit_in_force_and_its_source_are_never_stale_on_bacnet(bms):
    """Issue 13 item 7: the in-force point kept 90 A while the reason said "no limit"."""
    import math

    runner, client = bms
    assert (await client.write("analog-value,2", 20.0, "real", priority=8))["ok"]
    await wait_until(lambda: runner.gateway.charging.in_force.source == "bms")
    assert await client.read("analog-input,4") == 20.0  # Site-CurrentLimit-InForce
    assert await client.read("multi-state-input,6") == 2  # Site-Limit-Source: bms
    assert await client.read("binary-input,7") == "inactive"  # Site-BMS-WatchdogExpired
    assert (await client.write("analog-value,2", None, "null", priority=8))["ok"]
    await wait_until(lambda: runner.gateway.charging.in_force.source == "none")
    assert math.isnan(await client.read("analog-input,4"))  # not available, not a stale 20 A
    assert await client.read("multi-state-input,6") == 1  # none


async def test_changes_in_one_loop_turn_reach_an_object_once_with_the_last_value(bms):
    """Issue 17: the table's changes are pushed to BACnet objects once per loop turn (as Modbus
    flushes), so two readings of one message do not make two pushes and two COV notifications."""
    runner, client = bms
    gw = runner.gateway
    charger = await added_charger(runner, "CP-A")
    try:
        await charger.call("MeterValues", {"connectorId": 1, "meterValue": [{
            "timestamp": "2026-11-21T06:00:00Z",
            "sampledValue": [{"value": "7200", "measurand": "Power.Active.Import", "unit": "W"}]}]})
        power = "analog-input,10743"
        await wait_until_read(client, power, 7200.0)
        point = gw.points.table.get("CP1-C1-Power-Active-Import")
        obj = gw.points.bacnet.objects[point.uid]
        pushed: list[float] = []
        obj._property_monitors["presentValue"].append(lambda old, new: pushed.append(float(new)))
        station, key = gw.registry.get("CP-A"), MeterKey(1, "Power.Active.Import")
        for n, watts in enumerate((9000.0, 11000.0)):  # one loop turn
            gw.registry.record_reading(station, key, MeterReading(watts, "W", station.meters[key].timestamp + n + 1))
        await wait_until_read(client, power, 11000.0)
        assert pushed == [11000.0]
    finally:
        await charger.close()
