"""Live settings and the gateway's overview: admin API routes (the CLI is settings_cli)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.operator.api import AdminParts


def overview(parts: AdminParts) -> dict[str, Any]:
    """What `ocpp-gateway status` and the network page show first."""
    stations = list(parts.registry.stations.values())
    live = parts.live
    site = parts.charging.site_view() if parts.charging is not None else None
    charging = sum(1 for s in stations for c in s.connectors.values() if c.transaction_id is not None)
    return {
        "uptime_s": round(parts.clock() - live.started_at, 1) if live.started_at else 0.0,
        "chargers_total": len(stations), "chargers_added": len(parts.device_book.devices),
        "chargers_online": sum(1 for s in stations if s.online),
        "guests": sum(1 for s in stations if s.slot is None),
        "connected": len(parts.connections.sessions), "sessions_charging": charging,
        "site_limit": site, "endpoints": endpoints(parts),
        "authorize_policy": parts.settings.authorize.policy,
        "guest_response": parts.settings.registration.guest_response,
        "budget_refusals": parts.connections.parts.budget_refusals(),
    }


def endpoints(parts: AdminParts) -> dict[str, str]:
    s = parts.settings
    out = {"ocpp": f"ws{'s' if s.ocpp.ssl_enabled else ''}://{s.ocpp.host}:{parts.ports.get('ocpp', s.ocpp.port)}/ocpp/<charger id>"}
    if "admin" in parts.ports:
        out["admin"] = f"http://{s.admin.host}:{parts.ports['admin']}/ (web pages at /ui/)"
    if "bacnet" in parts.ports:
        out["bacnet"] = f"BACnet/IP {s.bacnet.address} UDP {parts.ports['bacnet']}, device {s.bacnet.device_id}"
    if "modbus" in parts.ports:
        out["modbus"] = f"Modbus TCP {s.modbus.host}:{parts.ports['modbus']}"
    return out


def add_routes(app: web.Application, parts: AdminParts) -> None:
    def routes(app: web.Application) -> None:
        async def get_settings(request: web.Request) -> web.Response:
            return web.json_response(parts.live.view())

        async def put_setting(request: web.Request) -> web.Response:
            try:
                body = await request.json()
                if not isinstance(body, dict) or "value" not in body:
                    raise ConfigError('body must be {"value": ...}')
                row = await parts.live.change(request.match_info["key"], body["value"],
                                                str(body.get("by", "admin")))
            except (ConfigError, ValueError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response(row)

        async def reset_setting(request: web.Request) -> web.Response:
            try:
                return web.json_response(await parts.live.reset(request.match_info["key"]))
            except ConfigError as exc:
                return web.json_response({"error": str(exc)}, status=400)

        async def get_overview(request: web.Request) -> web.Response:
            return web.json_response(overview(parts))

        app.router.add_get("/api/settings", get_settings)
        app.router.add_put("/api/settings/{key}", put_setting)
        app.router.add_delete("/api/settings/{key}", reset_setting)
        app.router.add_get("/api/overview", get_overview)
    routes(app)
