"""CSV exports that a spreadsheet opens as data, never as formulas.

OWASP "CSV Injection": a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is
run as a formula by Excel and LibreOffice; an idTag such as `=HYPERLINK(...)` comes from a charger
(or whoever holds an RFID card), so every text cell is made inert with a leading `'`. Numbers
stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(value: Any) -> Any:
    """`value` as a cell no spreadsheet evaluates: text that could start a formula gets a `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]], columns: Iterable[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else inert_cell(v) for k, v in r.items()})
    return out.getvalue()
