"""Exports people open in a spreadsheet: transactions, and kWh per tenant, charger and month.

The transaction columns are the Niagara transaction log's (guide 5.3). In XLSX, times are real
date cells (UTC, as stored) and energies numbers, so a billing clerk can sum and filter without
converting text. The idTag -> tenant / cost-centre mapping lives in the database (kv scope
`tenant`), edited from the CLI, the admin API and the web UI.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.history.store import TRANSACTION_COLUMNS

if TYPE_CHECKING:
    from gateway.history.store import HistoryStore

TENANT_SCOPE = "tenant"
TIME_COLUMNS = ("timestamp", "start_time", "stop_time")
REPORT_GROUPS = ("tenant", "charger")
REPORT_COLUMNS = {
    "tenant": ("month", "tenant", "cost_centre", "sessions", "kwh"),
    "charger": ("month", "identifier", "sessions", "kwh"),
}
UNMAPPED = "(no tenant)"
DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# --- the idTag -> tenant mapping ---------------------------------------------------------
async def tenants(history: HistoryStore) -> dict[str, dict[str, str]]:
    """{id_tag: {"tenant", "cost_centre"}} as stored."""
    out = {}
    for id_tag, text in (await history.kv_get(TENANT_SCOPE)).items():
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if value:
            out[id_tag] = {"tenant": value.get("tenant", ""), "cost_centre": value.get("cost_centre", "")}
    return dict(sorted(out.items()))


async def set_tenant(history: HistoryStore, id_tag: str, tenant: str, cost_centre: str = "") -> dict[str, str]:
    """Map `id_tag` to a tenant (an empty tenant removes the mapping)."""
    if not id_tag or len(id_tag) > 20:
        raise ValueError(f"id tag must be 1 to 20 characters (OCPP 1.6 IdToken), not {id_tag!r}")
    if len(tenant) > 100 or len(cost_centre) > 100:
        raise ValueError("tenant and cost centre are at most 100 characters")
    value = {"tenant": tenant.strip(), "cost_centre": cost_centre.strip()} if tenant.strip() else {}
    await history.kv_put(TENANT_SCOPE, {id_tag: json.dumps(value)})
    history.log("admin", "TenantChanged", f"{id_tag}: {value.get('tenant') or 'no tenant'}"
                + (f" / {value['cost_centre']}" if value.get("cost_centre") else ""))
    return {"id_tag": id_tag, **value}


# --- the per-period report ---------------------------------------------------------------
def report(rows: Iterable[dict[str, Any]], mapping: dict[str, dict[str, str]], by: str = "tenant") -> list[dict[str, Any]]:
    """Sessions and kWh per month and tenant (or charger); months in start-time order.

    A transaction counts in the month it started (UTC). One without a stop meter counts as a
    session with no energy yet, so an open session is visible but never billed twice.
    """
    if by not in REPORT_GROUPS:
        raise ValueError(f"report by must be one of {', '.join(REPORT_GROUPS)}, not {by!r}")
    totals: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0, 0.0])
    for row in rows:
        when = row.get("start_time") or row.get("timestamp") or ""
        month = when[:7] if len(when) >= 7 else "(unknown)"
        if by == "tenant":
            who = mapping.get(row.get("id_tag") or "", {})
            key: tuple[str, ...] = (month, who.get("tenant") or UNMAPPED, who.get("cost_centre", ""))
        else:
            key = (month, row["identifier"])
        totals[key][0] += 1
        totals[key][1] += (row.get("total_meter_wh") or 0) / 1000
    columns = REPORT_COLUMNS[by]
    return [dict(zip(columns, (*key, int(count), round(kwh, 3)), strict=True))
            for key, (count, kwh) in sorted(totals.items())]


# --- file formats ------------------------------------------------------------------------
def inert_cell(value: Any) -> Any:
    """`value` as a CSV cell no spreadsheet evaluates: text that could start a formula gets a `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(rows: Iterable[dict[str, Any]], columns: Iterable[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else inert_cell(v) for k, v in r.items()})
    return out.getvalue()


def transactions_csv(rows: list[dict[str, Any]]) -> str:
    return to_csv(rows, TRANSACTION_COLUMNS)


def rows_csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    return to_csv(rows, columns)


def _cell(column: str, value: Any) -> Any:
    if column in TIME_COLUMNS and isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            return value  # a charger's unreadable time stays visible as text
    return value


def to_xlsx(sheets: Sequence[tuple[str, Sequence[str], list[dict[str, Any]]]]) -> bytes:
    """One workbook, a sheet per (title, columns, rows); times as date cells (UTC)."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for title, columns, rows in sheets:
        sheet = book.create_sheet(title[:31])
        sheet.append(list(columns))
        for row_index, row in enumerate(rows, start=2):
            for col_index, column in enumerate(columns, start=1):
                cell = sheet.cell(row_index, col_index, _cell(column, row.get(column)))
                if cell.data_type == "f":
                    cell.data_type = "s"  # text that looks like a formula stays text
        for index, column in enumerate(columns, start=1):
            letter = get_column_letter(index)
            sheet.column_dimensions[letter].width = max(len(column) + 2, 20 if column in TIME_COLUMNS else 10)
            if column in TIME_COLUMNS:
                for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                    cell.number_format = DATE_FORMAT
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def transactions_xlsx(rows: list[dict[str, Any]]) -> bytes:
    return to_xlsx([("Transactions", TRANSACTION_COLUMNS, rows)])


def report_xlsx(rows: list[dict[str, Any]], by: str) -> bytes:
    return to_xlsx([(f"kWh per {by} and month", REPORT_COLUMNS[by], rows)])
