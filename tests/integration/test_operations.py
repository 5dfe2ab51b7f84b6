"""Operator actions over the real server (OCPP 1.6 section 5, Niagara guide 6, 6.1, 6.2).

Each test drives `gateway.operator.actions` against a TestCharger on loopback and checks what the
charger received, what came back, and what the model and the general log now show.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import ChargerCallError, ChargerTimeout, ChargerUnavailable, OperationError
from gateway.main import Gateway
from gateway.operator import actions as ops
from tests.conftest import GatewayRunner
from tests.support.charger import (
    ConfigTable,
    TestCharger,
    accepted_charger,
    next_call,
    read_finished,
    standard_config,
)

T0 = "2026-11-20T08:00:00Z"


def status(value: str):
    return lambda payload: {"status": value}


# --- Core ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["Soft", "Hard"])
async def test_reset_is_sent_and_logged_as_request_and_confirmation(gateway: Gateway, runner: GatewayRunner, kind):
    async with accepted_charger(gateway, runner, Reset=status("Accepted")) as cp:
        result = await ops.reset(gateway.actions, "CP1", kind)
        assert await next_call(cp, "Reset") == {"type": kind}
    assert result["status"] == "Accepted" and result["answer"] == {"status": "Accepted"}
    log = {r["message_type"]: r["message"] for r in await gateway.history.general_log("CP1")}
    assert log["ResetRequest"] == f"type: {kind}"
    assert log["ResetConfirmation"] == "Accepted"


async def test_clear_cache_and_unlock_connector(gateway, runner):
    async with accepted_charger(gateway, runner, ClearCache=status("Accepted"),
                                UnlockConnector=status("UnlockFailed")) as cp:
        assert (await ops.clear_cache(gateway.actions, "CP1"))["status"] == "Accepted"
        assert (await ops.unlock_connector(gateway.actions, "CP1", 2))["status"] == "UnlockFailed"
        assert await next_call(cp, "UnlockConnector") == {"connectorId": 2}


async def test_remote_start_carries_id_tag_connector_and_profile(gateway, runner):
    profile = {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
               "chargingProfileKind": "Relative",
               "chargingSchedule": {"chargingRateUnit": "A",
                                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}]}}
    async with accepted_charger(gateway, runner, RemoteStartTransaction=status("Accepted")) as cp:
        result = await ops.remote_start_transaction(gateway.actions, "CP1", "TAG1", 1, profile)
        sent = await next_call(cp, "RemoteStartTransaction")
    assert result["status"] == "Accepted"
    assert sent == {"idTag": "TAG1", "connectorId": 1, "chargingProfile": profile}


async def test_remote_start_with_a_profile_needs_smart_charging(gateway, runner):
    table = ConfigTable(standard_config(SupportedFeatureProfiles="Core,RemoteTrigger"))
    profile = {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
               "chargingProfileKind": "Relative",
               "chargingSchedule": {"chargingRateUnit": "A",
                                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}]}}
    async with accepted_charger(gateway, runner, table=table, RemoteStartTransaction=status("Accepted")):
        with pytest.raises(ChargerUnavailable, match="SmartCharging"):
            await ops.remote_start_transaction(gateway.actions, "CP1", "TAG1", 1, profile)
        with pytest.raises(ValueError, match="TxProfile"):
            await ops.remote_start_transaction(gateway.actions, "CP1", "TAG1", 1,
                                               {**profile, "chargingProfilePurpose": "TxDefaultProfile"})
        assert (await ops.remote_start_transaction(gateway.actions, "CP1", "TAG1", 1))["status"] == "Accepted"


async def test_remote_stop_by_connector_finds_the_active_transaction(gateway, runner):
    async with accepted_charger(gateway, runner, RemoteStopTransaction=status("Accepted")) as cp:
        tx = await cp.call("StartTransaction", {"connectorId": 2, "idTag": "T", "meterStart": 0,
                                                "timestamp": T0})
        result = await ops.remote_stop_transaction(gateway.actions, "CP1", connector_id=2)
        assert await next_call(cp, "RemoteStopTransaction") == {"transactionId": tx["transactionId"]}
        assert result["transaction_id"] == tx["transactionId"] and result["status"] == "Accepted"
        with pytest.raises(OperationError, match="no active transaction on connector 1"):
            await ops.remote_stop_transaction(gateway.actions, "CP1", connector_id=1)
        assert (await ops.remote_stop_transaction(gateway.actions, "CP1", transaction_id=99))["status"] == "Accepted"
        with pytest.raises(ValueError):
            await ops.remote_stop_transaction(gateway.actions, "CP1")


async def test_change_availability_scheduled_is_kept_on_the_connector(gateway, runner):
    async with accepted_charger(gateway, runner, ChangeAvailability=status("Scheduled")) as cp:
        await cp.status(1, "Charging")
        result = await ops.change_availability(gateway.actions, "CP1", "Inoperative", 1)
        assert await next_call(cp, "ChangeAvailability") == {"connectorId": 1, "type": "Inoperative"}
    assert result["status"] == "Scheduled"
    connector = gateway.registry.get("CP1").connectors[1]
    assert (connector.availability, connector.availability_answer) == ("Inoperative", "Scheduled")


async def test_change_availability_of_the_whole_charger_updates_every_connector(gateway, runner):
    answers = iter(["Accepted", "Rejected"])
    async with accepted_charger(gateway, runner, ChangeAvailability=lambda p: {"status": next(answers)}) as cp:
        await cp.status(1, "Available")
        await cp.status(2, "Available")
        await ops.change_availability(gateway.actions, "CP1", "Inoperative")
        station = gateway.registry.get("CP1")
        assert {c.connector_id: c.availability for c in station.connectors.values()} == {
            0: "Inoperative", 1: "Inoperative", 2: "Inoperative"}
        await ops.change_availability(gateway.actions, "CP1", "Operative")
        assert station.connectors[0].availability == "Inoperative"  # Rejected: unchanged
        assert station.connectors[0].availability_answer == "Rejected"


async def test_get_configuration_asks_the_charger_and_keeps_the_answer(gateway, runner):
    table = ConfigTable(standard_config(MeterValueSampleInterval="60"))
    async with accepted_charger(gateway, runner, table=table):
        table.values["MeterValueSampleInterval"] = "30"
        result = await ops.get_configuration(gateway.actions, "CP1", ["MeterValueSampleInterval", "NoSuchKey"])
        assert result["unknown_keys"] == ["NoSuchKey"]
        station = gateway.registry.get("CP1")
        assert station.config_value("MeterValueSampleInterval") == "30"
        assert "NoSuchKey" in station.unknown_config_keys


async def test_get_configuration_without_keys_reads_a_limited_charger_completely(gateway, runner):
    values = standard_config(GetConfigurationMaxKeys="4")
    table = ConfigTable(values, max_keys=4, unkeyed="limit")
    async with accepted_charger(gateway, runner, table=table):
        table.values["HeartbeatInterval"] = "42"
        result = await ops.get_configuration(gateway.actions, "CP1")
    assert result["method"] == "batched" and result["keys"] == len(values)
    assert {k["key"]: k["value"] for k in result["answer"]["configurationKey"]}["HeartbeatInterval"] == "42"
    assert gateway.registry.get("CP1").config_value("HeartbeatInterval") == "42"


async def test_get_configuration_from_an_operator_reports_a_call_error(gateway, runner):
    async with accepted_charger(gateway, runner):
        with pytest.raises(ChargerCallError):
            await ops.get_configuration(gateway.actions, "CP1")


@pytest.mark.parametrize("answer, kept, pending", [("Accepted", "120", None),
                                                    ("RebootRequired", "300", "120"),
                                                    ("Rejected", "300", None)])
async def test_change_configuration_keeps_the_value_only_when_accepted(gateway, runner, answer, kept, pending):
    table = ConfigTable(standard_config(HeartbeatInterval="300"))
    async with accepted_charger(gateway, runner, table=table, ChangeConfiguration=status(answer)):
        result = await ops.change_configuration(gateway.actions, "CP1", "HeartbeatInterval", "120", source="bacnet")
    assert (result["status"], result["old_value"]) == (answer, "300")
    entry = gateway.registry.get("CP1").config["HeartbeatInterval"]
    assert (entry.value, entry.pending_value) == (kept, pending)
    [change] = await gateway.history.config_changes("CP1")
    assert {k: change[k] for k in ("key", "old_value", "new_value", "result", "source")} == {
        "key": "HeartbeatInterval", "old_value": "300", "new_value": "120", "result": answer,
        "source": "bacnet"}
    stored = {r["key"]: r for r in await gateway.history.load_config("CP1")}
    assert (stored["HeartbeatInterval"]["value"], stored["HeartbeatInterval"]["pending_value"]) == (kept, pending)


async def test_pending_value_is_cleared_by_the_read_after_reboot(gateway, runner):
    table = ConfigTable(standard_config(HeartbeatInterval="300"))
    async with accepted_charger(gateway, runner, table=table, ChangeConfiguration=status("RebootRequired")) as cp:
        await ops.change_configuration(gateway.actions, "CP1", "HeartbeatInterval", "120")
        table.values["HeartbeatInterval"] = "120"  # the reboot applies it
        await cp.boot()
        await read_finished(gateway, "CP1", reads=2)
    entry = gateway.registry.get("CP1").config["HeartbeatInterval"]
    assert (entry.value, entry.pending_value) == ("120", None)


async def test_data_transfer_and_trigger_message(gateway, runner):
    async with accepted_charger(gateway, runner, TriggerMessage=status("Accepted"),
                                DataTransfer=lambda p: {"status": "Accepted", "data": "pong"}) as cp:
        result = await ops.data_transfer(gateway.actions, "CP1", "com.example", "ping", "x")
        assert result["answer"] == {"status": "Accepted", "data": "pong"}
        assert await next_call(cp, "DataTransfer") == {"vendorId": "com.example", "messageId": "ping", "data": "x"}
        assert (await ops.trigger_message(gateway.actions, "CP1", "StatusNotification", 1))["status"] == "Accepted"
        assert await next_call(cp, "TriggerMessage") == {"requestedMessage": "StatusNotification", "connectorId": 1}
        with pytest.raises(ValueError, match="invalid TriggerMessage"):
            await ops.trigger_message(gateway.actions, "CP1", "Coffee")


# --- Firmware Management ---------------------------------------------------------------------
async def test_diagnostics_and_firmware_update(gateway, runner):
    async with accepted_charger(gateway, runner, GetDiagnostics=lambda p: {"fileName": "diag.zip"},
                                UpdateFirmware=lambda p: {}) as cp:
        result = await ops.get_diagnostics(gateway.actions, "CP1", "ftp://logs.example/", retries=2,
                                           start_time="2026-11-20T00:00")
        assert result["file_name"] == "diag.zip"
        assert await next_call(cp, "GetDiagnostics") == {"location": "ftp://logs.example/", "retries": 2,
                                                         "startTime": "2026-11-20T00:00:00.000Z"}
        result = await ops.update_firmware(gateway.actions, "CP1", "https://fw.example/v2.bin", "2026-11-21T02:00:00Z")
        assert result["status"] == "Sent" and result["answer"] == {}
        assert (await next_call(cp, "UpdateFirmware"))["retrieveDate"] == "2026-11-21T02:00:00.000Z"
        with pytest.raises(ValueError, match="not a date-time"):
            await ops.update_firmware(gateway.actions, "CP1", "https://fw.example/v2.bin", "tomorrow")


# --- Local Auth List Management --------------------------------------------------------------
async def test_send_local_list_is_chunked_and_reports_what_did_not_fit(gateway, runner):
    for i in range(7):
        await gateway.history.put_tag(f"TAG{i}", "whitelist", parent_id_tag="HOUSE" if i == 0 else "")
    await gateway.history.put_tag("BAD", "blacklist")
    await gateway.device_book.reload_tags()
    table = ConfigTable(standard_config(SendLocalListMaxLength="3", LocalAuthListMaxLength="6"))
    version = {"v": 4}

    def receive(payload):
        version["v"] = payload["listVersion"]
        return {"status": "Accepted"}
    async with accepted_charger(gateway, runner, table=table, SendLocalList=receive,
                                GetLocalListVersion=lambda p: {"listVersion": version["v"]}) as cp:
        result = await ops.send_local_list(gateway.actions, "CP1")
        sent = [await next_call(cp, "SendLocalList") for _ in range(2)]
        assert (await ops.get_local_list_version(gateway.actions, "CP1"))["list_version"] == 6
    assert [(s["listVersion"], s["updateType"], len(s["localAuthorizationList"])) for s in sent] == [
        (5, "Full", 3), (6, "Differential", 3)]
    assert sent[0]["localAuthorizationList"][0] == {"idTag": "TAG0", "idTagInfo": {
        "status": "Accepted", "parentIdTag": "HOUSE"}}
    assert all(e["idTag"] != "BAD" for s in sent for e in s["localAuthorizationList"])
    assert (result["sent"], result["not_sent"], result["list_version"]) == (6, ["TAG6"], 6)


async def test_send_local_list_stops_at_a_refused_chunk(gateway, runner):
    for i in range(4):
        await gateway.history.put_tag(f"TAG{i}", "whitelist")
    await gateway.device_book.reload_tags()
    table = ConfigTable(standard_config(SendLocalListMaxLength="2"))
    answers = iter(["Accepted", "Failed"])
    async with accepted_charger(gateway, runner, table=table, GetLocalListVersion=lambda p: {"listVersion": 0},
                                SendLocalList=lambda p: {"status": next(answers)}):
        result = await ops.send_local_list(gateway.actions, "CP1", differential=True)
    assert [c["update_type"] for c in result["chunks"]] == ["Differential", "Differential"]
    assert (result["status"], result["sent"], result["not_sent"]) == ("Failed", 2, ["TAG2", "TAG3"])


# --- Reservation and Smart Charging ----------------------------------------------------------
async def test_reserve_and_cancel_reservation(gateway, runner):
    async with accepted_charger(gateway, runner, ReserveNow=status("Occupied"),
                                CancelReservation=status("Accepted")) as cp:
        result = await ops.reserve_now(gateway.actions, "CP1", 1, "TAG1", "2026-11-21T12:00:00Z", 7)
        assert result["status"] == "Occupied"
        assert await next_call(cp, "ReserveNow") == {"connectorId": 1, "expiryDate": "2026-11-21T12:00:00.000Z",
                                                     "idTag": "TAG1", "reservationId": 7}
        assert (await ops.cancel_reservation(gateway.actions, "CP1", 7))["status"] == "Accepted"


async def test_composite_schedule_and_plain_profile_calls(gateway, runner):
    schedule = {"status": "Accepted", "connectorId": 1, "scheduleStart": T0, "chargingSchedule": {
        "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}]}}
    profile = {"chargingProfileId": 9, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
               "chargingProfileKind": "Absolute", "chargingSchedule": {
                   "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400}]}}
    async with accepted_charger(gateway, runner, GetCompositeSchedule=lambda p: schedule,
                                SetChargingProfile=status("Accepted"),
                                ClearChargingProfile=status("Unknown")) as cp:
        result = await ops.get_composite_schedule(gateway.actions, "CP1", 1, 3600, "A")
        assert result["answer"] == schedule
        assert await next_call(cp, "GetCompositeSchedule") == {"connectorId": 1, "duration": 3600,
                                                               "chargingRateUnit": "A"}
        assert (await ops.set_charging_profile(gateway.actions, "CP1", 0, profile))["status"] == "Accepted"
        assert (await next_call(cp, "SetChargingProfile"))["csChargingProfiles"] == profile
        result = await ops.clear_charging_profile(gateway.actions, "CP1", id=9)
        assert result["status"] == "Unknown" and await next_call(cp, "ClearChargingProfile") == {"id": 9}


# --- refusals and failures -------------------------------------------------------------------
async def test_call_to_an_offline_charger_is_refused_at_once(gateway, runner):
    async with accepted_charger(gateway, runner):
        pass
    with pytest.raises(ChargerUnavailable, match="CP1 is offline"):
        await ops.reset(gateway.actions, "CP1")
    with pytest.raises(ChargerUnavailable, match="unknown"):
        await ops.reset(gateway.actions, "NEVER")


async def test_action_outside_the_supported_feature_profiles_is_refused_without_a_call(gateway, runner):
    table = ConfigTable(standard_config(SupportedFeatureProfiles="Core,SmartCharging"))
    async with accepted_charger(gateway, runner, table=table) as cp:
        with pytest.raises(ChargerUnavailable, match="Reservation is not in its SupportedFeatureProfiles"):
            await ops.reserve_now(gateway.actions, "CP1", 1, "TAG1", "2026-11-21T12:00:00Z", 7)
        with pytest.raises(ChargerUnavailable, match="RemoteTrigger"):
            await ops.trigger_message(gateway.actions, "CP1", "Heartbeat")
        assert all(action == "GetConfiguration" for action, _ in
                   [cp.received.get_nowait() for _ in range(cp.received.qsize())])


async def test_misspelt_local_list_profile_still_counts(gateway, runner):
    """The AC wallbox manual (seeds/001) lists "LocalAuthicationListManagement"."""
    table = ConfigTable(standard_config(SupportedFeatureProfiles="Core, LocalAuthicationListManagement"))
    async with accepted_charger(gateway, runner, table=table, GetLocalListVersion=lambda p: {"listVersion": 3}):
        assert (await ops.get_local_list_version(gateway.actions, "CP1"))["list_version"] == 3


async def test_charger_that_never_answers_times_out_and_the_session_lives_on(runner):
    gw = await runner.start(ocpp={"response_timeout_s": 0.3})
    async with accepted_charger(gw, runner, Reset=lambda p: None, ClearCache=status("Accepted")) as cp:
        with pytest.raises(ChargerTimeout, match="did not answer Reset within 0.3 s"):
            await ops.reset(gw.actions, "CP1")
        assert (await ops.clear_cache(gw.actions, "CP1"))["status"] == "Accepted"
        assert "currentTime" in await cp.call("Heartbeat", {})
    assert "ResetTimeout" in {r["message_type"] for r in await gw.history.general_log("CP1")}


async def test_call_error_from_the_charger_is_reported_as_such(gateway, runner):
    async with accepted_charger(gateway, runner):  # answers NotImplemented to everything
        with pytest.raises(ChargerCallError) as err:
            await ops.unlock_connector(gateway.actions, "CP1", 1)
    assert err.value.code == "NotImplemented"
    assert "CALLERROR NotImplemented" in str(err.value)


async def test_operations_run_while_the_charger_keeps_sending(gateway, runner):
    """An operator call waiting for its answer does not hold up the charger's own messages."""
    async with accepted_charger(gateway, runner, Reset=lambda p: None) as cp:
        pending = asyncio.create_task(ops.reset(gateway.actions, "CP1"))
        await next_call(cp, "Reset")
        assert "currentTime" in await cp.call("Heartbeat", {})
        await cp.status(1, "Available")
        assert not pending.done()
        pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending


async def test_pending_charger_takes_configuration_calls_only_and_rejected_none(gateway, runner):
    """OCPP 1.6 4.2: a Pending charger may be read and configured, not used."""
    async with TestCharger(runner.url, "GUEST") as cp:
        cp.answers["ChangeConfiguration"] = status("Accepted")
        assert (await cp.boot())["status"] == "Pending"
        result = await ops.change_configuration(gateway.actions, "GUEST", "HeartbeatInterval", "60")
        assert result["status"] == "Accepted"
        with pytest.raises(ChargerUnavailable, match="not accepted .registration Pending.: RemoteStart"):
            await ops.remote_start_transaction(gateway.actions, "GUEST", "TAG1")
    await gateway.device_book.add_device("CP9", registration="Rejected")
    async with TestCharger(runner.url, "CP9") as cp:
        await cp.boot()
        with pytest.raises(ChargerUnavailable, match="not accepted"):
            await ops.clear_cache(gateway.actions, "CP9")


async def test_added_charger_that_reconnects_without_a_boot_takes_calls(gateway, runner):
    """After a gateway restart chargers often reconnect without a new BootNotification."""
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        cp.answers["ClearCache"] = status("Accepted")
        assert "currentTime" in await cp.call("Heartbeat", {})
        assert (await ops.clear_cache(gateway.actions, "CP1"))["status"] == "Accepted"
