"""Exports for operators and scripts: admin API routes, shared by the web pages and the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.history import exports
from gateway.history.store import TRANSACTION_COLUMNS
from gateway.model.timestamps import query_time

if TYPE_CHECKING:
    from gateway.history.store import HistoryStore
    from gateway.operator.api import AdminParts

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


async def export_response(parts: AdminParts, what: str, query: Any) -> web.Response:
    """The download of the web page and of scripts: ?format=csv|xlsx|json."""
    fmt = query.get("format") or "json"
    if fmt not in ("csv", "xlsx", "json"):
        raise ValueError(f"format must be csv, xlsx or json, not {fmt!r}")
    if what == "transactions":
        rows, columns = await transaction_rows(parts.history, query), TRANSACTION_COLUMNS
    else:
        by = query.get("by") or "tenant"
        rows, columns = await report_rows(parts.history, query), exports.REPORT_COLUMNS[by]
        what = f"report_by_{by}"
    if fmt == "json":
        return web.json_response(rows)
    body = exports.to_xlsx([(what, columns, rows)]) if fmt == "xlsx" else exports.rows_csv(rows, columns)
    return file_response(body, what, fmt)


def add_routes(app: web.Application, parts: AdminParts) -> None:
    def routes(app: web.Application) -> None:
        async def get_export(request: web.Request) -> web.Response:
            try:
                return await export_response(parts, request.match_info["what"], request.query)
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=400)

        async def list_tenants(request: web.Request) -> web.Response:
            return web.json_response(await exports.tenants(parts.history))

        async def put_tenant(request: web.Request) -> web.Response:
            body = await request.json()
            try:
                row = await exports.set_tenant(parts.history, request.match_info["id_tag"],
                                               str(body.get("tenant", "")), str(body.get("cost_centre", "")))
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response(row)

        app.router.add_get("/api/exports/{what:transactions|report}", get_export)
        app.router.add_get("/api/tenants", list_tenants)
        app.router.add_put("/api/tenants/{id_tag}", put_tenant)
    routes(app)
