"""Histories and exports for operators: admin API routes and the `history`/`tenants` CLI.

The CLI fetches rows as JSON (or reads a stopped gateway's database with --db) and writes the
CSV or XLSX file itself, so the admin API never streams binary to a script that did not ask.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.history import exports
from gateway.history.store import TRANSACTION_COLUMNS
from gateway.model.timestamps import query_time

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.history.store import HistoryStore

LOG_COLUMNS = ("ts", "identifier", "message_type", "message", "level")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def time_filters(query: Any) -> tuple[str | None, str | None]:
    """--since/--until (or ?since=&until=) checked: a bad date is refused, never ignored."""
    return query_time(query.get("since"), "since"), query_time(query.get("until"), "until")


async def transaction_rows(history: HistoryStore, query: Any) -> list[dict[str, Any]]:
    since, until = time_filters(query)
    return await history.transactions(query.get("charger") or None, since, until,
                                      int(query.get("limit") or 100000))


async def report_rows(history: HistoryStore, query: Any) -> list[dict[str, Any]]:
    return exports.report(await transaction_rows(history, query), await exports.tenants(history),
                          query.get("by") or "tenant")


def file_response(body: str | bytes, name: str, fmt: str) -> web.Response:
    kind = XLSX_TYPE if fmt == "xlsx" else "text/csv"
    return web.Response(body=body.encode() if isinstance(body, str) else body, content_type=kind,
                        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


async def export_response(gw: Gateway, what: str, query: Any) -> web.Response:
    """The download of the web page and of scripts: ?format=csv|xlsx|json."""
    fmt = query.get("format") or "json"
    if fmt not in ("csv", "xlsx", "json"):
        raise ValueError(f"format must be csv, xlsx or json, not {fmt!r}")
    if what == "transactions":
        rows, columns = await transaction_rows(gw.history, query), TRANSACTION_COLUMNS
    else:
        by = query.get("by") or "tenant"
        rows, columns = await report_rows(gw.history, query), exports.REPORT_COLUMNS[by]
        what = f"report_by_{by}"
    if fmt == "json":
        return web.json_response(rows)
    body = exports.to_xlsx([(what, columns, rows)]) if fmt == "xlsx" else exports.rows_csv(rows, columns)
    return file_response(body, what, fmt)


def add_routes(gw: Gateway) -> None:
    def routes(app: web.Application) -> None:
        async def get_export(request: web.Request) -> web.Response:
            try:
                return await export_response(gw, request.match_info["what"], request.query)
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=400)

        async def list_tenants(request: web.Request) -> web.Response:
            return web.json_response(await exports.tenants(gw.history))

        async def put_tenant(request: web.Request) -> web.Response:
            body = await request.json()
            try:
                row = await exports.set_tenant(gw.history, request.match_info["id_tag"],
                                               str(body.get("tenant", "")), str(body.get("cost_centre", "")))
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response(row)

        app.router.add_get("/api/exports/{what:transactions|report}", get_export)
        app.router.add_get("/api/tenants", list_tenants)
        app.router.add_put("/api/tenants/{id_tag}", put_tenant)
    gw.admin_routes.append(routes)


# --- CLI ---------------------------------------------------------------------------------
def register(sub: Any) -> None:
    hist = sub.add_parser("history", help="general log, transaction log, per-tenant report")
    hsub = hist.add_subparsers(dest="history_action", required=True)
    for name, help_text in (("log", "general log: every request and confirmation"),
                            ("transactions", "transaction log (Niagara columns)"),
                            ("report", "kWh and sessions per month and tenant (or charger)")):
        h = hsub.add_parser(name, help=help_text)
        h.add_argument("--charger", help="only this charger identifier")
        h.add_argument("--since", help="ISO date or time (UTC), inclusive, e.g. 2026-11-01")
        h.add_argument("--until", help="ISO date or time (UTC), exclusive")
        h.add_argument("--limit", type=int)
        h.add_argument("--csv", metavar="FILE", help="write CSV to FILE ('-' for stdout)")
        if name != "log":
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
                "report": "/api/exports/report"}[kind]
        rows = AdminClient(args.settings, args.admin_url).request(
            "GET", path, query={k: v for k, v in query.items() if v is not None})
    columns = (LOG_COLUMNS if kind == "log" else TRANSACTION_COLUMNS if kind == "transactions"
               else exports.REPORT_COLUMNS[args.by])
    if args.csv or getattr(args, "xlsx", None):
        return _write_files(args, kind, rows, columns)
    shown = {"log": ["ts", "identifier", "message_type", "message"],
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
