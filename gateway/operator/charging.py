"""Smart charging for operators: admin API routes and the `site` and `smart` CLI commands."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from gateway.charging.controller import ChargingController

SETTING_FIELDS = ("enabled", "unit", "limit", "kind", "purpose", "profile_id", "stack_level")


def add_routes(app: web.Application, controller: ChargingController) -> None:
    """Smart-charging routes of the admin app: status, the site limit, Niagara properties."""

    async def get_status(request: web.Request) -> web.Response:
        return web.json_response(controller.status())

    async def put_site(request: web.Request) -> web.Response:
        body = await request.json()
        await controller.set_site_limit(_num(body.get("power_kw")), _num(body.get("current_a")),
                                        str(body.get("source", "manual")))
        return web.json_response(controller.status()["site"])

    async def put_profile(request: web.Request) -> web.Response:
        body = await request.json()
        charger_id = request.match_info["charger_id"]
        if controller.registry.get(charger_id) is None:
            return web.json_response({"error": "unknown charger"}, status=404)
        settings = await controller.configure(charger_id, int(request.match_info["connector_id"]),
                                              **{k: body[k] for k in SETTING_FIELDS if k in body})
        return web.json_response(controller.status()["profiles"][f"{charger_id}/{settings.connector_id}"])

    app.router.add_get("/api/smart-charging", get_status)
    app.router.add_put("/api/site-limit", put_site)
    app.router.add_put("/api/chargers/{charger_id}/smart-charging/{connector_id}", put_profile)


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def register(sub: Any) -> None:
    site = sub.add_parser("site", help="site limit shared by all charging sessions")
    ssub = site.add_subparsers(dest="site_action", required=True)
    ssub.add_parser("status", help="limit in force, why, and what each session gets")
    lim = ssub.add_parser("limit", help="set the site limit (manual; no timeout)")
    lim.add_argument("--kw", type=float, help="site power limit in kW")
    lim.add_argument("--amps", type=float, help="site current limit in A per phase")
    lim.add_argument("--clear", action="store_true",
                     help="remove the manual limit and drop every held-back profile write")
    site.set_defaults(func=cmd_site)

    smart = sub.add_parser("smart", help="Niagara smart-charging properties of a charger or connector")
    smart.add_argument("charger_id")
    smart.add_argument("--connector", type=int, default=0, help="0 = the whole charge point")
    smart.add_argument("--enable", dest="enabled", action="store_const", const=True)
    smart.add_argument("--disable", dest="enabled", action="store_const", const=False)
    smart.add_argument("--unit", choices=("A", "W"))
    smart.add_argument("--limit", type=float)
    smart.add_argument("--kind", choices=("Absolute", "Recurring", "Relative"))
    smart.add_argument("--purpose", choices=("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"))
    smart.add_argument("--profile-id", type=int)
    smart.add_argument("--stack-level", type=int)
    smart.set_defaults(func=cmd_smart)


def cmd_site(args: argparse.Namespace) -> int:
    from gateway.operator.cli import AdminClient, _print
    client = AdminClient(args.settings, args.admin_url)
    if args.site_action == "limit":
        body = {"power_kw": None, "current_a": None} if args.clear else {"power_kw": args.kw, "current_a": args.amps}
        data = client.request("PUT", "/api/site-limit", body)
        _print(args, data, _site_text)
    else:
        data = client.request("GET", "/api/smart-charging")
        _print(args, data, lambda d: _site_text(d["site"]) + "\n" + "\n".join(
            f"  {k}: {v['requested_a']} A ({v['allocation_reason']}); sent: {v['send_status'] or '-'}; "
            f"charger applies: {v['applied_limit']} {v['applied_unit']}" for k, v in d["connectors"].items()))
    return 0


def _site_text(site: dict[str, Any]) -> str:
    alarm = "; BMS WATCHDOG EXPIRED" if site.get("watchdog_expired") else ""
    limits = [f"{site['in_force_power_kw']} kW" if site.get("in_force_power_kw") is not None else "",
              f"{site['in_force_current_a']} A per phase" if site.get("in_force_current_a") is not None else ""]
    shown = ", ".join(x for x in limits if x) or "none"
    return f"site limit in force: {shown} ({site['reason']}); source: {site['source']}{alarm}"


def cmd_smart(args: argparse.Namespace) -> int:
    from gateway.operator.cli import AdminClient, _print
    client = AdminClient(args.settings, args.admin_url)
    body = {k: getattr(args, k) for k in SETTING_FIELDS if getattr(args, k, None) is not None}
    if body:
        data = client.request("PUT", f"/api/chargers/{args.charger_id}/smart-charging/{args.connector}", body)
    else:
        data = client.request("GET", "/api/smart-charging")["profiles"].get(f"{args.charger_id}/{args.connector}", {})
    _print(args, data, lambda d: "; ".join(f"{k}: {v}" for k, v in d.items()) or "(not configured)")
    return 0
