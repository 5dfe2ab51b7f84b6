"""The pages (GET): each is built from parts, and a part can be fetched alone to refresh it.

A part's topics say which server-sent events make the page fetch it again (web/events.py).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from gateway.history import exports
from gateway.history.store import TRANSACTION_COLUMNS
from gateway.model.timestamps import iso_z, query_time
from gateway.operator.api import station_view
from gateway.operator.settings_api import overview
from gateway.operator.web.view import WebView
from gateway.settings import AUTHORIZE_POLICIES, REGISTRATION_STATUSES

if TYPE_CHECKING:
    from gateway.operator.web.auth import WebSession

LOG_TAIL = 200
FILTERS = ("charger", "type", "since", "until")


def _filters(request: web.Request) -> tuple[dict[str, str], str]:
    """The history filters as given, and the one problem with them (shown, nothing run)."""
    given = {k: request.query.get(k, "").strip() for k in FILTERS}
    try:
        query_time(given["since"], "since")
        query_time(given["until"], "until")
    except ValueError as exc:
        return given, str(exc)
    return given, ""


# --- parts -----------------------------------------------------------------------------------
async def part_health(ui: WebView, request: web.Request) -> dict[str, Any]:
    return {"o": overview(ui.parts)}


def _list_row(station: Any) -> dict[str, Any]:
    """What the device list shows of a charger; much cheaper than station_view (dataclasses.asdict
    of every connector and meter), which made the list of 3,000 chargers hold the loop 0.3 s."""
    boot = station.boot
    return {"charger_id": station.charger_id, "slot": station.slot, "added": station.slot is not None,
            "registration": station.registration, "boot_status": station.boot_status,
            "online": station.online, "fault": station.fault, "quirk": station.quirk_name,
            "last_seen": iso_z(station.last_seen) if station.last_seen else None,
            "boot": {"vendor": boot.vendor, "model": boot.model, "charge_point_serial": boot.charge_point_serial,
                     "firmware_version": boot.firmware_version},
            "connectors": [{"connector_id": c.connector_id, "status": c.status}
                           for _, c in sorted(station.connectors.items())]}


async def part_chargers(ui: WebView, request: web.Request) -> dict[str, Any]:
    views = [_list_row(s) for s in sorted(ui.parts.registry.stations.values(),
                                          key=lambda s: (s.slot is None, s.slot or 0, s.charger_id))]
    return {"guests": [v for v in views if not v["added"]], "devices": [v for v in views if v["added"]],
            "statuses": REGISTRATION_STATUSES}


async def part_charger(ui: WebView, request: web.Request) -> dict[str, Any]:
    station = ui.parts.registry.get(request.query.get("charger") or request.match_info.get("charger_id", ""))
    if station is None:
        raise web.HTTPNotFound(text="unknown charger")
    refused = ui.parts.connections.parts.budget_refusals().get(station.charger_id)
    return {"c": station_view(station), "refused": refused}


async def part_log(ui: WebView, request: web.Request) -> dict[str, Any]:
    given, problem = _filters(request)
    rows: list[dict[str, Any]] = []
    if not problem:
        rows = await ui.parts.history.general_log(
            given["charger"] or None, query_time(given["since"], "since"), query_time(given["until"], "until"),
            LOG_TAIL, given["type"] or None)
    return {"rows": rows[::-1], "f": given, "problem": problem}


async def part_site(ui: WebView, request: web.Request) -> dict[str, Any]:
    status = ui.parts.charging.status() if ui.parts.charging is not None else {"site": None, "connectors": {}}
    return {"site": status["site"], "shares": status["connectors"], "writes": status.get("writes", {})}


PARTS: dict[str, tuple[str, Any]] = {
    "health": ("_health.html.j2", part_health),
    "chargers": ("_chargers.html.j2", part_chargers),
    "charger": ("_charger.html.j2", part_charger),
    "log": ("_log.html.j2", part_log),
    "site": ("_site.html.j2", part_site),
}


async def _parts(ui: WebView, request: web.Request, *names: str) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for name in names:
        context.update(await PARTS[name][1](ui, request))
    return context


# --- pages -----------------------------------------------------------------------------------
def routes(ui: WebView) -> list[tuple[str, Any]]:
    async def part(request: web.Request, session: WebSession) -> web.Response:
        name = request.match_info["name"]
        if name not in PARTS:
            raise web.HTTPNotFound()
        template, build = PARTS[name]
        return await ui.render(template, csrf=session.csrf, **await build(ui, request))

    async def network(request: web.Request, session: WebSession) -> web.Response:
        return await ui.page(request, session, "network.html.j2", title="Network",
                       settings=ui.parts.live.view(), **await _parts(ui, request, "health"))

    async def devices(request: web.Request, session: WebSession) -> web.Response:
        return await ui.page(request, session, "devices.html.j2", title="Device manager",
                       **await _parts(ui, request, "chargers"))

    async def device(request: web.Request, session: WebSession) -> web.Response:
        return await ui.page(request, session, "device.html.j2", title=request.match_info["charger_id"],
                       **await device_context(ui, request))

    async def authorize_page(request: web.Request, session: WebSession) -> web.Response:
        return await ui.page(request, session, "authorize.html.j2", title="Authorize",
                       policy=ui.parts.settings.authorize.policy, policies=AUTHORIZE_POLICIES,
                       tags=await ui.parts.history.tags(), tenants=await exports.tenants(ui.parts.history))

    async def history(request: web.Request, session: WebSession) -> web.Response:
        return await ui.page(request, session, "history.html.j2", title="General history",
                       **await _parts(ui, request, "log"))

    async def transactions(request: web.Request, session: WebSession) -> web.Response:
        given, problem = _filters(request)
        rows = [] if problem else await ui.parts.history.transactions(
            given["charger"] or None, query_time(given["since"], "since"), query_time(given["until"], "until"), 1000)
        return await ui.page(request, session, "transactions.html.j2", title="Transaction history", rows=rows[::-1],
                       columns=TRANSACTION_COLUMNS, f=given, problem=problem,
                       query=urlencode({k: v for k, v in given.items() if v and k != "type"}))

    async def site(request: web.Request, session: WebSession) -> web.Response:
        return await ui.page(request, session, "site.html.j2", title="Site limit", **await _parts(ui, request, "site"))

    async def export(request: web.Request, session: WebSession) -> web.Response:
        from gateway.operator.exports_api import export_response
        try:
            return await export_response(ui.parts, request.match_info["what"], request.query)
        except ValueError as exc:
            return web.Response(status=400, text=str(exc))

    return [("/part/{name}", part), ("/", network), ("/devices", devices), ("/devices/{charger_id}", device),
            ("/authorize", authorize_page), ("/history", history), ("/transactions", transactions),
            ("/site", site), ("/export/{what:transactions|report}", export)]


async def device_context(ui: WebView, request: web.Request) -> dict[str, Any]:
    """Everything the device page shows besides the live part."""
    from gateway.chargers.configuration_calls import configuration_view
    from gateway.operator.actions_api import ACTIONS
    context = await part_charger(ui, request)
    station = ui.parts.registry.get(context["c"]["charger_id"])
    assert station is not None
    smart = None
    if ui.parts.charging is not None:
        smart = ui.parts.charging.settings_for(station.charger_id, 0)
    return {**context, "config": await configuration_view(ui.parts.actions.configuration, station),
            "changes": (await ui.parts.history.config_changes(station.charger_id))[-10:],
            "actions": {name: [p for p in inspect.signature(fn).parameters
                               if p not in ("parts", "charger_id", "source")] for name, fn in ACTIONS.items()},
            "smart": dataclasses.asdict(smart) if smart is not None else None,
            "points": _points_of(ui, station.charger_id), "registers": _registers_of(ui, station),
            "statuses": REGISTRATION_STATUSES}


def _points_of(ui: WebView, charger_id: str) -> list[dict[str, Any]]:
    """This charger's BACnet objects with their present value (only its own: a site has thousands)."""
    table = ui.parts.points_table
    return [{"object_type": p.spec.bacnet_type, "instance": p.instance, "name": p.name,
             "description": p.spec.description, "units": p.spec.units, "writable": p.spec.writable,
             "value": table.read(p) if table.reliable(p) else None}
            for p in sorted(table.points_of(charger_id), key=lambda p: (p.instance, p.spec.bacnet_type))]


def _registers_of(ui: WebView, station: Any) -> list[dict[str, Any]]:
    if station.slot is None:
        return []
    from points.export.register_map import rows
    return [r.cells() for r in rows([(station.slot, station.charger_id)], ui.parts.settings.modbus)
            if r.charger_id == station.charger_id]
