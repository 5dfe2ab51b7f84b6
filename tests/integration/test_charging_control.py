"""Smart charging at run time over the real server: site share, Niagara profiles, fail-safe.

Niagara guide 6.3 (smart-charging properties) and OCPP 1.6 section 3.13 (charging profiles).
"""

from __future__ import annotations

import asyncio

from tests.conftest import wait_until
from tests.support.charger import TestCharger

T0 = "2026-11-20T08:00:00Z"


def accepting(cp: TestCharger) -> TestCharger:
    cp.answers["SetChargingProfile"] = lambda p: {"status": "Accepted"}
    cp.answers["ClearChargingProfile"] = lambda p: {"status": "Accepted"}
    cp.answers["GetCompositeSchedule"] = lambda p: {"status": "Rejected"}
    return cp


async def next_call(cp: TestCharger, action: str) -> dict:
    while True:
        got, payload = await asyncio.wait_for(cp.received.get(), 5)
        if got == action:
            return payload


async def charging(cp: TestCharger, connector: int = 1) -> int:
    await cp.boot()
    await cp.status(connector, "Charging")
    answer = await cp.call("StartTransaction", {"connectorId": connector, "idTag": "T", "meterStart": 0,
                                                "timestamp": T0})
    return answer["transactionId"]


async def test_site_limit_is_shared_equally_between_charging_sessions(gateway, runner):
    await gateway.device_book.add_device("CP1")
    await gateway.device_book.add_device("CP2")
    async with accepting(TestCharger(runner.url, "CP1")) as cp1, accepting(TestCharger(runner.url, "CP2")) as cp2:
        tx1, tx2 = await charging(cp1), await charging(cp2)
        await gateway.charging.set_site_limit(None, 32.0, source="bms")
        p1, p2 = await next_call(cp1, "SetChargingProfile"), await next_call(cp2, "SetChargingProfile")
        for payload, tx in ((p1, tx1), (p2, tx2)):
            profile = payload["csChargingProfiles"]
            assert profile["chargingProfilePurpose"] == "TxProfile" and profile["transactionId"] == tx
            assert profile["chargingSchedule"]["chargingRateUnit"] == "A"
            assert profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 16.0
        status = gateway.charging.status()
        assert status["site"]["reason"] == "bms"
        assert status["connectors"]["CP1/1"]["send_status"] == "Accepted"


async def test_a_session_that_stops_gives_its_share_to_the_others(gateway, runner):
    await gateway.device_book.add_device("CP1")
    await gateway.device_book.add_device("CP2")
    async with accepting(TestCharger(runner.url, "CP1")) as cp1, accepting(TestCharger(runner.url, "CP2")) as cp2:
        await charging(cp1)
        tx2 = await charging(cp2)
        await gateway.charging.set_site_limit(None, 24.0)
        await next_call(cp1, "SetChargingProfile")
        await next_call(cp2, "SetChargingProfile")
        await cp2.call("StopTransaction", {"transactionId": tx2, "meterStop": 10, "timestamp": T0})
        again = await next_call(cp1, "SetChargingProfile")
        assert again["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 24.0


async def test_fallback_limit_applies_when_the_bms_goes_silent(runner):
    clock = [1_800_000_000.0]
    gw = await runner.start(smart_charging={"safe_power_limit_kw": 4.14, "setpoint_timeout_s": 60.0})
    gw.charging.clock = lambda: clock[0]
    await gw.device_book.add_device("CP1")
    async with accepting(TestCharger(runner.url, "CP1")) as cp:
        await charging(cp)
        after_start = await next_call(cp, "SetChargingProfile")  # no BMS value yet: the safe limit
        assert after_start["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 6.0
        assert gw.charging.status()["site"]["source"] == "safe"
        await gw.charging.set_site_limit(None, 20.0, source="bms")
        first = await next_call(cp, "SetChargingProfile")
        assert first["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 20.0
        clock[0] += 61
        fallback = await next_call(cp, "SetChargingProfile")
        # 4.14 kW over 3 phases at 230 V is 6 A
        assert fallback["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 6.0
        assert gw.charging.status()["site"]["reason"].startswith("fallback")


async def test_niagara_profile_is_sent_when_enabled_and_cleared_when_disabled(gateway, runner):
    await gateway.device_book.add_device("CP1")
    async with accepting(TestCharger(runner.url, "CP1")) as cp:
        await cp.boot()
        settings = await gateway.charging.configure("CP1", 0, enabled=True, unit="A", limit=13, profile_id=100)
        sent = await next_call(cp, "SetChargingProfile")
        assert sent["connectorId"] == 0
        assert sent["csChargingProfiles"]["chargingProfilePurpose"] == "ChargePointMaxProfile"
        assert gateway.charging.profiles[("CP1", 0)].send_status == "Accepted"
        assert settings.limit == 13
        await gateway.charging.configure("CP1", 0, enabled=False)
        cleared = await next_call(cp, "ClearChargingProfile")
        assert cleared["id"] == 100


async def test_profiles_are_sent_again_after_the_charger_reboots(gateway, runner):
    await gateway.device_book.add_device("CP1")
    async with accepting(TestCharger(runner.url, "CP1")) as cp:
        await cp.boot()
        await gateway.charging.configure("CP1", 0, enabled=True, limit=16)
        await next_call(cp, "SetChargingProfile")
    async with accepting(TestCharger(runner.url, "CP1")) as cp:
        await cp.boot()
        again = await next_call(cp, "SetChargingProfile")
        assert again["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 16.0


async def test_smart_charging_settings_survive_a_restart(runner):
    gw = await runner.start()
    await gw.device_book.add_device("CP1")
    await gw.charging.configure("CP1", 1, enabled=True, unit="W", limit=7400, stack_level=2)
    await gw.charging.set_site_limit(50.0, None)
    await runner.stop()
    gw = await runner.start()
    settings = gw.charging.profiles[("CP1", 1)]
    assert (settings.enabled, settings.unit.value, settings.limit, settings.stack_level) == (True, "W", 7400.0, 2)
    assert gw.charging.status()["site"]["in_force_power_kw"] == 50.0


async def test_a_site_limit_written_over_modbus_reaches_every_charging_session(runner):
    """The EMS writes the site current limit register; each session gets its share (issue 7)."""
    from pymodbus.client import AsyncModbusTcpClient

    from tests.integration.test_modbus import site_address

    gw = await runner.start(modbus={"enabled": True, "port": 0})
    await gw.device_book.add_device("CP1")
    await gw.device_book.add_device("CP2")
    async with accepting(TestCharger(runner.url, "CP1")) as cp1, accepting(TestCharger(runner.url, "CP2")) as cp2:
        await charging(cp1)
        await charging(cp2)
        client = AsyncModbusTcpClient("127.0.0.1", port=gw.ports["modbus"], timeout=3)
        assert await client.connect()
        try:
            reply = await client.write_registers(site_address(gw, "CurrentLimit"),
                                                 client.convert_to_registers(20.0, client.DATATYPE.FLOAT32),
                                                 device_id=1)
            assert not reply.isError(), reply
        finally:
            client.close()
        for cp in (cp1, cp2):
            sent = await next_call(cp, "SetChargingProfile")
            assert sent["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 10.0
        assert gw.charging.status()["site"]["reason"] == "bms (priority 10)"  # modbus.bacnet_priority


async def test_a_lapsed_bms_limit_without_a_safe_limit_keeps_the_last_value_and_says_so(runner):
    """Issue 13 item 4: after the setpoint timeout the site ran without a limit, silently, while
    the limit-in-force point kept the old value. Now: the last BMS value, a reason, a log line
    and the alarm-able watchdog point; and a restart keeps the BMS limit and its source."""

    clock = [1_800_000_000.0]
    gw = await runner.start(smart_charging={"setpoint_timeout_s": 60.0})
    gw.charging.clock = lambda: clock[0]
    await gw.device_book.add_device("CP1")
    site = {p.spec.key: p for p in gw.points.table.points() if p.spec.kind == "site"}
    read = gw.points.table.read
    assert (read(site["CurrentLimit-InForce"]), read(site["Limit-Source"])) == (None, 1)  # none
    async with accepting(TestCharger(runner.url, "CP1")) as cp:
        await charging(cp)
        await gw.charging.set_site_limit(None, 20.0, source="bms", priority=8)
        first = await next_call(cp, "SetChargingProfile")
        assert first["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 20.0
        assert read(site["BMS-WatchdogExpired"]) is False
        clock[0] += 61
        await wait_until(lambda: gw.charging.status()["site"]["watchdog_expired"])
        site_status = gw.charging.status()["site"]
        assert (site_status["source"], site_status["in_force_current_a"]) == ("last bms", 20.0)
        assert "watchdog expired" in site_status["reason"]
        assert read(site["BMS-WatchdogExpired"]) is True and read(site["CurrentLimit-InForce"]) == 20.0
        assert read(site["Limit-Source"]) == 6  # "last bms"
        await gw.history.flush_log()
        lines = await gw.history.general_log("site", message_type="SiteLimitInForce")
        assert any("watchdog expired" in row["message"] and row["level"] == "warning" for row in lines)
    await gw.charging.set_site_limit(None, 25.0, source="bms")
    await runner.stop()
    gw = await runner.start(smart_charging={"setpoint_timeout_s": 60.0})
    site_status = gw.charging.status()["site"]
    assert (site_status["source"], site_status["in_force_current_a"]) == ("bms", 25.0)


async def test_no_tx_profile_reaches_a_charger_before_its_start_transaction_answer(gateway, runner):
    """Real firmware learns its transaction id from the StartTransaction answer and rejects a
    TxProfile for an id it does not know: the soak saw a pass (another charger's event, the
    1-second tick) write the new session's share while its answer was still being stored."""
    await gateway.device_book.add_device("CP1")
    await gateway.charging.set_site_limit(None, 16.0)
    charging_ = gateway.charging
    starting = charging_.starting

    def a_pass_races_the_answer(charger_id: str, connector_id: int) -> None:
        starting(charger_id, connector_id)
        asyncio.get_running_loop().create_task(charging_.reallocate())
    charging_.starting = a_pass_races_the_answer
    async with accepting(TestCharger(runner.url, "CP1")) as cp:
        answered_before: list[bool] = []
        cp.answers["SetChargingProfile"] = lambda p: (answered_before.append(not cp._pending), {"status": "Accepted"})[1]
        tx = await charging(cp)
        profile = await next_call(cp, "SetChargingProfile")
        assert profile["csChargingProfiles"]["transactionId"] == tx
        assert answered_before == [True]
