"""Hostile and malformed input over the real server: a CALLERROR, never a closed session (issue 12).

The frames themselves are checked without a socket in tests/unit/test_frames.py; here the point is
that the session stays up, the charger's other data is kept, and the general log says what came
and what was answered, within bounds.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.main import Gateway
from tests.compat.harness import WHITELISTED, start_bench
from tests.conftest import GatewayRunner
from tests.support.charger import CallErrorReply, TestCharger

T0 = "2026-11-20T08:00:00Z"
# Guests accepted: a hostile peer then gets past registration (OCPP 1.6 4.2 would refuse a Pending
# one with SecurityError first), so every check after it is reached. The worst case, on purpose.
GUESTS_ACCEPTED = {"guest_response": "Accepted"}
EVLINK = {"chargePointVendor": "Schneider Electric", "chargePointModel": "EVlink Parking"}


@pytest.fixture
async def gateway(runner: GatewayRunner) -> Gateway:
    return await runner.start(registration=GUESTS_ACCEPTED)


async def start(cp: TestCharger) -> int:
    await cp.boot()
    answer = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": T0})
    return answer["transactionId"]


async def test_stop_transaction_with_transaction_data_as_an_object_is_refused_not_disconnected(gateway, runner):
    """A charger whose queued StopTransaction is malformed must get an answer, or it re-sends forever."""
    async with TestCharger(runner.url, "CP1") as cp:
        tx_id = await start(cp)
        stop = {"transactionId": tx_id, "meterStop": 50, "timestamp": T0,
                "transactionData": {"timestamp": T0, "sampledValue": [{"value": "50"}]}}
        for _ in range(3):  # the charger retries; each try is answered, the session stays
            with pytest.raises(CallErrorReply) as err:
                await cp.call("StopTransaction", stop)
            assert err.value.code == "TypeConstraintViolation"
        assert "currentTime" in await cp.call("Heartbeat", {})
        assert cp.ws.close_code is None
    rows = await gateway.history.general_log("CP1", message_type="StopTransactionError")
    assert len(rows) == 3 and all(r["level"] == "warning" for r in rows)
    assert rows[0]["message"].startswith("TypeConstraintViolation: data.transactionData must be array")
    assert '"transactionData": {' in rows[0]["message"]  # the frame that earned it


@pytest.mark.parametrize("meter_value", [
    {"timestamp": T0, "sampledValue": [{"value": "1"}]},        # meterValue as an object
    [{"timestamp": T0, "sampledValue": {"value": "1"}}],        # sampledValue as an object
])
async def test_meter_values_with_an_object_for_an_array_get_a_callerror(gateway, runner, meter_value):
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        with pytest.raises(CallErrorReply) as err:
            await cp.call("MeterValues", {"connectorId": 1, "meterValue": meter_value})
        assert err.value.code == "TypeConstraintViolation"
        assert "currentTime" in await cp.call("Heartbeat", {})


async def test_deep_nesting_is_answered_and_the_session_stays(gateway, runner):
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        deep = '[2,"deep-1","DataTransfer",{"vendorId":"x","data":' + "[" * 1000 + "]" * 1000 + "}]"
        reply = await cp.send_raw(deep, "deep-1")
        assert reply[:3] == [4, "deep-1", "FormationViolation"]
        await cp.send_raw("[" * 1000 + "]" * 1000)
        assert "currentTime" in await cp.call("Heartbeat", {})


async def test_an_integer_beyond_64_bits_never_reaches_the_store(gateway, runner):
    """Valid for the JSON schema, fatal for a SQLite batch: refused at validation."""
    async with TestCharger(runner.url, "GUEST") as guest, TestCharger(runner.url, "CP1") as cp:
        tx_id = await start(cp)
        await guest.boot()
        frame = (f'[2,"big","MeterValues",{{"connectorId":{2**64},"meterValue":[{{"timestamp":"{T0}",'
                 '"sampledValue":[{"value":"1"}]}]}]')
        reply = await guest.send_raw(frame, "big")
        assert reply[:3] == [4, "big", "TypeConstraintViolation"]
        await cp.call("MeterValues", {"connectorId": 1, "transactionId": tx_id, "meterValue": [
            {"timestamp": T0, "sampledValue": [{"value": "40"}]}]})
        await cp.call("StopTransaction", {"transactionId": tx_id, "meterStop": 50, "timestamp": T0})
    [tx] = await gateway.history.transactions("CP1")
    assert tx["status"] == "stopped"


async def test_binary_frames_and_unknown_answers_are_handled_without_closing(gateway, runner):
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        reply = await cp.send_raw(b'[2,"b1","Heartbeat",{}]', "b1")
        assert reply[:3] == [4, "b1", "FormationViolation"]
        await cp.send_raw(json.dumps([3, "never-asked", {}]))
        await cp.send_raw(json.dumps([4, "never-asked-2", "GenericError", "", {}]))
        reply = await cp.send_raw('[5,"t1","Heartbeat",{}]', "t1")
        assert reply[:3] == [4, "t1", "FormationViolation"]
        assert "currentTime" in await cp.call("Heartbeat", {})
    rows = await gateway.history.general_log("CP1")
    assert any("never-asked" in r["message"] for r in rows)


async def test_invalid_utf8_is_the_one_protocol_level_close(gateway, runner):
    """RFC 6455 8.1: a text frame that is not UTF-8 fails the connection (close code 1007)."""
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        await cp.ws.send(b'[2,"u1","Heartbeat",{"x":"\xff"}]', text=True)
        await asyncio.wait_for(cp.ws.wait_closed(), 10)
        assert cp.ws.close_code == 1007
    async with TestCharger(runner.url, "CP1") as again:  # nothing held against it
        assert (await again.boot())["status"] in ("Accepted", "Pending")


async def test_a_repeated_message_id_is_answered_again_without_a_second_effect(gateway, runner):
    """OCPP-J 4.1.3: ids are unique per connection; a re-sent frame gets the first answer again."""
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        start = json.dumps([2, "s1", "StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                          "timestamp": T0}])
        first = await cp.send_raw(start, "s1")
        again = await cp.send_raw(start, "s1")
        assert first == again and first[0] == 3
        other = await cp.send_raw(json.dumps([2, "s1", "Heartbeat", {}]), "s1")
        assert other[0] == 3 and "currentTime" in other[2]  # reused for a new message: handled, noted
    rows = await gateway.history.general_log("CP1")
    assert any("message id s1" in r["message"] and r["level"] == "warning" for r in rows)


async def test_long_strings_are_cut_in_the_general_log_with_their_size(gateway, runner):
    async with TestCharger(runner.url, "GUEST") as cp:
        await cp.boot()
        await cp.call("DataTransfer", {"vendorId": "x", "data": "A" * 250_000})
    rows = await gateway.history.general_log("GUEST")
    [line] = [r for r in rows if r["message_type"] == "DataTransferRequest"]
    assert len(line["message"]) <= gateway.settings.ocpp.log_line_max_chars + 40
    assert line["message"].endswith("A…(250019 bytes)")  # "vendorId: x; data: " and the data


async def test_a_chatty_peer_is_held_to_its_log_budget_but_its_transactions_are_kept(runner: GatewayRunner):
    gw: Gateway = await runner.start(ocpp={"log_budget_bytes_per_minute": 2000}, registration=GUESTS_ACCEPTED)
    async with TestCharger(runner.url, "CP1") as cp, TestCharger(runner.url, "CP2") as quiet:
        tx_id = await start(cp)
        for _ in range(30):
            await cp.call("DataTransfer", {"vendorId": "x", "data": "B" * 500})
            with pytest.raises(CallErrorReply):  # a malformed Stop is no transaction data
                await cp.call("StopTransaction", {"transactionId": "x", "meterStop": 9, "timestamp": T0})
        await cp.call("StopTransaction", {"transactionId": tx_id, "meterStop": 9, "timestamp": T0})
        await quiet.boot()
    rows = await gw.history.general_log("CP1")
    assert sum(len(r["message"]) for r in rows if r["message_type"].startswith(("DataTransfer", "StopTransactionErr"))) <= 2000
    assert any("over the general-log budget" in r["message"] for r in rows)
    assert any(r["message_type"] == "StopTransactionRequest" for r in rows)  # transaction lines kept
    [tx] = await gw.history.transactions("CP1")
    assert tx["status"] == "stopped"
    assert any(r["message_type"] == "BootNotificationRequest" for r in await gw.history.general_log("CP2"))


async def test_schema_relaxation_is_per_action_from_the_chargers_quirk(gateway, runner):
    """EVlink 6.3.3.2 note 1: its boot serials may be long; nothing else of it, nobody else."""
    async with TestCharger(runner.url, "EVL") as evlink, TestCharger(runner.url, "GEN") as generic:
        assert (await evlink.boot(**EVLINK, chargePointSerialNumber="S" * 31))["status"]
        with pytest.raises(CallErrorReply) as err:
            await generic.boot(chargePointSerialNumber="S" * 31)
        assert err.value.code == "PropertyConstraintViolation"
        with pytest.raises(CallErrorReply) as err:
            await evlink.status(1, "Faulted", "OtherError", info="i" * 60)
        assert err.value.code == "PropertyConstraintViolation"
    rows = await gateway.history.general_log("EVL")
    assert any(r["level"] == "warning" and "accepted despite schema violation" in r["message"] for r in rows)


async def test_turning_schema_validation_off_relaxes_limits_but_never_types(runner: GatewayRunner):
    gw = await runner.start(ocpp={"validate_schemas": False}, registration=GUESTS_ACCEPTED)
    async with TestCharger(runner.url, "CP1") as cp:
        assert (await cp.boot(chargePointSerialNumber="S" * 40))["status"] == "Accepted"
        with pytest.raises(CallErrorReply) as err:
            await cp.call("MeterValues", {"connectorId": 1, "meterValue": {"timestamp": T0}})
        assert err.value.code == "TypeConstraintViolation"
    assert gw.registry.get("CP1").boot.charge_point_serial == "S" * 40


async def test_a_charger_whose_queued_stop_is_malformed_is_answered_and_moves_on(runner: GatewayRunner):
    """Issue 12: such a charger was disconnected on every re-send and reconnected forever. Now each
    try gets a CALLERROR, and after TransactionMessageAttempts tries the charger skips it."""
    bench = await start_bench(runner, "generic")
    sim = bench.simulator()
    sim.malformed_transaction_data = True
    sim.config.set_internal("TransactionMessageRetryInterval", "0")
    try:
        await sim.start()
        await bench.configuration_read()
        await sim.start_session(1, WHITELISTED)
        await sim.stop_session(1, "Local")
        refused = await bench.log_lines("StopTransactionError")
        assert [r["message"].split(":")[0] for r in refused] == ["TypeConstraintViolation"] * 3
        assert any("StopTransaction refused 3 time(s), skipped" in e for e in sim.events)
        assert sim.online() and sim.boot_count == 1  # one connection throughout
        sim.malformed_transaction_data = False
        tx = await sim.start_session(1, WHITELISTED)
        await sim.stop_session(1, "Local")
        stopped = {r["transaction_id"]: r["status"] for r in await bench.transactions()}
        assert stopped[tx.transaction_id] == "stopped"
    finally:
        await sim.stop()


async def test_a_peer_cannot_invent_thousands_of_connectors(gateway, runner):
    async with TestCharger(runner.url, "GUEST") as cp:
        await cp.boot()
        await cp.status(1, "Available")
        for connector in (5000, -3):
            with pytest.raises(CallErrorReply) as err:
                await cp.status(connector, "Available")
            assert err.value.code == "PropertyConstraintViolation"
    assert set(gateway.registry.get("GUEST").connectors) == {1}


async def test_an_invented_action_or_message_id_of_any_length_is_answered_within_bounds(gateway, runner):
    async with TestCharger(runner.url, "GUEST") as cp:
        reply = await cp.send_raw(json.dumps([2, "i" * 100_000, "X" * 100_000, {}]), "i" * 100_000)
        assert reply[2] == "NotImplemented" and len(reply[3]) <= 255
        assert "currentTime" in await cp.call("Heartbeat", {})
    rows = await gateway.history.general_log("GUEST")
    assert max(len(r["message_type"]) for r in rows) <= 65
    assert max(len(r["message"]) for r in rows) <= gateway.settings.ocpp.log_line_max_chars + 40


async def test_half_a_surrogate_pair_never_reaches_the_general_log(gateway, runner):
    """A lone "\\ud800" decodes to text SQLite refuses: with it, a batch of log lines was lost."""
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        reply = await cp.send_raw('[2,"s1","Authorize",{"idTag":"\\ud800"}]', "s1")
        assert reply[:3] == [4, "s1", "FormationViolation"]
        assert (await cp.call("Authorize", {"idTag": "OK-TAG"}))["idTagInfo"]["status"] == "Accepted"
    rows = await gateway.history.general_log("CP1")
    assert any(r["message_type"] == "AuthorizeRequest" and "OK-TAG" in r["message"] for r in rows)
    assert any(r["message_type"] == "FormationViolation" and "surrogate" in r["message"] for r in rows)
