"""The operator CLI against a running gateway: devices, tags, history export."""

from __future__ import annotations

import asyncio
import csv
import json

import pytest

from gateway.main import main
from tests.support.charger import TestCharger


async def cli(capsys, runner, *argv: str) -> tuple[int, str]:
    code = await asyncio.to_thread(main, [*runner.cli_args, *argv])
    out = capsys.readouterr()
    return code, out.out + out.err


async def test_discovered_charger_is_added_and_then_accepted(gateway, runner, capsys):
    async with TestCharger(runner.url, "CP7") as cp:
        assert (await cp.boot(chargePointSerialNumber="SER7"))["status"] == "Pending"
    code, out = await cli(capsys, runner, "devices", "discover")
    assert code == 0 and "CP7" in out and "TestVendor" in out
    code, out = await cli(capsys, runner, "devices", "add", "CP7")
    assert code == 0 and "slot 1" in out
    code, out = await cli(capsys, runner, "--json", "devices", "list")
    [device] = json.loads(out)
    assert device["slot"] == 1 and device["boot"]["charge_point_serial"] == "SER7"
    async with TestCharger(runner.url, "CP7") as cp:
        assert (await cp.boot())["status"] == "Accepted"


async def test_slots_are_never_reused(gateway, runner, capsys):
    for cid in ("A", "B"):
        await cli(capsys, runner, "devices", "add", cid)
    await cli(capsys, runner, "devices", "remove", "A")
    code, out = await cli(capsys, runner, "devices", "add", "C")
    assert "slot 3" in out
    code, out = await cli(capsys, runner, "devices", "add", "A")
    assert "slot 1" in out  # a charger that comes back gets its old slot


async def test_tags_from_the_cli_drive_the_authorize_policy(runner, capsys):
    gw = await runner.start(authorize={"policy": "none_except_whitelist"})
    await gw.device_book.add_device("CP1")
    code, _ = await cli(capsys, runner, "tags", "add", "RFID1")
    assert code == 0
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        assert (await cp.call("Authorize", {"idTag": "RFID1"}))["idTagInfo"]["status"] == "Accepted"
        await cli(capsys, runner, "tags", "remove", "RFID1")
        assert (await cp.call("Authorize", {"idTag": "RFID1"}))["idTagInfo"]["status"] == "Invalid"


async def test_an_operator_assigns_a_quirk_by_name(gateway, runner, capsys):
    """The AC wallbox quirk has no [match] (manual 001 names no vendor/model)."""
    await gateway.device_book.add_device("CP1")
    code, out = await cli(capsys, runner, "devices", "set", "CP1", "--quirk", "nonsense")
    assert code == 1 and "no quirk named 'nonsense'" in out
    code, _ = await cli(capsys, runner, "devices", "set", "CP1", "--quirk", "ac-wallbox")
    assert code == 0
    code, out = await cli(capsys, runner, "--json", "devices", "show", "CP1")
    assert json.loads(out)["quirk"] == "ac-wallbox"


async def test_devices_show_names_the_quirk_in_use_and_where_it_came_from(gateway, runner, capsys):
    """The zappi quirk is matched on its boot identity (manual 003, "Boot Notification"); an
    operator's assignment wins and says so."""
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot(chargePointVendor="Myenergi", chargePointModel="Zappi", firmwareVersion="5540")
        code, out = await cli(capsys, runner, "devices", "show", "CP1")
        assert code == 0 and "quirk myenergi-zappi (matched)" in out
        await cli(capsys, runner, "devices", "set", "CP1", "--quirk", "ac-wallbox")
        code, out = await cli(capsys, runner, "devices", "show", "CP1")
        assert "quirk ac-wallbox (assigned)" in out


async def test_a_tag_longer_than_ocpp_allows_is_refused(gateway, runner, capsys):
    """OCPP 1.6 IdToken is CiString20; the AC wallbox (001 3.1) lists at most 20 characters."""
    code, out = await cli(capsys, runner, "tags", "add", "R" * 21)
    assert code == 1 and "longer than 20 characters" in out
    assert await gateway.history.tags() == []
    code, _ = await cli(capsys, runner, "tags", "add", "R" * 20)
    assert code == 0


async def test_transactions_export_to_csv_with_filters(gateway, runner, capsys, tmp_path):
    for cid in ("CP1", "CP2"):
        await gateway.device_book.add_device(cid)
        async with TestCharger(runner.url, cid) as cp:
            await cp.boot()
            tx = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 100,
                                                    "timestamp": "2026-11-20T10:00:00Z"})
            await cp.call("StopTransaction", {"transactionId": tx["transactionId"], "meterStop": 1100,
                                              "timestamp": "2026-11-20T11:30:00Z"})
    out_file = tmp_path / "tx.csv"
    code, out = await cli(capsys, runner, "history", "transactions", "--charger", "CP2",
                          "--since", "2026-11-20", "--csv", str(out_file))
    assert code == 0
    rows = list(csv.DictReader(out_file.open()))
    assert [(r["identifier"], r["total_meter_wh"], r["minutes_charged"]) for r in rows] == [("CP2", "1000.0", "90")]
    code, out = await cli(capsys, runner, "history", "log", "--charger", "CP1", "--csv", "-")
    assert "StartTransactionConfirmation" in out and "CP2" not in out
    code, out = await cli(capsys, runner, "history", "transactions", "--until", "2026-11-20")
    assert "(none)" in out


async def test_history_reads_the_database_directly_when_the_gateway_is_stopped(runner, capsys):
    gw = await runner.start()
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
    db = gw.settings.database.path
    await runner.stop()
    code = await asyncio.to_thread(main, ["history", "log", "--db", db, "--csv", "-"])
    assert code == 0 and "BootNotificationRequest" in capsys.readouterr().out


async def test_cli_says_clearly_when_the_gateway_is_not_running(capsys):
    code = await asyncio.to_thread(main, ["--admin-url", "http://127.0.0.1:9", "devices", "list"])
    assert code == 1 and "not reachable" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--set", "authorize.policy=maybe", "devices", "list"],
                                  ["--config", "/nonexistent.toml", "devices", "list"],
                                  # after `run` too, as in `ocpp-gateway run --set ocpp.port=9000`
                                  ["run", "--set", "authorize.policy=maybe"],
                                  ["run", "--config", "/nonexistent.toml"]])
def test_bad_settings_give_a_clear_message(argv, capsys):
    assert main(argv) == 1
    assert "error:" in capsys.readouterr().err
