"""Live settings and the gateway's overview: admin API routes (the CLI is settings_cli)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.errors import ConfigError
from gateway.operator.live import live_for

if TYPE_CHECKING:
    from gateway.app import Gateway


def overview(gw: Gateway) -> dict[str, Any]:
    """What `ocpp-gateway status` and the network page show first."""
    stations = list(gw.registry.stations.values())
    live = live_for(gw)
    site = gw.charging.site_view() if gw.charging is not None else None
    charging = sum(1 for s in stations for c in s.connectors.values() if c.transaction_id is not None)
    return {
        "uptime_s": round(gw.clock() - live.started_at, 1) if live.started_at else 0.0,
        "chargers_total": len(stations), "chargers_added": len(gw.devices),
        "chargers_online": sum(1 for s in stations if s.online),
        "guests": sum(1 for s in stations if s.slot is None),
        "connected": len(gw.sessions), "sessions_charging": charging,
        "site_limit": site, "endpoints": endpoints(gw),
        "authorize_policy": gw.settings.authorize.policy,
        "guest_response": gw.settings.registration.guest_response,
    }


def endpoints(gw: Gateway) -> dict[str, str]:
    s = gw.settings
    out = {"ocpp": f"ws{'s' if s.ocpp.ssl_enabled else ''}://{s.ocpp.host}:{gw.ports.get('ocpp', s.ocpp.port)}/ocpp/<charger id>"}
    if "admin" in gw.ports:
        out["admin"] = f"http://{s.admin.host}:{gw.ports['admin']}/ (web pages at /ui/)"
    if "bacnet" in gw.ports:
        out["bacnet"] = f"BACnet/IP {s.bacnet.address} UDP {gw.ports['bacnet']}, device {s.bacnet.device_id}"
    if "modbus" in gw.ports:
        out["modbus"] = f"Modbus TCP {s.modbus.host}:{gw.ports['modbus']}"
    return out


def add_routes(gw: Gateway) -> None:
    def routes(app: web.Application) -> None:
        async def get_settings(request: web.Request) -> web.Response:
            return web.json_response(live_for(gw).view())

        async def put_setting(request: web.Request) -> web.Response:
            try:
                body = await request.json()
                if not isinstance(body, dict) or "value" not in body:
                    raise ConfigError('body must be {"value": ...}')
                row = await live_for(gw).change(request.match_info["key"], body["value"],
                                                str(body.get("by", "admin")))
            except (ConfigError, ValueError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response(row)

        async def reset_setting(request: web.Request) -> web.Response:
            try:
                return web.json_response(await live_for(gw).reset(request.match_info["key"]))
            except ConfigError as exc:
                return web.json_response({"error": str(exc)}, status=400)

        async def get_overview(request: web.Request) -> web.Response:
            return web.json_response(overview(gw))

        app.router.add_get("/api/settings", get_settings)
        app.router.add_put("/api/settings/{key}", put_setting)
        app.router.add_delete("/api/settings/{key}", reset_setting)
        app.router.add_get("/api/overview", get_overview)
    gw.admin_routes.append(routes)
