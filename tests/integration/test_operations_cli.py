"""Operator actions from the command line against a running gateway (through the admin API)."""

from __future__ import annotations

import asyncio
import json

from gateway.main import Gateway, main
from tests.conftest import GatewayRunner
from tests.support.charger import ConfigTable, accepted_charger, next_call, standard_config


async def cli(capsys, runner: GatewayRunner, *argv: str) -> tuple[int, str]:
    code = await asyncio.to_thread(main, [*runner.cli_args, *argv])
    out = capsys.readouterr()
    return code, out.out + out.err


def status(value: str):
    return lambda payload: {"status": value}


async def test_reset_prints_the_charger_answer(gateway: Gateway, runner, capsys):
    async with accepted_charger(gateway, runner, Reset=status("Rejected")) as cp:
        code, out = await cli(capsys, runner, "reset", "CP1", "--hard")
        assert await next_call(cp, "Reset") == {"type": "Hard"}
    assert (code, out.strip()) == (0, "CP1 Reset: Rejected")


async def test_stop_by_connector_and_json_output(gateway, runner, capsys):
    async with accepted_charger(gateway, runner, RemoteStopTransaction=status("Accepted")) as cp:
        tx = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                "timestamp": "2026-11-20T08:00:00Z"})
        code, out = await cli(capsys, runner, "--json", "stop", "CP1", "--connector", "1")
    assert code == 0
    assert json.loads(out)["transaction_id"] == tx["transactionId"]


async def test_availability_start_unlock_trigger_and_reservations(gateway, runner, capsys):
    answers = {"ChangeAvailability": status("Scheduled"), "RemoteStartTransaction": status("Accepted"),
               "UnlockConnector": status("Unlocked"), "TriggerMessage": status("Accepted"),
               "ReserveNow": status("Accepted"), "CancelReservation": status("Rejected"),
               "ClearCache": status("Accepted"), "DataTransfer": status("UnknownVendorId")}
    async with accepted_charger(gateway, runner, **answers) as cp:
        runs = [
            (["availability", "CP1", "--connector", "2", "inoperative"], "CP1 ChangeAvailability: Scheduled",
             "ChangeAvailability", {"connectorId": 2, "type": "Inoperative"}),
            (["start", "CP1", "--connector", "1", "--id-tag", "TAG"], "CP1 RemoteStartTransaction: Accepted",
             "RemoteStartTransaction", {"idTag": "TAG", "connectorId": 1}),
            (["unlock", "CP1", "1"], "CP1 UnlockConnector: Unlocked", "UnlockConnector", {"connectorId": 1}),
            (["trigger", "CP1", "StatusNotification", "--connector", "1"], "CP1 TriggerMessage: Accepted",
             "TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1}),
            (["reserve", "CP1", "--connector", "1", "--id-tag", "T", "--expiry", "2026-11-21T12:00",
              "--reservation-id", "5"], "CP1 ReserveNow: Accepted", "ReserveNow",
             {"connectorId": 1, "idTag": "T", "expiryDate": "2026-11-21T12:00:00.000Z", "reservationId": 5}),
            (["cancel-reservation", "CP1", "5"], "CP1 CancelReservation: Rejected", "CancelReservation",
             {"reservationId": 5}),
            (["clear-cache", "CP1"], "CP1 ClearCache: Accepted", "ClearCache", {}),
            (["data-transfer", "CP1", "acme", "--message-id", "m"], "CP1 DataTransfer: UnknownVendorId",
             "DataTransfer", {"vendorId": "acme", "messageId": "m"}),
        ]
        for argv, printed, action, payload in runs:
            code, out = await cli(capsys, runner, *argv)
            assert (code, out.strip()) == (0, printed)
            assert await next_call(cp, action) == payload


async def test_config_get_set_and_changes(gateway, runner, capsys):
    table = ConfigTable(standard_config(HeartbeatInterval="300"))
    async with accepted_charger(gateway, runner, table=table, ChangeConfiguration=table.change()):
        code, out = await cli(capsys, runner, "config", "get", "CP1", "HeartbeatInterval", "NumberOfConnectors")
        assert code == 0 and "HeartbeatInterval" in out and "300" in out and "NumberOfConnectors" in out
        assert "MeterValueSampleInterval" not in out
        code, out = await cli(capsys, runner, "config", "set", "CP1", "HeartbeatInterval", "60")
        assert code == 0 and out.startswith("CP1 ChangeConfiguration: Accepted") and "old_value: 300" in out
        table.values["MeterValueSampleInterval"] = "15"
        code, out = await cli(capsys, runner, "--json", "config", "get", "CP1",
                              "MeterValueSampleInterval", "--refresh")
        assert json.loads(out)["keys"][0]["value"] == "15"
        code, out = await cli(capsys, runner, "config", "changes", "CP1")
    assert code == 0 and "HeartbeatInterval" in out and "Accepted" in out and "cli" in out


async def test_local_list_send_and_version(gateway, runner, capsys):
    for tag in ("A", "B", "C"):
        await gateway.history.put_tag(tag, "whitelist")
    await gateway.device_book.reload_tags()
    table = ConfigTable(standard_config(SendLocalListMaxLength="2", LocalAuthListMaxLength="2"))
    async with accepted_charger(gateway, runner, table=table, SendLocalList=status("Accepted"),
                                GetLocalListVersion=lambda p: {"listVersion": 0}):
        code, out = await cli(capsys, runner, "local-list", "send", "CP1")
        assert code == 0 and "CP1 SendLocalList: Accepted" in out and 'not_sent: ["C"]' in out
        code, out = await cli(capsys, runner, "local-list", "version", "CP1")
        assert code == 0 and "listVersion: 0" in out


async def test_firmware_diagnostics_and_composite_schedule(gateway, runner, capsys):
    async with accepted_charger(gateway, runner, UpdateFirmware=lambda p: {},
                                GetDiagnostics=lambda p: {"fileName": "d.tgz"},
                                GetCompositeSchedule=status("Rejected")) as cp:
        code, out = await cli(capsys, runner, "firmware", "CP1", "--location", "https://fw/x.bin",
                              "--retrieve-date", "2026-11-22T03:00:00Z")
        assert (code, out.strip()) == (0, "CP1 UpdateFirmware: Sent")
        code, out = await cli(capsys, runner, "diagnostics", "CP1", "--location", "ftp://up/")
        assert code == 0 and "fileName: d.tgz" in out
        code, out = await cli(capsys, runner, "composite-schedule", "CP1", "--connector", "1",
                              "--duration", "3600", "--unit", "W")
        assert (code, out.strip()) == (0, "CP1 GetCompositeSchedule: Rejected")
        assert await next_call(cp, "GetCompositeSchedule") == {"connectorId": 1, "duration": 3600,
                                                               "chargingRateUnit": "W"}


async def test_cli_reports_an_offline_charger_and_a_call_error(gateway, runner, capsys):
    async with accepted_charger(gateway, runner):
        code, out = await cli(capsys, runner, "unlock", "CP1", "1")
        assert code == 1 and "502" in out and "CALLERROR NotImplemented" in out
    code, out = await cli(capsys, runner, "reset", "CP1")
    assert code == 1 and "409 CP1 is offline" in out


async def test_config_refresh_without_keys_reads_a_limited_charger_completely(gateway, runner, capsys):
    values = standard_config(GetConfigurationMaxKeys="4")
    table = ConfigTable(values, max_keys=4, unkeyed="limit")
    async with accepted_charger(gateway, runner, table=table):
        table.values["ConnectionTimeOut"] = "45"
        code, out = await cli(capsys, runner, "--json", "config", "get", "CP1", "--refresh")
    view = json.loads(out)
    assert code == 0 and len(view["keys"]) == len(values) and view["read_method"] == "batched"
    assert {k["key"]: k["value"] for k in view["keys"]}["ConnectionTimeOut"] == "45"
