"""The central system core over the real server: registration, messages, authorize, history.

OCPP 1.6 sections 4 (charge-point-initiated operations) and the Niagara guide sections 5-6.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.main import Gateway
from tests.conftest import GatewayRunner, wait_until
from tests.support.charger import CallErrorReply, TestCharger

T0 = "2026-11-20T08:00:00Z"


async def test_added_charger_is_accepted_with_the_heartbeat_interval(gateway: Gateway, runner: GatewayRunner):
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        answer = await cp.boot(chargePointSerialNumber="SN1", firmwareVersion="1.2")
        assert answer["status"] == "Accepted"
        assert answer["interval"] == gateway.settings.ocpp.heartbeat_interval_s
        assert gateway.registry.get("CP1").boot.firmware_version == "1.2"
        assert "currentTime" in await cp.call("Heartbeat", {})


@pytest.mark.parametrize("guest_response", ["Accepted", "Pending", "Rejected"])
async def test_guest_charger_gets_the_configured_response_and_interval(runner: GatewayRunner, guest_response):
    gw = await runner.start(registration={"guest_response": guest_response, "guest_reconnect_interval_s": 77})
    async with TestCharger(runner.url, "GUEST") as cp:
        answer = await cp.boot()
    assert answer["status"] == guest_response
    assert answer["interval"] == (gw.settings.ocpp.heartbeat_interval_s if guest_response == "Accepted" else 77)
    assert gw.registry.get("GUEST").is_guest


async def test_device_changed_to_rejected_is_rejected_and_refused_other_messages(gateway, runner):
    await gateway.device_book.add_device("CP1")
    await gateway.device_book.update_device("CP1", registration="Rejected")
    async with TestCharger(runner.url, "CP1") as cp:
        assert (await cp.boot())["status"] == "Rejected"
        with pytest.raises(CallErrorReply) as err:
            await cp.call("Heartbeat", {})
        assert err.value.code == "SecurityError"


async def test_status_notification_creates_connectors_with_vendor_error(gateway, runner):
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        await cp.status(0, "Available")
        await cp.status(1, "Faulted", "OtherError", vendorErrorCode="SMP_AC_0013", info="relay")
    station = gateway.registry.get("CP1")
    assert set(station.connectors) == {0, 1}
    c1 = station.connectors[1]
    assert (c1.status, c1.error_code, c1.vendor_error_code, c1.info) == ("Faulted", "OtherError", "SMP_AC_0013", "relay")
    assert c1.last_update > 0


@pytest.mark.parametrize(("policy", "tag", "expected"), [
    ("all", "ANY", "Accepted"),
    ("none", "ANY", "Invalid"),
    ("all_except_blacklist", "BAD", "Blocked"),
    ("all_except_blacklist", "ANY", "Accepted"),
    ("none_except_whitelist", "GOOD", "Accepted"),
    ("none_except_whitelist", "ANY", "Invalid"),
    ("none_except_whitelist", "OLD", "Expired"),
])
async def test_authorize_policy_answers_authorize_start_and_stop_alike(runner, policy, tag, expected):
    gw = await runner.start(authorize={"policy": policy})
    await gw.device_book.add_device("CP1")
    await gw.history.put_tag("BAD", "blacklist")
    await gw.history.put_tag("GOOD", "whitelist")
    await gw.history.put_tag("OLD", "whitelist", expiry="2020-01-01T00:00:00Z")
    await gw.device_book.reload_tags()
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        assert (await cp.call("Authorize", {"idTag": tag}))["idTagInfo"]["status"] == expected
        start = await cp.call("StartTransaction", {"connectorId": 1, "idTag": tag, "meterStart": 0, "timestamp": T0})
        assert start["idTagInfo"]["status"] == expected
        stop = await cp.call("StopTransaction", {"transactionId": start["transactionId"], "idTag": tag,
                                                 "meterStop": 10, "timestamp": T0})
        assert stop["idTagInfo"]["status"] == expected


async def test_transaction_is_committed_before_the_answer_and_logged_with_niagara_columns(gateway, runner):
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        start = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 1000,
                                                   "timestamp": "2026-11-20T08:00:00Z"})
        tx_id = start["transactionId"]
        row = await gateway.history.transaction(tx_id)  # already there when the answer arrives
        assert row["status"] == "active" and row["start_meter_wh"] == 1000
        assert gateway.registry.get("CP1").connectors[1].transaction_id == tx_id
        await cp.call("MeterValues", {"connectorId": 1, "transactionId": tx_id, "meterValue": [
            {"timestamp": "2026-11-20T08:10:00Z", "sampledValue": [
                {"value": "3500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"},
                {"value": "10.5", "measurand": "Current.Import", "phase": "L1", "unit": "A"}]}]})
        await cp.call("StopTransaction", {"transactionId": tx_id, "meterStop": 5200, "reason": "EVDisconnected",
                                          "timestamp": "2026-11-20T08:42:30Z", "transactionData": [
                                              {"timestamp": "2026-11-20T08:42:30Z",
                                               "sampledValue": [{"value": "5200"}]}]})
    [tx] = await gateway.history.transactions("CP1")
    assert tx["transaction_id"] == tx_id
    assert (tx["start_meter_wh"], tx["stop_meter_wh"], tx["total_meter_wh"]) == (1000, 5200, 4200)
    assert tx["minutes_charged"] == 42 and tx["stop_reason"] == "EVDisconnected"
    assert tx["start_time"] == "2026-11-20T08:00:00.000Z"
    station = gateway.registry.get("CP1")
    assert station.reading(1, "Current.Import", "L1").value == 10.5
    assert station.reading(1, "Power.Active.Import").unit == "W"


async def test_repeated_start_transaction_gets_the_same_id(gateway, runner):
    await gateway.device_book.add_device("CP1")
    payload = {"connectorId": 1, "idTag": "T", "meterStart": 5, "timestamp": T0}
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        first = await cp.call("StartTransaction", payload)
        again = await cp.call("StartTransaction", payload)
        other = await cp.call("StartTransaction", {**payload, "meterStart": 6})
    assert first["transactionId"] == again["transactionId"] != other["transactionId"]


async def test_stop_for_unknown_transaction_is_stored_and_answered(gateway, runner):
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        answer = await cp.call("StopTransaction", {"transactionId": 999999, "meterStop": 10, "timestamp": T0,
                                                   "idTag": "X"})
    assert answer["idTagInfo"]["status"] == "Accepted"
    [row] = await gateway.history.transactions("CP1")
    assert row["status"] == "orphan" and row["stop_meter_wh"] == 10


async def test_offline_transaction_delivered_late_keeps_its_own_timestamps(gateway, runner):
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        start = await cp.call("StartTransaction", {"connectorId": 2, "idTag": "T", "meterStart": 0,
                                                   "timestamp": "2026-01-02T03:04:05Z"})
        await cp.call("StopTransaction", {"transactionId": start["transactionId"], "meterStop": 900,
                                          "timestamp": "2026-01-02T04:04:05Z"})
    [tx] = await gateway.history.transactions("CP1")
    assert (tx["start_time"], tx["stop_time"]) == ("2026-01-02T03:04:05.000Z", "2026-01-02T04:04:05.000Z")
    assert tx["minutes_charged"] == 60


async def test_restart_in_the_middle_of_a_transaction_closes_the_same_row(runner):
    gw = await runner.start()
    await gw.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        tx_id = (await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                    "timestamp": T0}))["transactionId"]
    await runner.stop()
    gw = await runner.start()
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        await cp.call("StopTransaction", {"transactionId": tx_id, "meterStop": 100, "timestamp": T0})
    rows = await gw.history.transactions("CP1")
    assert [(r["transaction_id"], r["status"], r["stop_meter_wh"]) for r in rows] == [(tx_id, "stopped", 100)]


async def test_malformed_frames_get_formation_violation_and_the_session_stays(gateway, runner):
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        reply = await cp.send_raw('[2, "bad-1", "Heartbeat"]', "bad-1")
        assert reply[:3] == [4, "bad-1", "FormationViolation"]
        reply = await cp.send_raw("this is not json", "-1")
        assert reply[2] == "FormationViolation"
        with pytest.raises(CallErrorReply) as err:
            await cp.call("StatusNotification", {"connectorId": 1})
        assert err.value.code == "OccurenceConstraintViolation"
        with pytest.raises(CallErrorReply) as err:
            await cp.call("NoSuchAction", {})
        assert err.value.code == "NotImplemented"
        assert "currentTime" in await cp.call("Heartbeat", {})


async def test_schema_breaking_but_harmless_messages_are_accepted_per_action_and_logged(gateway, runner):
    """Tolerated only where the charger's quirk names the action (EVlink guide 6.3.3.2 note 1)."""
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        answer = await cp.boot(chargePointVendor="Schneider Electric", chargePointModel="EVlink Parking",
                               chargePointSerialNumber="S" * 40)  # EVlink: serials over 25 chars
        assert answer["status"] == "Accepted"
        with pytest.raises(CallErrorReply) as err:  # lbbrhzn#1576: no quirk relaxes MeterValues
            await cp.call("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": T0, "sampledValue": [
                {"value": "50", "measurand": "Frequency", "unit": "Hz"}]}]})
        assert err.value.code == "PropertyConstraintViolation"
    assert gateway.registry.get("CP1").boot.charge_point_serial == "S" * 40
    rows = await gateway.history.general_log("CP1")
    warnings = [r for r in rows if r["level"] == "warning"]
    assert any("chargePointSerialNumber" in r["message"] for r in warnings)


async def test_a_new_connection_replaces_the_old_session(gateway, runner):
    await gateway.device_book.add_device("CP1")
    first = await TestCharger(runner.url, "CP1").connect()
    await first.boot()
    async with TestCharger(runner.url, "CP1") as second:
        await second.boot()
        await wait_until(lambda: first.ws.close_code is not None)
        assert gateway.connections.sessions["CP1"].ws is not None
        assert gateway.registry.get("CP1").online
        assert "currentTime" in await second.call("Heartbeat", {})
    await first.close()
    await wait_until(lambda: not gateway.registry.get("CP1").online)
    assert gateway.registry.get("CP1").fault  # websocket_lost_connection_fault = true


async def test_other_messages_are_answered(gateway, runner):
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        assert (await cp.call("DataTransfer", {"vendorId": "acme"}))["status"] == "UnknownVendorId"
        assert await cp.call("DiagnosticsStatusNotification", {"status": "Uploaded"}) == {}
        assert await cp.call("FirmwareStatusNotification", {"status": "Installed"}) == {}
    station = gateway.registry.get("CP1")
    assert (station.diagnostics_status, station.firmware_status) == ("Uploaded", "Installed")


async def test_general_log_has_every_request_and_confirmation(gateway, runner):
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        await cp.status(1, "Charging")
    rows = await gateway.history.general_log("CP1")
    types = [r["message_type"] for r in rows]
    for expected in ("BootNotificationRequest", "BootNotificationConfirmation",
                     "StatusNotificationRequest", "StatusNotificationConfirmation"):
        assert expected in types
    status_line = next(r for r in rows if r["message_type"] == "StatusNotificationRequest")
    assert "Status: Charging; Error Code: NoError" in status_line["message"]


async def test_retention_removes_old_general_log_rows(gateway, runner):
    for i in range(20):
        gateway.history.log("CP1", "Test", f"line {i}")
    await gateway.history.flush_log()
    await gateway.history.apply_retention(days=90, max_rows=5, sample_days=90)
    rows = await gateway.history.general_log("CP1", message_type="Test")
    assert [r["message"] for r in rows] == [f"line {i}" for i in range(15, 20)]


async def test_silent_charger_goes_offline_after_its_heartbeat_window(runner):
    clock = [1_800_000_000.0]
    gw = await runner.start(ocpp={"websocket_lost_connection_fault": False})
    gw.registry.clock = lambda: clock[0]
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
    station = gw.registry.get("CP1")
    await wait_until(lambda: not station.connected)
    assert station.online  # a closed socket alone is not a fault with this setting
    clock[0] += 10 * station.heartbeat_interval_s
    assert gw.registry.refresh_liveness(station, gw.settings.ocpp.offline_after_heartbeats)
    assert not station.online and station.fault


async def test_many_chargers_at_once_do_not_disturb_each_other(gateway, runner):
    chargers = [await TestCharger(runner.url, f"CP{i}").connect() for i in range(20)]
    try:
        answers = await asyncio.gather(*(c.boot() for c in chargers))
        assert all(a["status"] == "Pending" for a in answers)
        await chargers[0].send_raw("{{{")
        # Guests (Pending) are answered too: each with its own SecurityError (OCPP 1.6 4.2).
        answers = await asyncio.gather(*(c.call("Heartbeat", {}) for c in chargers[1:]), return_exceptions=True)
        assert [getattr(a, "code", a) for a in answers] == ["SecurityError"] * 19
    finally:
        for c in chargers:
            await c.close()
    assert json.dumps(len(gateway.registry.stations)) == "20"


async def test_adding_a_pending_charger_asks_it_to_boot_again_now(gateway, runner):
    async with TestCharger(runner.url, "CP9") as cp:
        cp.answers["TriggerMessage"] = lambda p: {"status": "Accepted"}
        assert (await cp.boot())["status"] == "Pending"
        await gateway.device_book.add_device("CP9")
        action, payload = await asyncio.wait_for(cp.received.get(), 5)
        assert (action, payload) == ("TriggerMessage", {"requestedMessage": "BootNotification"})
        assert (await cp.boot())["status"] == "Accepted"


async def test_a_transaction_whose_stop_never_came_is_marked_unterminated_and_can_still_close(gateway, runner):
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        lost = (await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                   "timestamp": "2026-11-20T08:00:00Z"}))["transactionId"]
        await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 50,
                                           "timestamp": "2026-11-20T09:00:00Z"})
        assert (await gateway.history.transaction(lost))["status"] == "unterminated"
        await cp.call("StopTransaction", {"transactionId": lost, "meterStop": 40, "timestamp": T0})
    assert (await gateway.history.transaction(lost))["status"] == "stopped"
