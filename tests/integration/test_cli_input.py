"""Bad input to the program itself: one line, a non-zero exit, nothing changed (issue 16)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.main import main
from tests.support.charger import TestCharger

ROOT = Path(__file__).resolve().parents[2]


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(("override", "named"), [
    ("ocpp.port=abc", "ocpp.port"),
    ("ocpp.heartbeat_interval_s=-5", "ocpp.heartbeat_interval_s"),
    ("ocpp.port=70000", "ocpp.port"),
    ("registration.guest_reconnect_interval_s=0", "registration.guest_reconnect_interval_s"),
    ("ocpp.response_timeout_s=fast", "ocpp.response_timeout_s"),
    ("ocpp.validate_schemas=maybe", "ocpp.validate_schemas"),
])
def test_a_bad_setting_is_one_line_naming_it(override, named, capsys):
    assert main(["--set", override, "devices", "list"]) == 1
    assert named in _one_error_line(capsys.readouterr().err)


def test_every_unknown_key_is_named(capsys, tmp_path):
    assert main(["--set", "ocpp.prot=1", "--set", "bacnet.devise_id=2", "--set", "nosuch.x=1",
                 "devices", "list"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "ocpp.prot" in line and "bacnet.devise_id" in line and "nosuch" in line
    site = tmp_path / "site.toml"
    site.write_text("[ocpp]\nprot = 1\nhost_address = 'x'\n[modbus]\nenable = true\n")
    assert main(["--config", str(site), "devices", "list"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert all(k in line for k in ("ocpp.prot", "ocpp.host_address", "modbus.enable"))


def test_set_without_equals_is_one_line(capsys):
    assert main(["--set", "ocpp.port", "devices", "list"]) != 0
    assert "SECTION.KEY=VALUE" in capsys.readouterr().err


def _run_gateway(tmp_path: Path, *sets: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "gateway.main", "run",
            "--set", f"database.path={tmp_path / 'g.sqlite'}", "--set", "bacnet.enabled=false",
            "--set", "modbus.enabled=false", "--set", "ocpp.host=127.0.0.1", *sets]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)


@pytest.mark.parametrize("which", ["ocpp", "admin"])
def test_a_port_in_use_is_one_line(which, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = "admin" if which == "ocpp" else "ocpp"
        done = _run_gateway(tmp_path, "--set", f"{which}.port={port}", "--set", f"{other}.port=0")
    assert done.returncode != 0
    line = _one_error_line(done.stderr)
    assert str(port) in line and "in use" in line and which in line


@pytest.mark.parametrize("since", ["notadate", "12/01/2026", "2026-13-01"])
async def test_a_bad_date_is_refused(since, gateway, runner, capsys):
    code = await asyncio.to_thread(main, [*runner.cli_args, "history", "transactions",
                                          "--since", since])
    assert code == 1 and "since" in _one_error_line(capsys.readouterr().err)
    db = gateway.settings.database.path
    code = await asyncio.to_thread(main, ["history", "log", "--db", db, "--until", since])
    assert code == 1 and "until" in _one_error_line(capsys.readouterr().err)


async def test_a_bad_charger_id_is_refused_and_nothing_is_added(gateway, runner, capsys):
    for bad in ("has space", "x" * 49, "tab\tid"):
        code = await asyncio.to_thread(main, [*runner.cli_args, "devices", "add", bad])
        assert code == 1 and "charger id" in _one_error_line(capsys.readouterr().err)
    assert await gateway.history.devices() == []
    code = await asyncio.to_thread(main, [*runner.cli_args, "devices", "show", "NOPE"])
    assert code == 1 and "NOPE" in _one_error_line(capsys.readouterr().err)


async def test_devices_show_is_a_human_page(gateway, runner, capsys):
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        await cp.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"})
        code = await asyncio.to_thread(main, [*runner.cli_args, "devices", "show", "CP1"])
    out = capsys.readouterr().out
    assert code == 0 and not out.lstrip().startswith("{")
    assert "CP1" in out and "TestVendor" in out and "Available" in out


async def test_log_table_lines_are_not_padded_to_the_widest_message(gateway, runner, capsys):
    gateway.history.log("CP1", "Note", "short")
    gateway.history.log("CP1", "Note", "a much longer message " * 10)
    code = await asyncio.to_thread(main, [*runner.cli_args, "history", "log"])
    out = capsys.readouterr().out
    short = next(line for line in out.splitlines() if line.endswith("short") or "short " in line)
    assert code == 0 and short == short.rstrip() and len(short) < 100


@pytest.mark.parametrize("argv", [["history", "log", "--limit", "abc"], ["devices", "nope"],
                                  ["site", "limit", "--kw", "lots"]])
def test_a_usage_error_is_one_line_with_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "--help" in _one_error_line(capsys.readouterr().err)


def test_a_bad_setting_for_run_starts_nothing(tmp_path, capsys):
    db = tmp_path / "data" / "gateway.sqlite"
    assert main(["run", "--set", f"database.path={db}", "--set", "ocpp.port=abc", "--set", "bacnet.enabled=false"]) == 1
    assert "ocpp.port" in _one_error_line(capsys.readouterr().err)
    assert not db.parent.exists()


async def test_a_tag_expiry_must_be_a_date_and_a_date_alone_works(gateway, runner, capsys):
    code = await asyncio.to_thread(main, [*runner.cli_args, "tags", "add", "T2", "--expiry", "notadate"])
    assert code == 1 and "expiry" in _one_error_line(capsys.readouterr().err)
    assert await gateway.history.tags() == []
    code = await asyncio.to_thread(main, [*runner.cli_args, "tags", "add", "T1", "--expiry", "2099-01-01"])
    assert code == 0
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        info = (await cp.call("Authorize", {"idTag": "T1"}))["idTagInfo"]
    assert info == {"status": "Accepted", "expiryDate": "2099-01-01T00:00:00Z"}
