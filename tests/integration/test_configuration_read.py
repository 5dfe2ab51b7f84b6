"""Reading a charger's configuration after boot (OCPP 1.6 5.8 GetConfiguration, 9.1 keys).

Covers the limits chargers put on GetConfiguration (shared notes section 8, pain point 2) and
the order of follow-up calls after BootNotification (pain point 3).
"""

from __future__ import annotations

import pytest

from gateway.chargers.standard_keys import STANDARD_KEYS
from gateway.main import Gateway
from tests.conftest import GatewayRunner
from tests.support.charger import (
    CallErrorReply,
    ConfigTable,
    TestCharger,
    accepted_charger,
    read_finished,
    standard_config,
)


async def _log_types(gw: Gateway, charger_id: str) -> list[str]:
    return [r["message_type"] for r in await gw.history.general_log(charger_id)]


async def test_configuration_is_read_only_after_the_boot_answer_and_kept(gateway: Gateway, runner: GatewayRunner):
    table = ConfigTable(standard_config(VendorLedColour="blue"))
    async with accepted_charger(gateway, runner, table=table):
        station = gateway.registry.get("CP1")
        assert station.config_value("VendorLedColour") == "blue"
        assert station.config["NumberOfConnectors"].readonly
        types = await _log_types(gateway, "CP1")
        assert types.index("BootNotificationConfirmation") < types.index("GetConfigurationRequest")
        # limit first (one key), then the full read, which was complete: nothing more
        assert table.requests == [["GetConfigurationMaxKeys"], None]
        log = [(r["message_type"], r["message"]) for r in await gateway.history.general_log("CP1")]
        assert ("GetConfigurationRequest", "Keys: GetConfigurationMaxKeys") in log
        assert ("GetConfigurationConfirmation", "1 key(s): GetConfigurationMaxKeys=50") in log
        assert ("GetConfigurationRequest", "all keys") in log
        stored = {r["key"]: r["value"] for r in await gateway.history.load_config("CP1")}
        assert stored["VendorLedColour"] == "blue" and len(stored) == len(table.values)


async def test_charger_with_max_keys_4_is_read_completely_in_batches(gateway, runner):
    values = standard_config(GetConfigurationMaxKeys="4", LocalAuthListMaxLength="20",
                             ChargeProfileMaxStackLevel="1")
    table = ConfigTable(values, max_keys=4, unkeyed="limit")
    async with accepted_charger(gateway, runner, table=table):
        station = gateway.registry.get("CP1")
        assert {k: e.value for k, e in station.config.items()} == values
        assert all(len(r) <= 4 for r in table.requests if r)
        assert set(station.unknown_config_keys) == set(STANDARD_KEYS) - set(values)
        [line] = await read_finished(gateway, "CP1")
        assert "batched read" in line["message"] and "GetConfigurationMaxKeys 4" in line["message"]


async def test_charger_that_never_answers_an_unkeyed_read_is_read_by_key(runner):
    """evcc#15869: an Entratek charger answers at most 4 keys and never an unkeyed request."""
    gw = await runner.start(ocpp={"response_timeout_s": 0.3})
    values = standard_config(GetConfigurationMaxKeys="4")
    table = ConfigTable(values, max_keys=4, unkeyed="never")
    async with accepted_charger(gw, runner, table=table):
        assert {k: e.value for k, e in gw.registry.get("CP1").config.items()} == values


async def test_failing_batches_fall_back_to_one_key_at_a_time(gateway, runner):
    """No GetConfigurationMaxKeys key: batches of 10 are refused, so each key is asked alone."""
    values = standard_config()
    del values["GetConfigurationMaxKeys"]
    table = ConfigTable(values, max_keys=5, unkeyed="limit")
    async with accepted_charger(gateway, runner, table=table):
        station = gateway.registry.get("CP1")
        assert {k: e.value for k, e in station.config.items()} == values
        assert "GetConfigurationMaxKeys" in station.unknown_config_keys
        assert any(r and len(r) == 10 for r in table.requests)  # tried, refused, then singly


async def test_batches_answered_with_only_the_first_key_are_completed_singly(gateway, runner):
    """lbbrhzn#1442: a charger that answers only the first key of a request."""
    values = standard_config(GetConfigurationMaxKeys="10")
    table = ConfigTable(values, max_keys=10, unkeyed="limit", batch="first")
    async with accepted_charger(gateway, runner, table=table):
        station = gateway.registry.get("CP1")
        assert {k: e.value for k, e in station.config.items()} == values


async def test_a_charger_that_leaves_unknown_keys_out_is_not_asked_key_by_key(gateway, runner):
    """Few keys and no unknownKey list: one probe, not a call per standard key (reconnect storms)."""
    values = {"HeartbeatInterval": "300", "GetConfigurationMaxKeys": "10"}
    table = ConfigTable(values, max_keys=10, list_unknown=False)
    async with accepted_charger(gateway, runner, table=table):
        station = gateway.registry.get("CP1")
        assert {k: e.value for k, e in station.config.items()} == values
        # the limit, the full read, 5 batches of the standard keys, and one probe: not ~50 calls
        assert len(table.requests) == 8
        assert table.requests[-1] == ["AuthorizeRemoteTxRequests"]


async def test_configuration_is_read_again_after_a_reboot_into_new_firmware(gateway, runner):
    table = ConfigTable(standard_config(HeartbeatInterval="300"))
    async with accepted_charger(gateway, runner, table=table) as cp:
        table.values["HeartbeatInterval"] = "60"
        await cp.boot(firmwareVersion="1.1")
        await read_finished(gateway, "CP1", reads=2)
        assert gateway.registry.get("CP1").config_value("HeartbeatInterval") == "60"
        assert table.requests.count(["GetConfigurationMaxKeys"]) == 2


async def test_stored_configuration_is_back_in_the_model_after_a_restart(runner):
    gw = await runner.start()
    async with accepted_charger(gw, runner, table=ConfigTable(standard_config(VendorMode="eco"))):
        pass
    await runner.stop()
    gw = await runner.start()
    station = gw.registry.get("CP1")
    assert not station.online and station.config_value("VendorMode") == "eco"
    assert station.config["SupportedFeatureProfiles"].readonly


async def test_a_pending_charger_is_not_read(gateway, runner):
    table = ConfigTable(standard_config())
    async with TestCharger(runner.url, "GUEST") as cp:
        cp.answers["GetConfiguration"] = table.answer
        assert (await cp.boot())["status"] == "Pending"
        with pytest.raises(CallErrorReply):  # a round trip; a guest's Heartbeat is a SecurityError
            await cp.call("Heartbeat", {})
    assert table.requests == []


async def test_charger_without_get_configuration_is_asked_once(gateway, runner):
    async with accepted_charger(gateway, runner) as cp:  # answers NotImplemented
        [line] = await read_finished(gateway, "CP1")
        assert line["message"] == "not read: GetConfiguration answered NotImplemented"
        action, _ = cp.received.get_nowait()
        assert action == "GetConfiguration" and cp.received.empty()


async def test_keys_a_charger_no_longer_has_leave_the_model_and_stay_gone_after_restart(runner):
    gw = await runner.start()
    table = ConfigTable(standard_config(OldVendorKey="1"))
    async with accepted_charger(gw, runner, table=table) as cp:
        del table.values["OldVendorKey"]  # a firmware update dropped it
        await cp.boot(firmwareVersion="2.0")
        await read_finished(gw, "CP1", reads=2)
        assert "OldVendorKey" not in gw.registry.get("CP1").config
    await runner.stop()
    gw = await runner.start()
    station = gw.registry.get("CP1")
    assert "OldVendorKey" not in station.config and station.config_value("HeartbeatInterval") == "300"


async def test_unknown_keys_survive_a_restart(runner):
    gw = await runner.start()
    table = ConfigTable(standard_config(GetConfigurationMaxKeys="4"), max_keys=4, unkeyed="limit")
    async with accepted_charger(gw, runner, table=table):
        unknown = gw.registry.get("CP1").unknown_config_keys
    assert "ReserveConnectorZeroSupported" in unknown
    await runner.stop()
    gw = await runner.start()
    assert gw.registry.get("CP1").unknown_config_keys == unknown


async def test_a_reboot_during_the_read_restarts_it(runner):
    """The first read waits on an unanswered request; the new boot cancels it and reads afresh."""
    gw = await runner.start(ocpp={"response_timeout_s": 5})
    table = ConfigTable(standard_config())
    answered = {"first": False}

    def answer(payload):
        if not answered["first"]:
            answered["first"] = True
            return None  # lost: the charger rebooted before answering
        return table.answer(payload)
    await gw.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        cp.answers["GetConfiguration"] = answer
        await cp.boot()
        assert (await cp.received.get())[0] == "GetConfiguration"
        await cp.boot()
        [line] = await read_finished(gw, "CP1")
    assert line["level"] == "info" and line["message"].endswith("full read; GetConfigurationMaxKeys 50")
    assert gw.registry.get("CP1").config_value("NumberOfConnectors") == "2"


def test_standard_keys_are_matched_whatever_the_chargers_spelling():
    """OCPP key names are case-insensitive; EVlink reports HeartBeatInterval (issue 14 item 10)."""
    from gateway.chargers.standard_keys import standard_key
    assert standard_key("HeartBeatInterval") == "HeartbeatInterval"
    assert standard_key("meterValueSampleInterval") == "MeterValueSampleInterval"
    assert standard_key("EVlinkVendorKey") is None


# --- no re-read for a reboot that changed nothing (issue 17 item 2) ----------------------------

async def test_a_reboot_with_the_same_identity_reads_nothing_a_new_firmware_reads_again(gateway, runner):
    table = ConfigTable(standard_config(VendorLedColour="blue"))
    async with accepted_charger(gateway, runner, table=table) as cp:
        assert table.requests == [["GetConfigurationMaxKeys"], None]
        table.requests.clear()
        await cp.boot()  # a reboot: same vendor, model, serial and firmware
        [_, kept] = await read_finished(gateway, "CP1", reads=2)
        assert table.requests == []
        assert "not read again" in kept["message"]
        assert gateway.registry.get("CP1").config_value("VendorLedColour") == "blue"
        await cp.boot(firmwareVersion="2.0")  # a firmware update may add, drop or reset keys
        await read_finished(gateway, "CP1", reads=3)
        assert table.requests == [["GetConfigurationMaxKeys"], None]


async def test_a_gateway_restart_keeps_the_configuration_and_an_unchanged_reboot_reads_nothing(runner):
    gw = await runner.start()
    table = ConfigTable(standard_config(VendorLedColour="blue"))
    async with accepted_charger(gw, runner, table=table):
        pass
    await runner.stop()
    gw = await runner.start()
    table.requests.clear()
    async with TestCharger(runner.url, "CP1") as cp:
        cp.answers["GetConfiguration"] = table.answer
        await cp.boot()
        await read_finished(gw, "CP1", reads=2)
        assert table.requests == []
        assert gw.registry.get("CP1").config_value("VendorLedColour") == "blue"
        await cp.boot(chargePointSerialNumber="SN-2")  # another unit under the same id: read it
        await read_finished(gw, "CP1", reads=3)
        assert table.requests == [["GetConfigurationMaxKeys"], None]


async def test_our_change_is_kept_without_a_read_but_a_pending_change_is_read_after_the_reboot(gateway, runner):
    from gateway.operator import actions as ops
    table = ConfigTable(standard_config(VendorLedColour="blue"))
    async with accepted_charger(gateway, runner, table=table) as cp:
        cp.answers["ChangeConfiguration"] = table.change("Accepted")
        await ops.change_configuration(gateway.actions, "CP1", "VendorLedColour", "green")
        table.requests.clear()
        await cp.boot()
        await read_finished(gateway, "CP1", reads=2)
        assert table.requests == []
        assert gateway.registry.get("CP1").config_value("VendorLedColour") == "green"
        cp.answers["ChangeConfiguration"] = table.change("RebootRequired")
        await ops.change_configuration(gateway.actions, "CP1", "HeartbeatInterval", "120")
        await cp.boot()  # only a read tells whether the charger applied it
        await read_finished(gateway, "CP1", reads=3)
        assert table.requests == [["GetConfigurationMaxKeys"], None]


async def test_an_incomplete_read_is_done_again_at_the_next_boot(runner):
    gw = await runner.start(ocpp={"response_timeout_s": 0.3})
    values = standard_config()
    del values["GetConfigurationMaxKeys"]
    table = ConfigTable(values, unkeyed="never", batch="error")
    silent = iter([True, True])

    def answer(payload):  # the one-key reads time out: the read stops incomplete
        keys = payload.get("key") or []
        if len(keys) == 1 and keys != ["GetConfigurationMaxKeys"] and next(silent, False):
            return None
        return table.answer(payload)
    async with accepted_charger(gw, runner, table=table, GetConfiguration=answer) as cp:
        [line] = await read_finished(gw, "CP1")
        assert "incomplete" in line["message"]
        table.requests.clear()
        cp.answers["GetConfiguration"] = table.answer
        await cp.boot()
        await read_finished(gw, "CP1", reads=2)
        assert table.requests[:2] == [["GetConfigurationMaxKeys"], None]
