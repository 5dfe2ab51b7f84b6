"""Guests cannot charge: a charger that is not Accepted sends only its boot and what was triggered.

OCPP 1.6 section 4.2: while Pending "the Charge Point SHALL NOT send request messages to the
Central System unless it has been instructed by the Central System to do so with a
TriggerMessage.req"; the central system may read and change its configuration meanwhile.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.model.registration import TriggeredMessages, central_may_send, charger_may_send
from tests.conftest import wait_until
from tests.support.charger import CallErrorReply, TestCharger, next_call

START = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": "2026-11-20T08:00:00Z"}


# --- the rule on plain values ---------------------------------------------------------------
@pytest.mark.parametrize("registration, action, triggered, allowed", [
    ("Accepted", "StartTransaction", False, True),
    ("Pending", "BootNotification", False, True),
    ("Pending", "StartTransaction", False, False),
    ("Pending", "Heartbeat", False, False),
    ("Pending", "StatusNotification", True, True),
    ("Rejected", "BootNotification", False, True),
    ("Rejected", "MeterValues", False, False),
])
def test_what_a_charger_may_send_for_its_registration(registration, action, triggered, allowed):
    assert charger_may_send(registration, action, triggered) is allowed


@pytest.mark.parametrize("registration, action, allowed", [
    ("Accepted", "RemoteStartTransaction", True), ("Pending", "GetConfiguration", True),
    ("Pending", "TriggerMessage", True), ("Pending", "RemoteStartTransaction", False),
    ("Pending", "UnlockConnector", False), ("Pending", "SetChargingProfile", False),
    ("Rejected", "GetConfiguration", False),
])
def test_what_the_central_system_may_send_for_a_registration(registration, action, allowed):
    assert central_may_send(registration, action) is allowed


def test_a_triggered_message_is_let_in_for_a_while_only():
    triggered = TriggeredMessages(window_s=60)
    assert not triggered.is_expected("Heartbeat", 0)
    triggered.expect("Heartbeat", 100)
    assert triggered.is_expected("Heartbeat", 130) and triggered.is_expected("Heartbeat", 160)
    assert not triggered.is_expected("Heartbeat", 161)


# --- over the real server --------------------------------------------------------------------
async def test_a_pending_guest_gets_no_transaction_and_nothing_is_stored(gateway, runner):
    async with TestCharger(runner.url, "GUEST") as cp:
        assert (await cp.boot())["status"] == "Pending"
        with pytest.raises(CallErrorReply) as err:
            await cp.call("StartTransaction", START)
        assert err.value.code == "SecurityError"
        with pytest.raises(CallErrorReply):
            await cp.call("MeterValues", {"connectorId": 1, "transactionId": 1, "meterValue": [
                {"timestamp": "2026-11-20T08:01:00Z", "sampledValue": [{"value": "100"}]}]})
        with pytest.raises(CallErrorReply):
            await cp.call("StopTransaction", {"transactionId": 1, "meterStop": 100,
                                              "timestamp": "2026-11-20T09:00:00Z"})
    assert await gateway.history.transactions() == []
    assert gateway.registry.get("GUEST").connectors.get(1) is None
    await gateway.history.flush_log()
    errors = await gateway.history.general_log("GUEST", message_type="StartTransactionError")
    assert errors and "SecurityError" in errors[0]["message"]


async def test_a_rejected_charger_sends_only_its_boot(runner):
    gw = await runner.start(registration={"guest_response": "Rejected"})
    async with TestCharger(runner.url, "CP1") as cp:
        assert (await cp.boot())["status"] == "Rejected"
        for action, payload in (("Heartbeat", {}), ("StartTransaction", START),
                                ("StatusNotification", {"connectorId": 1, "status": "Available",
                                                        "errorCode": "NoError"})):
            with pytest.raises(CallErrorReply) as err:
                await cp.call(action, payload)
            assert err.value.code == "SecurityError", action
    assert await gw.history.transactions() == []


async def test_a_pending_charger_may_send_what_the_central_system_triggered(gateway, runner):
    """Section 4.2 and 5.17: a TriggerMessage while Pending makes the charger's answer legitimate."""
    from gateway.operator.actions import trigger_message
    async with TestCharger(runner.url, "CP1") as cp:
        cp.answers["TriggerMessage"] = lambda p: {"status": "Accepted"}
        assert (await cp.boot())["status"] == "Pending"
        with pytest.raises(CallErrorReply):
            await cp.call("StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError"})
        out = await trigger_message(gateway, "CP1", "StatusNotification", 1)
        assert out["status"] == "Accepted"
        assert await cp.call("StatusNotification", {"connectorId": 1, "status": "Available",
                                                    "errorCode": "NoError"}) == {}
    assert gateway.registry.get("CP1").connectors[1].status == "Available"


async def test_a_pending_charger_cannot_be_remote_started(gateway, runner):
    from gateway.errors import ChargerUnavailable
    from gateway.operator.actions import remote_start_transaction
    async with TestCharger(runner.url, "CP1") as cp:
        assert (await cp.boot())["status"] == "Pending"
        with pytest.raises(ChargerUnavailable, match="Pending"):
            await remote_start_transaction(gateway, "CP1", "TAG", 1)
    assert cp.received.empty()


async def test_a_charger_added_by_the_operator_charges_after_the_boot_it_is_asked_for(gateway, runner):
    """The status holds until the next boot (4.2); adding a charger asks it to boot now."""
    async with TestCharger(runner.url, "CP1") as cp:
        cp.answers["TriggerMessage"] = lambda p: {"status": "Accepted"}
        assert (await cp.boot())["status"] == "Pending"
        await gateway.device_book.add_device("CP1")
        assert await asyncio.wait_for(cp.received.get(), 5) == (
            "TriggerMessage", {"requestedMessage": "BootNotification"})
        assert (await cp.boot())["status"] == "Accepted"
        assert "transactionId" in await cp.call("StartTransaction", START)
    await wait_until(lambda: gateway.registry.get("CP1").connectors[1].transaction_id is not None)


async def test_a_transaction_running_when_the_charger_is_removed_still_closes(gateway, runner):
    """The charger was Accepted at its boot: its StopTransaction is stored (billing), and the
    gateway asks it to boot again, which makes it a Pending guest."""
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        cp.answers["TriggerMessage"] = lambda p: {"status": "Accepted"}
        await cp.boot()
        tx = await cp.call("StartTransaction", START)
        await gateway.device_book.remove_device("CP1")
        trigger = await asyncio.wait_for(next_call(cp, "TriggerMessage"), 5)
        assert trigger == {"requestedMessage": "BootNotification"}
        await cp.call("StopTransaction", {"transactionId": tx["transactionId"], "meterStop": 900,
                                          "timestamp": "2026-11-20T09:00:00Z"})
        assert (await cp.boot())["status"] == "Pending"
        with pytest.raises(CallErrorReply):
            await cp.call("StartTransaction", START)
    [row] = await gateway.history.transactions("CP1")
    assert row["status"] == "stopped" and row["stop_meter_wh"] == 900


# --- the discovery list ----------------------------------------------------------------------
async def test_the_discovery_list_keeps_only_the_newest_guests(runner):
    gw = await runner.start(registration={"max_guests": 3})
    await gw.device_book.add_device("ADDED")
    for i in range(6):
        async with TestCharger(runner.url, f"G{i}") as cp:
            await cp.boot()
        await wait_until(lambda i=i: not gw.registry.get(f"G{i}").connected)
    guests = sorted(s.charger_id for s in gw.registry.stations.values() if s.is_guest)
    assert len(guests) <= 3 and "G5" in guests and "G0" not in guests
    assert gw.registry.get("ADDED") is not None  # added chargers are never dropped


async def test_an_operator_removes_a_guest_from_the_api_and_the_cli(gateway, runner, capsys):
    from gateway.main import main
    async with TestCharger(runner.url, "SPAM1") as cp:
        await cp.boot()
        code = await asyncio.to_thread(main, [*runner.cli_args, "devices", "forget", "SPAM1"])
        assert code == 0 and "SPAM1" in capsys.readouterr().out
        await wait_until(lambda: cp.ws.close_code is not None)
    assert gateway.registry.get("SPAM1") is None
    await gateway.device_book.add_device("CP1")
    code = await asyncio.to_thread(main, [*runner.cli_args, "devices", "forget", "CP1"])
    assert code == 1 and "device database" in capsys.readouterr().err
    code = await asyncio.to_thread(main, [*runner.cli_args, "devices", "forget", "NOPE"])
    assert code == 1
