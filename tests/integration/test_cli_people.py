"""A program that talks to people: --version, status, init, INFO lines (issue 16)."""

from __future__ import annotations

import asyncio
import json
import logging

from gateway.main import main
from gateway.settings import Settings, load_settings, settings_reference
from tests.support.charger import TestCharger


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.startswith("ocpp-gateway ")


async def test_status_shows_uptime_chargers_sessions_limit_endpoints(gateway, runner, capsys):
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        code = await asyncio.to_thread(main, [*runner.cli_args, "status"])
        out = capsys.readouterr().out
        assert code == 0 and "1 online of 1" in out and "site limit: none" in out and "ocpp: ws://" in out
        code = await asyncio.to_thread(main, [*runner.cli_args, "--json", "status"])
        data = json.loads(capsys.readouterr().out)
        assert data["chargers_online"] == 1 and data["uptime_s"] >= 0 and "admin" in data["endpoints"]


def test_init_writes_a_commented_file_that_loads_as_the_defaults(tmp_path, capsys):
    target = tmp_path / "site.toml"
    assert main(["init", str(target)]) == 0
    text = target.read_text()
    assert load_settings(target).values() == Settings().values()
    for dotted, _, _ in settings_reference():
        assert dotted.split(".")[1] in text, dotted
    assert main(["init", str(target)]) == 1  # never overwrites without --force
    assert "exists" in capsys.readouterr().err


async def test_one_info_line_per_boot_acceptance_transaction_and_disconnect(gateway, runner, caplog):
    caplog.set_level(logging.INFO)
    async with TestCharger(runner.url, "GUEST-1") as cp:
        await cp.boot()
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        tx = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T1", "meterStart": 0,
                                                "timestamp": "2026-12-01T10:00:00Z"})
        await cp.call("StopTransaction", {"transactionId": tx["transactionId"], "meterStop": 5000,
                                          "timestamp": "2026-12-01T11:00:00Z"})
    from tests.conftest import wait_until
    await wait_until(lambda: "CP1: disconnected" in caplog.text)
    text = caplog.text
    assert "GUEST-1: booted" in text and "a guest; add it with `ocpp-gateway devices add GUEST-1`" in text
    assert "CP1: booted (TestVendor" in text and "accepted in slot 1" in text
    assert "CP1: transaction 1 started on connector 1 by idTag T1" in text
    assert "CP1: transaction 1 stopped" in text
