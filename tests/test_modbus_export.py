"""`ocpp-gateway points export --modbus FILE`: the register map for the integrator (notes 3.4)."""

from __future__ import annotations

import csv

from gateway.main import main
from points.export.register_map import CSV_COLUMNS, devices_from_db
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
    assert main(["points", "export", "--db", db, "--modbus", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == CSV_COLUMNS
    assert {r["charger_id"] for r in rows} == {"", "CP-A", "CP-B"}
    power = [r for r in rows if r["name"] == "CP2-C1-meter:Power.Active.Import"]
    assert len(power) == 1
    assert (power[0]["address"], power[0]["hex"], power[0]["register"], power[0]["function_codes"]) == \
        ("2510", "0x09CE", "2511", "4")
    limit = next(r for r in rows if r["name"] == "Site-PowerLimit")
    assert (limit["table"], limit["access"], limit["type"], limit["range"]) == ("holding", "R/W", "FLOAT32", "0..10000")


async def test_markdown_explains_word_order_and_exceptions_and_maps_one_charger(runner: GatewayRunner, tmp_path):
    db = await _database_with_two_chargers(runner)
    out = tmp_path / "map.md"
    assert main(["--set", "modbus.word_order=little", "points", "export", "--db", db, "--modbus", str(out)]) == 0
    text = out.read_text()
    assert "low word first (CDAB)" in text and "0x45EF 0x1000" in text
    assert "**02** illegal data address" in text and "**03** illegal data value" in text
    assert "| 1510 | 0x05E6 | input | 4 | R | 2 | FLOAT32 | W |" in text
    assert "| 2 | CP-B | 2000 |" in text


def test_a_missing_database_gives_the_map_without_chargers(tmp_path):
    assert devices_from_db(tmp_path / "none.sqlite") == []


def test_docs_show_the_register_map_the_code_serves():
    """docs/modbus.md embeds the generated tables of slot 1: regenerate them when the map changes."""
    from pathlib import Path

    from gateway.settings import ModbusSettings
    from points.export.register_map import render

    docs = (Path(__file__).resolve().parent.parent / "docs" / "modbus.md").read_text()
    rendered = render("md", [], ModbusSettings())
    rows = [line for line in rendered.splitlines() if line.startswith("| ") and "0x" in line]
    missing = [row for row in rows if row not in docs]
    assert len(rows) > 100 and missing == []
