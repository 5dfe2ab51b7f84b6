"""`ocpp-gateway points list|export`: the point table for humans and for BMS engineering tools.

Both read the running gateway over the admin API (`GET /api/points`, `GET /api/points/meta`):
its table, its BACnet device id and its Modbus settings, whatever configuration this command was
started with. With `--db FILE` they build the same table from the database of a stopped gateway
(slots, persisted offsets, points seen), using this command's settings for the device id and the
Modbus options. Without a running gateway and without `--db` they refuse and say so.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from gateway.errors import CliError
from gateway.operator.cli import AdminClient, _print, _table
from gateway.settings import ModbusSettings
from points.export.register_map import add_modbus_export

LIST_COLUMNS = ["name", "object_type", "instance", "value", "units", "reliability", "writable", "charger_id"]


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


def _from_db(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if not Path(args.db).exists():
        raise CliError(f"no database at {args.db}")
    from points.service import export_meta, point_rows, table_from_db
    table, devices = asyncio.run(table_from_db(args.db, with_devices=True))
    return point_rows(table), export_meta(args.settings, devices)


def _from_gateway(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    client = AdminClient(args.settings, args.admin_url)
    try:
        meta = client.request("GET", "/api/points/meta")
    except CliError as exc:
        raise CliError(f"{exc}; or give --db FILE to read a stopped gateway's database") from None
    return client.request("GET", "/api/points"), meta


def cmd_points(args: argparse.Namespace) -> int:
    if args.points_action == "export" and not (args.ede or args.modbus):
        raise CliError("points export needs --ede DIR and/or --modbus FILE")
    rows, meta = _from_db(args) if args.db else _from_gateway(args)
    if args.points_action == "list":
        if args.charger:
            rows = [r for r in rows if r["charger_id"] == args.charger]
        _print(args, rows, lambda d: _table(d, LIST_COLUMNS))
        return 0
    if args.modbus:
        from points.export.register_map import export
        modbus = ModbusSettings(**meta["modbus"])
        export(args.modbus, modbus, [tuple(d) for d in meta["devices"]], getattr(args, "modbus_format", None))
    if args.ede:
        from points.export.ede import write_ede
        bacnet = meta["bacnet"]
        paths = write_ede(args.ede, rows, bacnet["device_id"], bacnet["device_name"], bacnet["description"],
                          args.project)
        print(f"wrote {len(rows) + 1} objects: " + ", ".join(str(p) for p in paths))
    return 0
