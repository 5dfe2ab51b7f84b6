"""What the gateway keeps on disk is private, and what it exports stays data in a spreadsheet.

Issue "secure by default": the database and data/ were 0644/0755; an idTag such as
`=HYPERLINK(...)` reached Excel as a formula through the billing CSV.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import stat

import aiohttp

from gateway.history.exports import inert_cell
from gateway.main import main
from gateway.operator.token import token_path
from tests.support.charger import TestCharger


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_the_data_directory_database_and_token_are_private(runner, tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "gateway.sqlite").touch(mode=0o644)  # as an older version left them
    os.chmod(data, 0o755)
    gw = await runner.start(database={"path": str(data / "gateway.sqlite")})
    await gw.device_book.add_device("CP1")
    db = data / "gateway.sqlite"
    assert mode(data) == 0o700
    for path in (db, f"{db}-wal", f"{db}-shm", token_path(gw.settings)):
        assert mode(path) == 0o600, path


async def test_a_new_data_directory_is_made_private(runner, tmp_path):
    gw = await runner.start(database={"path": str(tmp_path / "new" / "deeper" / "gateway.sqlite")},
                            ocpp={"default_password": ""})
    assert mode(tmp_path / "new" / "deeper") == 0o700
    assert mode(tmp_path / "new" / "deeper" / "charger-password") == 0o600
    assert gw.history.path.endswith("gateway.sqlite")


def test_cells_that_would_start_a_formula_are_made_inert():
    for text in ("=1+1", "+1", "-1+2", "@SUM(A1)", "\tX", "\rX"):
        assert inert_cell(text) == "'" + text
    assert inert_cell("TAG-1") == "TAG-1" and inert_cell(-5.0) == -5.0 and inert_cell(None) is None


async def test_a_formula_id_tag_is_exported_inert_by_the_api_and_the_cli(gateway, runner, capsys):
    tag = '=HYPERLINK("x","y")'
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        tx = await cp.call("StartTransaction", {"connectorId": 1, "idTag": tag, "meterStart": 0,
                                                "timestamp": "2026-11-20T10:00:00Z"})
        await cp.call("StopTransaction", {"transactionId": tx["transactionId"], "meterStop": 10,
                                          "timestamp": "2026-11-20T11:00:00Z"})
    async with aiohttp.ClientSession(headers=runner.admin_headers) as http, http.get(
            runner.admin_url + "/api/history/transactions?format=csv") as resp:
        [row] = list(csv.DictReader(io.StringIO(await resp.text())))
    assert row["id_tag"] == "'" + tag and row["total_meter_wh"] == "10.0"
    code = await asyncio.to_thread(main, [*runner.cli_args, "history", "transactions", "--csv", "-"])
    [row] = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert code == 0 and row["id_tag"] == "'" + tag
