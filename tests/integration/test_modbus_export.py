"""`ocpp-gateway points export --modbus FILE`: the register map for the integrator (notes 3.4)."""

from __future__ import annotations

import asyncio
import csv

from gateway.main import main
from points.export.register_map import CSV_COLUMNS
from tests.conftest import GatewayRunner


async def _database_with_two_chargers(runner: GatewayRunner) -> str:
    gateway = await runner.start()
    await gateway.device_book.add_device("CP-A")
    await gateway.device_book.add_device("CP-B")
    path = gateway.settings.database.path
    await runner.stop()
    return path


async def test_csv_lists_every_register_of_every_added_charger(runner: GatewayRunner, tmp_path):
    db = await _database_with_two_chargers(runner)
    out = tmp_path / "map.csv"
    assert await asyncio.to_thread(main, ["points", "export", "--db", db, "--modbus", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == CSV_COLUMNS
    assert {r["charger_id"] for r in rows} == {"", "CP-A", "CP-B"}
    power = [r for r in rows if r["name"] == "CP2-C1-Power-Active-Import"]
    assert len(power) == 1
    assert (power[0]["address"], power[0]["hex"], power[0]["register"], power[0]["function_codes"]) == \
        ("2510", "0x09CE", "2511", "4")
    assert power[0]["word_order"] == "high word first (ABCD)"  # issue 14 item 6: stated in the CSV too
    limit = next(r for r in rows if r["name"] == "Site-PowerLimit")
    assert (limit["table"], limit["access"], limit["type"], limit["range"]) == ("holding", "R/W", "FLOAT32", "0..10000")


async def test_markdown_explains_word_order_and_exceptions_and_maps_one_charger(runner: GatewayRunner, tmp_path):
    db = await _database_with_two_chargers(runner)
    out = tmp_path / "map.md"
    assert await asyncio.to_thread(main, ["--set", "modbus.word_order=little", "points", "export", "--db", db,
                                          "--modbus", str(out)]) == 0
    text = out.read_text()
    assert "low word first (CDAB)" in text and "0x45EF 0x1000" in text
    assert "**02** illegal data address" in text and "**03** illegal data value" in text
    assert "| 1510 | 0x05E6 | input | 4 | R | 2 | FLOAT32 | W |" in text
    assert "| 2 | CP-B | 2000 |" in text


async def test_export_without_a_running_gateway_or_database_refuses_and_says_so(tmp_path, capsys):
    """Issue 14 item 9: it used to write a site-only map with exit 0."""
    code = await asyncio.to_thread(main, ["--admin-url", "http://127.0.0.1:9", "points", "export",
                                          "--modbus", str(tmp_path / "map.csv")])
    err = capsys.readouterr().err
    assert code != 0 and "not reachable" in err and "--db" in err
    assert not (tmp_path / "map.csv").exists()


async def test_export_reads_the_running_gateways_settings_and_chargers(runner: GatewayRunner, tmp_path):
    """Issue 14 item 9: device id and word order are the running gateway's, not the CLI's."""
    gateway = await runner.start(modbus={"word_order": "little", "enabled": False},
                                 bacnet={"device_id": 4242})
    await gateway.device_book.add_device("CP-A")
    out, ede = tmp_path / "map.csv", tmp_path / "ede"
    code = await asyncio.to_thread(main, [*runner.cli_args, "points", "export",
                                          "--modbus", str(out), "--ede", str(ede), "--project", "P"])
    assert code == 0
    rows = list(csv.DictReader(out.open()))
    assert {r["charger_id"] for r in rows} == {"", "CP-A"}
    assert next(r for r in rows if r["name"] == "Site-PowerLimit")["word_order"] == "low word first (CDAB)"
    device_row = next(line for line in (ede / "P_EDE.csv").read_text(encoding="utf-8").splitlines()
                      if line and not line.startswith("#") and line.split(";")[3:4] == ["8"])
    assert device_row.split(";")[1] == "4242"


def test_docs_show_the_register_map_the_code_serves():
    """docs/modbus.md embeds the generated tables of slot 1: regenerate them when the map changes."""
    from pathlib import Path

    from gateway.settings import ModbusSettings
    from points.export.register_map import render

    docs = (Path(__file__).resolve().parents[2] / "docs" / "modbus.md").read_text()
    rendered = render("md", [], ModbusSettings())
    rows = [line for line in rendered.splitlines() if line.startswith("| ") and "0x" in line]
    missing = [row for row in rows if row not in docs]
    assert len(rows) > 100 and missing == []
