"""`ocpp-gateway points list|export`: the point table for humans and for BMS engineering tools.

Both read the running gateway's table through the admin API (`GET /api/points`), or, with
`--db FILE`, build the same table from the database (slots, persisted offsets, points seen),
so an EDE file can be made while the gateway is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from gateway.errors import CliError
from gateway.operator.cli import AdminClient, _print, _table
from points.export.register_map import add_modbus_export, run_modbus_export

LIST_COLUMNS = ["name", "object_type", "instance", "value", "units", "writable", "charger_id"]


def register(subparsers: Any) -> None:
    points = subparsers.add_parser("points", help="the BMS point table (BACnet objects, EDE export)")
    sub = points.add_subparsers(dest="points_action", required=True)
    lst = sub.add_parser("list", help="every point with its BACnet object and current value")
    lst.add_argument("--charger", help="only this charger identifier")
    lst.add_argument("--db", help="build the table from this database file (gateway may be stopped)")
    exp = sub.add_parser("export", help="EDE files (B.I.G.-EU 2.3) and the Modbus register map")
    exp.add_argument("--ede", metavar="DIR", help="directory for the EDE file set")
    exp.add_argument("--project", help="project name (default: bacnet.device_name)")
    exp.add_argument("--db", help="build the table from this database file (gateway may be stopped)")
    add_modbus_export(exp)
    points.set_defaults(func=cmd_points)


def _rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.db:
        if not Path(args.db).exists():
            raise CliError(f"no database at {args.db}")
        from points.service import point_rows, table_from_db
        return point_rows(asyncio.run(table_from_db(args.db)))
    return AdminClient(args.settings, args.admin_url).request("GET", "/api/points")


def cmd_points(args: argparse.Namespace) -> int:
    if args.points_action == "export":
        if not (args.ede or args.modbus):
            raise CliError("points export needs --ede DIR and/or --modbus FILE")
        run_modbus_export(args)  # the register map needs slots only: --db or database.path
        if not args.ede:
            return 0
    rows = _rows(args)
    if args.points_action == "list":
        if args.charger:
            rows = [r for r in rows if r["charger_id"] == args.charger]
        _print(args, rows, lambda d: _table(d, LIST_COLUMNS))
        return 0
    from points.export.ede import write_ede
    cfg = args.settings.bacnet
    paths = write_ede(args.ede, rows, cfg.device_id, cfg.device_name, cfg.description, args.project)
    print(f"wrote {len(rows) + 1} objects: " + ", ".join(str(p) for p in paths))
    return 0
