"""Reading the history: filtered rows, the Niagara transaction-log view, meter samples, CSV."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from gateway.history import charger_rows, kv

TRANSACTION_COLUMNS = (
    "timestamp", "identifier", "connector_id", "id_tag", "start_meter_wh", "stop_meter_wh",
    "total_meter_wh", "start_time", "stop_time", "minutes_charged", "transaction_id",
    "stop_reason", "status",
)
REJECTED_COLUMNS = ("id", "ts", "identifier", "origin", "error", "frame_bytes", "frame")


def select_rows(conn: sqlite3.Connection, table: str, time_col: str, identifier: str | None, since: str | None,
                until: str | None, limit: int, equals: dict[str, Any]) -> list[dict[str, Any]]:
    where, params = [], []
    if identifier:
        where.append("identifier = ?")
        params.append(identifier)
    if since:
        where.append(f"COALESCE({time_col}, received_stop) >= ?" if table == "transactions"
                     else f"{time_col} >= ?")
        params.append(since)
    if until:
        where.append(f"COALESCE({time_col}, received_stop) < ?" if table == "transactions"
                     else f"{time_col} < ?")
        params.append(until)
    for col, val in equals.items():
        where.append(f"{col} = ?")
        params.append(val)
    sql = f"SELECT * FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    order = "transaction_id" if table == "transactions" else "id"
    sql += f" ORDER BY {order} DESC LIMIT ?"
    params.append(limit)
    cur = conn.execute(sql, params)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()][::-1]


# The general-log lines of a MeterValues exchange, shown from the row that carries them
# (gateway.history.schema ADDED_COLUMNS): its request line as stored, and the answer's line,
# always the empty answer's (gateway.ocpp.summaries.confirmation_summary; a test keeps them equal).
METER_VALUES_TYPES = ("MeterValuesRequest", "MeterValuesConfirmation")
EMPTY_ANSWER_LINE = "(empty answer)"
# kv (scope, key): the general log's retention cutoff, written by the hourly retention; the
# MeterValues lines older than it are not shown (their meter rows are kept longer).
LOG_SINCE = ("history", "general_log_since")


def general_log_lines(conn: sqlite3.Connection, identifier: str | None, since: str | None, until: str | None,
                      limit: int, message_type: str | None) -> list[dict[str, Any]]:
    """The newest `limit` general-log lines, oldest first: the general_log rows merged with the
    lines of the MeterValues exchanges kept with their meter rows (whose `id` is None: no
    general_log row has them)."""
    lines = select_rows(conn, "general_log", "ts", identifier, since, until, limit,
                        {"message_type": message_type} if message_type else {})
    if message_type is None or message_type in METER_VALUES_TYPES:
        lines += _meter_values_lines(conn, identifier, since, until, limit, message_type)
        lines.sort(key=lambda line: line["ts"])  # stable: a general_log row first within a millisecond
    return lines[-limit:] if limit > 0 else []


def _meter_values_lines(conn: sqlite3.Connection, identifier: str | None, since: str | None, until: str | None,
                        limit: int, message_type: str | None) -> list[dict[str, Any]]:
    where, params = ["m.received IS NOT NULL"], []
    kept = kv.value(conn, LOG_SINCE)
    if kept is not None and (since is None or kept > since):
        since = kept
    for clause, value in (("m.received >= ?", since), ("m.received < ?", until)):
        if value:
            where.append(clause)
            params.append(value)
    # Two lines a message unless one type is asked for: the newest (limit + 1) // 2 messages fill `limit`.
    wanted = limit if message_type else (limit + 1) // 2
    # Newest first in an index's order, so the LIMIT ends the walk: a charger's rows by id (they
    # are written as they arrive), everybody's by `received` (its partial index).
    columns = "m.received, m.identifier, m.logged"
    if identifier:
        rows = charger_rows.select(conn, columns, identifier, " AND ".join(where), tuple(params), limit=wanted)
    else:
        rows = conn.execute(f"SELECT {columns} FROM meter_values m WHERE {' AND '.join(where)} "
                            "ORDER BY m.received DESC, m.id DESC LIMIT ?", [*params, wanted]).fetchall()
    lines = []
    for received, charger_id, logged in reversed(rows):
        for kind, text in zip(METER_VALUES_TYPES, (logged, EMPTY_ANSWER_LINE), strict=True):
            if message_type is None or kind == message_type:
                lines.append({"id": None, "ts": received, "identifier": charger_id,
                              "message_type": kind, "message": text, "level": "info"})
    return lines


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def sample_view(row: dict[str, Any], sv: dict[str, Any]) -> dict[str, Any]:
    """One sampled value with the OCPP defaults filled in (spec 7.43 SampledValue)."""
    measurand = sv.get("measurand", "Energy.Active.Import.Register")
    try:
        value: float | str | None = float(sv.get("value"))
    except (TypeError, ValueError):
        value = sv.get("value")
    return {"identifier": row["identifier"], "connector_id": row["connector_id"],
            "transaction_id": row["transaction_id"], "ts": row["ts"], "measurand": measurand,
            "phase": sv.get("phase", ""), "location": sv.get("location", "Outlet"),
            "unit": sv.get("unit", "Wh" if measurand.startswith("Energy") else ""),
            "context": sv.get("context", "Sample.Periodic"), "format": sv.get("format", "Raw"),
            "value": value}


def transaction_view(row: dict[str, Any]) -> dict[str, Any]:
    """A transaction row with the Niagara transaction-log columns (guide 5.3) derived."""
    start, stop = _parse_iso(row.get("start_time")), _parse_iso(row.get("stop_time"))
    total = None
    if row.get("start_meter_wh") is not None and row.get("stop_meter_wh") is not None:
        total = row["stop_meter_wh"] - row["start_meter_wh"]
    minutes = int((stop - start) / timedelta(minutes=1)) if start and stop else None
    return {
        "timestamp": row.get("received_stop") or row.get("received_start"),
        "identifier": row["identifier"], "connector_id": row["connector_id"],
        "id_tag": row["id_tag"], "start_meter_wh": row.get("start_meter_wh"),
        "stop_meter_wh": row.get("stop_meter_wh"), "total_meter_wh": total,
        "start_time": row.get("start_time"), "stop_time": row.get("stop_time"),
        "minutes_charged": minutes, "transaction_id": row["transaction_id"],
        "stop_reason": row.get("stop_reason"), "status": row["status"],
    }
