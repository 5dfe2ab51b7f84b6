"""EDE point lists (B.I.G.-EU Engineering Data Exchange 2.3) rendered from the point rows.

The rows come from `points.service.point_rows`, built by the one table code path, whether
from the running gateway (`GET /api/points`) or from a database file. Layout and pitfalls:
notes 3.1: `;` separated, CRLF, 16 columns (importers parse positionally), the device itself
as the first row, unit-code and state-text-reference filled wherever they apply.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

import templates
from gateway.history.exports import inert_cell
from points.spec import BACNET_TYPE_CODES, UNITS

EDE_COLUMNS = (
    "keyname", "device obj.-instance", "object-name", "object-type", "object-instance",
    "description", "present-value-default", "min-present-value", "max-present-value",
    "settable", "supports COV", "hi-limit", "low-limit", "state-text-reference", "unit-code",
    "vendor-specific-address",
)
OBJECT_TYPE_NAMES = {0: "analog-input", 2: "analog-value", 3: "binary-input", 5: "binary-value",
                     8: "device", 13: "multi-state-input", 19: "multi-state-value",
                     40: "characterstring-value"}


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(Path(templates.__file__).parent),
                              autoescape=False, keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined)


def _cell(value: Any) -> str:
    """A field without the separator or line breaks (importers split naively)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    if not isinstance(value, str):
        return str(value)
    # Text (names from charger ids, descriptions) never becomes a spreadsheet formula.
    return inert_cell(value.replace(";", ",").replace("\r", " ").replace("\n", " "))


def ede_rows(rows: list[dict[str, Any]], device_id: int, device_name: str,
             description: str) -> tuple[list[dict[str, str]], list[list[str]]]:
    """The EDE main rows (device first) and the state-text table they reference."""
    state_texts: list[list[str]] = []
    out = [{"keyname": _keyname(device_name), "name": _cell(device_name), "type_code": "8",
            "instance": str(device_id), "description": _cell(description), "default": "",
            "min": "", "max": "", "settable": "N", "cov": "N", "state_ref": "", "unit_code": "",
            "vendor_address": ""}]
    for r in rows:
        t = r["object_type"]
        state_ref = ""
        if r["states"]:
            texts = [_cell(s) for s in r["states"]]
            if texts not in state_texts:
                state_texts.append(texts)
            state_ref = str(state_texts.index(texts) + 1)
        unit_code = str(UNITS[r["units"]][1]) if t.startswith("analog") else ""
        out.append({
            "keyname": _keyname(r["name"]), "name": _cell(r["name"]),
            "type_code": str(BACNET_TYPE_CODES[t]), "instance": str(r["instance"]),
            "description": _cell(r["description"]), "default": _cell(r["default"]),
            "min": _cell(r["min"]), "max": _cell(r["max"]),
            "settable": "Y" if r["writable"] else "N", "cov": "Y", "state_ref": state_ref,
            "unit_code": unit_code, "vendor_address": _cell(r["ocpp_source"]),
        })
    return out, state_texts


def _keyname(name: str) -> str:
    return name.replace("-", "_")


def write_ede(directory: str | Path, rows: list[dict[str, Any]], device_id: int, device_name: str,
              description: str = "", project: str | None = None, version: int = 1) -> list[Path]:
    """Write `<project>_EDE.csv`, `_StateTexts.csv`, `_Units.csv`, `_ObjTypes.csv`; return paths."""
    project = project or device_name
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    main, state_texts = ede_rows(rows, device_id, device_name, description)
    env = _environment()
    context = {
        "project": _cell(project), "version": version, "author": "ocpp-bms-gateway",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "device_id": device_id,
        "rows": main, "state_texts": state_texts,
        "units": sorted({(code, text) for _n, code, text in UNITS.values()}),
        "object_types": sorted(OBJECT_TYPE_NAMES.items()),
    }
    written = []
    for template, suffix in (("ede.csv.j2", "EDE"), ("ede_statetexts.csv.j2", "StateTexts"),
                             ("ede_units.csv.j2", "Units"), ("ede_objtypes.csv.j2", "ObjTypes")):
        text = env.get_template(template).render(**context)
        path = out_dir / f"{_keyname(project)}_{suffix}.csv"
        # CRLF as in the B.I.G.-EU reference files; UTF-8 as modern tools write (notes 3.1).
        path.write_bytes(text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8"))
        written.append(path)
    return written
