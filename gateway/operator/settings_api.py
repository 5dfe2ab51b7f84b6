"""Live settings and the gateway's overview: admin API routes and the `settings`/`status` CLI."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.errors import ConfigError
from gateway.operator.live import LIVE_SETTINGS, live_for

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


# --- CLI ---------------------------------------------------------------------------------
def register(sub: Any) -> None:
    st = sub.add_parser("status", help="uptime, chargers online/total, sessions, site limit, endpoints")
    st.set_defaults(func=cmd_status)
    live = sub.add_parser("settings", help="settings that change while the gateway runs")
    lsub = live.add_subparsers(dest="settings_action", required=True)
    lsub.add_parser("list", help="every live setting with its value")
    lset = lsub.add_parser("set", help="change one at once (kept in the database, logged)")
    lset.add_argument("key", help=", ".join(LIVE_SETTINGS))
    lset.add_argument("value")
    lres = lsub.add_parser("reset", help="back to the configuration file's value")
    lres.add_argument("key")
    live.set_defaults(func=cmd_settings)


def _duration(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    return (f"{days} d " if days else "") + f"{hours} h {rest // 60} min"


def status_text(d: dict[str, Any]) -> str:
    site = d.get("site_limit") or {}
    limit = (f"{site.get('in_force_power_kw')} kW / {site.get('in_force_current_a')} A ({site.get('reason')})"
             if site and (site.get("in_force_power_kw") is not None or site.get("in_force_current_a") is not None)
             else "none")
    lines = [f"up {_duration(d['uptime_s'])}",
             f"chargers: {d['chargers_online']} online of {d['chargers_total']} "
             f"({d['chargers_added']} added, {d['guests']} guests)",
             f"charging sessions: {d['sessions_charging']}",
             f"site limit: {limit}",
             f"authorize policy: {d['authorize_policy']}; guest response: {d['guest_response']}"]
    lines += [f"{name}: {where}" for name, where in d["endpoints"].items()]
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    from gateway.operator.cli import AdminClient, _print
    _print(args, AdminClient(args.settings, args.admin_url).request("GET", "/api/overview"), status_text)
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    from gateway.operator.cli import AdminClient, _print, _q, _table
    client = AdminClient(args.settings, args.admin_url)
    if args.settings_action == "list":
        _print(args, client.request("GET", "/api/settings"),
               lambda d: _table(d, ["key", "value", "file_value", "meaning"]))
    elif args.settings_action == "set":
        row = client.request("PUT", f"/api/settings/{_q(args.key)}", {"value": args.value, "by": "admin (cli)"})
        _print(args, row, lambda r: f"{r['key']} = {r['value']}")
    else:
        row = client.request("DELETE", f"/api/settings/{_q(args.key)}")
        _print(args, row, lambda r: f"{r['key']} = {r['value']} (from the configuration file)")
    return 0
