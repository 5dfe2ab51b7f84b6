"""`ocpp-gateway status` and `ocpp-gateway settings`: clients of the routes in settings_api."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.operator.live import LIVE_SETTINGS


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
             f"connected: {d['connected']}; charging sessions: {d['sessions_charging']}",
             f"site limit: {limit}",
             f"authorize policy: {d['authorize_policy']}; guest response: {d['guest_response']}"]
    lines += [f"{name}: {where}" for name, where in d["endpoints"].items()]
    return "\n".join(lines + _refusal_lines(d.get("budget_refusals") or {}))


def _refusal_lines(refusals: dict[str, dict[str, int]], most: int = 10) -> list[str]:
    """The chargers whose budgets refused most since start (general-log lines, meter values,
    orphan stops; docs/reliability.md), most first."""
    if not refusals:
        return []
    ranked = sorted(refusals.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    lines = [f"over budget since start ({len(refusals)} charger(s)):"]
    lines += [f"  {cid}: {r.get('log_lines', 0)} log lines, {r.get('meter_values', 0)} meter values, "
              f"{r.get('orphan_stops', 0)} orphan stops not kept" for cid, r in ranked[:most]]
    if len(ranked) > most:
        lines.append(f"  ... and {len(ranked) - most} more (ocpp-gateway --json status)")
    return lines


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
