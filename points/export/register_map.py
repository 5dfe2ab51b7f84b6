"""The Modbus register map as files for the BMS integrator: CSV to import, Markdown to read.

Rendered from `templates/modbus_map.csv.j2` and `templates/modbus_map.md.j2` with the map the
server uses (`points.modbus.layout`, the catalog's Modbus face), so the document cannot drift
from the registers, and with the point names BACnet and the EDE file use. Columns follow notes
3.4: 0-based PDU address (decimal and hex), register number, function codes, access, size, type,
word order, unit, range, description, OCPP source.
"""

from __future__ import annotations

import argparse
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

import templates
from gateway.settings import ModbusSettings
from points.modbus.codec import NA_UINT16, RegType
from points.modbus.layout import Location, site_locations, slot_locations
from points.modbus.registers import (
    CHARGER_AREA,
    CHARGER_BASE,
    CHARGER_STRIDE,
    CONNECTOR_STRIDE,
    EXTRA_BASE,
    EXTRA_STRIDE,
    MAP_VERSION,
    MAX_CONNECTOR_ID,
    MAX_FLAT_SLOT,
    MAX_READ,
    MAX_UNIT_ID,
    Scope,
)

CSV_COLUMNS = ["address", "hex", "register", "reference", "table", "function_codes", "access", "size",
               "type", "word_order", "units", "range", "codes", "not_available", "scope", "slot",
               "charger_id", "connector_id", "name", "description", "ocpp_source"]
WORD_ORDER_TEXT = {"big": "high word first (ABCD)", "little": "low word first (CDAB)"}
NOT_AVAILABLE = {RegType.FLOAT32: "NaN 0x7FC0 0x0000", RegType.UINT32: "0xFFFF 0xFFFF",
                 RegType.INT32: "0x8000 0x0000", RegType.UINT16: "0xFFFF", RegType.INT16: "0x8000",
                 RegType.ENUM16: "0xFFFF", RegType.BOOL16: "0xFFFF", RegType.STRING: "empty"}


@dataclass(frozen=True)
class Row:
    """One value of the map, as the templates print it."""

    location: Location
    charger_id: str
    settings: ModbusSettings

    @property
    def spec(self) -> Any:
        return self.location.register

    @property
    def name(self) -> str:
        loc = self.location
        return loc.register.name(loc.slot or 0, loc.connector_id)

    @property
    def address(self) -> int:
        return self.location.address

    @property
    def holding(self) -> bool:
        return self.spec.writable

    @property
    def mirror(self) -> bool:
        return self.settings.mirror_inputs_in_holding

    @property
    def table(self) -> str:
        if self.holding:
            return "holding"
        return "input+holding" if self.mirror else "input"

    @property
    def reference(self) -> str:
        """Modicon-style reference: 3xxxxx input, 4xxxxx holding (6 digits: addresses pass 9999)."""
        return f"{4 if self.holding else 3}{self.address + 1:05d}"

    @property
    def function_codes(self) -> str:
        if self.holding:
            return "3, 16" if self.spec.size > 1 else "3, 6, 16"
        return "4, 3" if self.mirror else "4"

    @property
    def type_text(self) -> str:
        t = self.spec.reg_type
        if t is RegType.STRING:
            return f"STRING({2 * self.spec.size})"
        return {RegType.ENUM16: "UINT16 (enum)", RegType.BOOL16: "UINT16 (0/1)"}.get(t, str(t))

    @property
    def word_order(self) -> str:
        return WORD_ORDER_TEXT[self.settings.word_order] if self.spec.size == 2 and \
            self.spec.reg_type is not RegType.STRING else ""

    @property
    def range_text(self) -> str:
        s = self.spec
        if s.minimum is not None or s.maximum is not None:
            low = "" if s.minimum is None else _number(s.minimum)
            high = "" if s.maximum is None else _number(s.maximum)
            return f"{low}..{high}"
        return ""

    @property
    def codes_text(self) -> str:
        if self.spec.codes:
            return "; ".join(f"{code}={name}" for name, code in self.spec.codes) + f"; {NA_UINT16}=not available"
        return ""

    def cells(self) -> dict[str, Any]:
        s, loc = self.spec, self.location
        return {"address": self.address, "hex": f"0x{self.address:04X}", "register": self.address + 1,
                "reference": self.reference, "table": self.table, "function_codes": self.function_codes,
                "access": s.access.value, "size": s.size, "type": self.type_text,
                "word_order": self.word_order, "units": s.units, "range": self.range_text,
                "codes": self.codes_text, "not_available": NOT_AVAILABLE[s.reg_type] if s.spec else "",
                "scope": s.scope.value, "slot": loc.slot or "", "charger_id": self.charger_id,
                "connector_id": "" if s.scope is not Scope.CONNECTOR else loc.connector_id,
                "name": self.name, "description": s.description, "ocpp_source": s.source}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def rows(devices: list[tuple[int, str]], settings: ModbusSettings, per_unit: bool = False) -> list[Row]:
    """Site rows, then each charger's block (slot order); per_unit gives the unit-id addresses."""
    out = [Row(loc, "", settings) for loc in site_locations()]
    for slot, charger_id in sorted(devices):
        if not per_unit and slot > MAX_FLAT_SLOT:
            continue
        out += [Row(loc, charger_id, settings) for loc in slot_locations(slot, per_unit=per_unit)]
    return out


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(templates.__file__).parent),
                             autoescape=False, keep_trailing_newline=True, trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["csv"] = _csv_line
    env.filters["md"] = lambda text: str(text).replace("|", "\\|")
    return env


def _csv_line(values: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    return buf.getvalue()


def render(fmt: str, devices: list[tuple[int, str]], settings: ModbusSettings) -> str:
    """The map as CSV (every register of every added charger) or Markdown (site + one charger)."""
    env = _environment()
    all_rows = rows(devices, settings)
    if fmt == "csv":
        return env.get_template("modbus_map.csv.j2").render(
            columns=CSV_COLUMNS, rows=[[r.cells()[c] for c in CSV_COLUMNS] for r in all_rows])
    example_slot = min((slot for slot, _ in devices if slot <= MAX_FLAT_SLOT), default=1)
    example = [Row(loc, "", settings) for loc in slot_locations(example_slot)]
    return env.get_template("modbus_map.md.j2").render(
        version=MAP_VERSION, settings=settings, site=[r for r in all_rows if r.spec.scope is Scope.SITE],
        example_slot=example_slot,
        charger=[r for r in example if r.spec.scope in (Scope.CHARGER, Scope.EXTRA)],
        connector=[r for r in example if r.spec.scope is Scope.CONNECTOR and r.location.connector_id == 1],
        devices=[(slot, cid, CHARGER_BASE + (slot - 1) * CHARGER_STRIDE if slot <= MAX_FLAT_SLOT else None)
                 for slot, cid in sorted(devices)],
        charger_base=CHARGER_BASE, charger_stride=CHARGER_STRIDE, charger_area=CHARGER_AREA,
        connector_stride=CONNECTOR_STRIDE, max_connector_id=MAX_CONNECTOR_ID, extra_base=EXTRA_BASE,
        extra_stride=EXTRA_STRIDE, max_flat_slot=MAX_FLAT_SLOT, max_unit_id=MAX_UNIT_ID, max_read=MAX_READ,
        word_order_text=WORD_ORDER_TEXT[settings.word_order])


def export(path: str, settings: ModbusSettings, devices: list[tuple[int, str]], fmt: str | None = None) -> int:
    """Write the map to `path` ('-' for stdout); the format follows the suffix unless given."""
    chosen = fmt or ("md" if path.endswith((".md", ".markdown")) else "csv")
    text = render(chosen, devices, settings)
    if path == "-":
        print(text, end="")
    else:
        Path(path).write_text(text, encoding="utf-8")
    return 0


def add_modbus_export(parser: argparse.ArgumentParser) -> None:
    """Add `--modbus FILE` (and `--modbus-format`) to the `points export` command."""
    parser.add_argument("--modbus", metavar="FILE",
                        help="write the Modbus register map: CSV, or Markdown for a .md file ('-': stdout)")
    parser.add_argument("--modbus-format", choices=("csv", "md"), help="override the format chosen by suffix")
