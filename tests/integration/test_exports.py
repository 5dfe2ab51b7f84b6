"""Exports people open in a spreadsheet: transactions and the per-tenant report (issue 16)."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime

from openpyxl import load_workbook

from gateway.history import exports
from gateway.history.store import TRANSACTION_COLUMNS
from gateway.main import main
from tests.support.charger import TestCharger


async def _charge(runner, charger_id: str, sessions: list[tuple[str, str, int]]) -> None:
    if charger_id not in runner.gateway.device_book.devices:
        await runner.gateway.device_book.add_device(charger_id)  # a guest may not charge (OCPP 1.6 4.2)
    async with TestCharger(runner.url, charger_id) as cp:
        await cp.boot()
        for id_tag, day, wh in sessions:
            tx = await cp.call("StartTransaction", {"connectorId": 1, "idTag": id_tag, "meterStart": 1000,
                                                    "timestamp": f"{day}T08:00:00Z"})
            await cp.call("StopTransaction", {"transactionId": tx["transactionId"], "meterStop": 1000 + wh,
                                              "timestamp": f"{day}T09:30:00Z"})


async def test_transactions_xlsx_has_the_niagara_columns_and_date_cells(gateway, runner, tmp_path, capsys):
    await _charge(runner, "CP1", [("T1", "2026-11-03", 7000)])
    target = tmp_path / "tx.xlsx"
    code = await asyncio.to_thread(main, [*runner.cli_args, "history", "transactions",
                                          "--xlsx", str(target)])
    assert code == 0 and "wrote 1 rows" in capsys.readouterr().out
    sheet = load_workbook(target).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == TRANSACTION_COLUMNS
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["start_time"] == datetime(2026, 11, 3, 8, 0) and row["total_meter_wh"] == 7000
    assert row["minutes_charged"] == 90 and row["identifier"] == "CP1"


async def test_report_per_tenant_and_month_in_csv_and_xlsx(gateway, runner, tmp_path, capsys):
    await _charge(runner, "CP1", [("T1", "2026-11-03", 7000), ("T2", "2026-11-04", 3000),
                                  ("T1", "2026-12-01", 1500), ("NOBODY", "2026-11-05", 500)])
    for argv in (["tenants", "set", "T1", "Acme", "--cost-centre", "CC-7"], ["tenants", "set", "T2", "Acme"]):
        assert await asyncio.to_thread(main, [*runner.cli_args, *argv]) == 0
    capsys.readouterr()
    code = await asyncio.to_thread(main, [*runner.cli_args, "history", "report", "--csv", "-"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert code == 0
    assert [(r["month"], r["tenant"], r["cost_centre"], r["sessions"], r["kwh"]) for r in rows] == [
        ("2026-11", "(no tenant)", "", "1", "0.5"), ("2026-11", "Acme", "", "1", "3.0"),
        ("2026-11", "Acme", "CC-7", "1", "7.0"), ("2026-12", "Acme", "CC-7", "1", "1.5")]
    target = tmp_path / "by_charger.xlsx"
    code = await asyncio.to_thread(main, [*runner.cli_args, "history", "report", "--by", "charger",
                                          "--since", "2026-11-01", "--until", "2026-12-01", "--xlsx", str(target)])
    sheet = load_workbook(target).active
    assert code == 0 and list(sheet.iter_rows(values_only=True)) == [
        ("month", "identifier", "sessions", "kwh"), ("2026-11", "CP1", 3, 10.5)]


async def test_report_from_a_stopped_gateways_database(runner, capsys):
    gw = await runner.start()
    await _charge(runner, "CP1", [("T1", "2026-11-03", 2000)])
    await exports.set_tenant(gw.history, "T1", "Flat 3")
    db = gw.settings.database.path
    await runner.stop()
    code = await asyncio.to_thread(main, ["history", "report", "--db", db, "--json"])
    assert code == 0 and '"Flat 3"' in capsys.readouterr().out


async def test_a_bad_tenant_is_refused(gateway, runner, capsys):
    code = await asyncio.to_thread(main, [*runner.cli_args, "tenants", "set", "X" * 21, "Acme"])
    assert code == 1 and "20 characters" in capsys.readouterr().err
    assert await exports.tenants(gateway.history) == {}


def test_a_card_that_looks_like_a_formula_stays_text(tmp_path):
    rows = [{"identifier": "CP1", "id_tag": "=HYPERLINK(\"http://x\")", "start_time": "2026-11-03T08:00:00.000Z",
             "connector_id": 1, "transaction_id": 1, "status": "stopped", "stop_reason": "@SUM(A1)"}]
    text = exports.transactions_csv(rows)
    assert "'=HYPERLINK" in text and "'@SUM" in text
    target = tmp_path / "t.xlsx"
    target.write_bytes(exports.transactions_xlsx(rows))
    sheet = load_workbook(target).active
    cells = {c.value: c.data_type for c in sheet[2]}
    assert cells['=HYPERLINK("http://x")'] == "s" and cells["@SUM(A1)"] == "s"
    assert sheet["H2"].is_date
