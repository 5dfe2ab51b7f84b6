"""`ocpp-gateway points ...`: exports of the point table (register map, EDE).

Each export lives in its own module and adds its options here, so BACnet and Modbus exports can
grow without touching each other: Modbus adds `--modbus FILE` (points.modbus_export).
"""

from __future__ import annotations

import argparse

from points.modbus_export import add_modbus_export, run_modbus_export


def register(subparsers: argparse._SubParsersAction) -> None:
    points = subparsers.add_parser("points", help="point table exports for BMS integrators")
    psub = points.add_subparsers(dest="points_action", required=True)
    export = psub.add_parser("export", help="write the register map (and other point exports)")
    export.add_argument("--db", help="device database file (default: database.path)")
    add_modbus_export(export)
    export.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    done = run_modbus_export(args)
    if done is None:
        raise SystemExit("points export: name at least one export, e.g. --modbus map.csv")
    return done
