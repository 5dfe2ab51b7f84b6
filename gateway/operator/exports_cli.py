"""The `history` and `tenants` commands.

The CLI fetches rows as JSON (or reads a stopped gateway's database with --db) and writes the
CSV or XLSX file itself, so the admin API never streams binary to a script that did not ask.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from gateway.history import exports
from gateway.history.store import REJECTED_COLUMNS, TRANSACTION_COLUMNS
from gateway.operator.exports_api import LOG_COLUMNS, report_rows, time_filters, transaction_rows


def register(sub: Any) -> None:
    hist = sub.add_parser("history", help="general log, transaction log, per-tenant report")
    hsub = hist.add_subparsers(dest="history_action", required=True)
    for name, help_text in (("log", "general log: every request and confirmation"),
                            ("transactions", "transaction log (Niagara columns)"),
                            ("report", "kWh and sessions per month and tenant (or charger)"),
                            ("rejected", "messages the database refused, with their raw frame")):
        h = hsub.add_parser(name, help=help_text)
        h.add_argument("--charger", help="only this charger identifier")
        h.add_argument("--since", help="ISO date or time (UTC), inclusive, e.g. 2026-11-01")
        h.add_argument("--until", help="ISO date or time (UTC), exclusive")
        h.add_argument("--limit", type=int)
        h.add_argument("--csv", metavar="FILE", help="write CSV to FILE ('-' for stdout)")
        if name not in ("log", "rejected"):
            h.add_argument("--xlsx", metavar="FILE", help="write an Excel workbook (real date cells)")
        if name == "report":
            h.add_argument("--by", choices=exports.REPORT_GROUPS, default="tenant")
        h.add_argument("--db", help="read this database file directly (gateway may be stopped)")
    hist.set_defaults(func=cmd_history)

    ten = sub.add_parser("tenants", help="idTag -> tenant / cost centre, for the report")
    tsub = ten.add_subparsers(dest="tenants_action", required=True)
    tsub.add_parser("list")
    tset = tsub.add_parser("set", help="map a tag to a tenant (an empty tenant removes it)")
    tset.add_argument("id_tag")
    tset.add_argument("tenant")
    tset.add_argument("--cost-centre", default="")
    ten.set_defaults(func=cmd_tenants)


def _query(args: argparse.Namespace) -> dict[str, Any]:
    from gateway.operator.cli import CliError
    query = {"charger": args.charger, "since": args.since, "until": args.until, "limit": args.limit,
             "by": getattr(args, "by", None)}
    try:
        time_filters(query)  # refused here, before anything is read or written
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return query


def cmd_history(args: argparse.Namespace) -> int:
    from gateway.operator.cli import AdminClient, _print, _table
    kind = args.history_action
    query = _query(args)
    if args.db:
        rows = asyncio.run(_rows_from_db(Path(args.db), kind, query))
    else:
        path = {"log": "/api/history/log", "transactions": "/api/history/transactions",
                "report": "/api/exports/report", "rejected": "/api/history/rejected"}[kind]
        rows = AdminClient(args.settings, args.admin_url).request(
            "GET", path, query={k: v for k, v in query.items() if v is not None})
    columns = {"log": LOG_COLUMNS, "transactions": TRANSACTION_COLUMNS,
               "rejected": REJECTED_COLUMNS}.get(kind) or exports.REPORT_COLUMNS[args.by]
    if args.csv or getattr(args, "xlsx", None):
        return _write_files(args, kind, rows, columns)
    shown = {"log": ["ts", "identifier", "message_type", "message"],
             "rejected": ["ts", "identifier", "origin", "error", "frame_bytes", "frame"],
             "transactions": ["transaction_id", "identifier", "connector_id", "id_tag", "start_time",
                              "stop_time", "start_meter_wh", "stop_meter_wh", "total_meter_wh",
                              "minutes_charged", "stop_reason"]}.get(kind, list(columns))
    _print(args, rows, lambda d: _table(d, shown))
    return 0


def _write_files(args: argparse.Namespace, kind: str, rows: list[dict[str, Any]], columns: Any) -> int:
    if args.csv == "-":
        sys.stdout.write(exports.rows_csv(rows, columns))
    elif args.csv:
        Path(args.csv).write_text(exports.rows_csv(rows, columns), encoding="utf-8")
        print(f"wrote {len(rows)} rows to {args.csv}")
    if getattr(args, "xlsx", None):
        Path(args.xlsx).write_bytes(exports.to_xlsx([(kind, columns, rows)]))
        print(f"wrote {len(rows)} rows to {args.xlsx}")
    return 0


async def _rows_from_db(path: Path, kind: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    from gateway.history.store import HistoryStore
    from gateway.operator.cli import CliError
    if not path.exists():
        raise CliError(f"no database at {path}")
    store = HistoryStore(path)
    await store.open()
    try:
        if kind == "log":
            since, until = time_filters(query)
            return await store.general_log(query["charger"], since, until, query["limit"] or 1000)
        if kind == "transactions":
            return await transaction_rows(store, query)
        if kind == "rejected":
            return await store.rejected(query["charger"], query["limit"] or 1000)
        return await report_rows(store, query)
    finally:
        await store.close()


def cmd_tenants(args: argparse.Namespace) -> int:
    from gateway.operator.cli import AdminClient, _print, _q, _table
    client = AdminClient(args.settings, args.admin_url)
    if args.tenants_action == "list":
        data = client.request("GET", "/api/tenants")
        _print(args, data, lambda d: _table([{"id_tag": k, **v} for k, v in d.items()],
                                             ["id_tag", "tenant", "cost_centre"]))
    else:
        data = client.request("PUT", f"/api/tenants/{_q(args.id_tag)}",
                              {"tenant": args.tenant, "cost_centre": args.cost_centre})
        _print(args, data, lambda d: f"{d['id_tag']}: {d.get('tenant') or 'no tenant'}")
    return 0
