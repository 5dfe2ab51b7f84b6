"""`ocpp-gateway` subcommands for operator actions; each posts to the running gateway's admin API.

Every command prints the charger's answer (`CP1 Reset: Accepted`), or with the global `--json`
the whole result for scripts. A charger that cannot take the call, does not answer, or answers
with a CALLERROR makes the command fail with the gateway's message (exit code 1).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gateway.errors import CliError
from gateway.operator.cli import AdminClient, _print, _q, _table

TRIGGER_MESSAGES = ("BootNotification", "DiagnosticsStatusNotification", "FirmwareStatusNotification",
                    "Heartbeat", "MeterValues", "StatusNotification")
PROFILE_PURPOSES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")


def _action(args: argparse.Namespace, action: str, body: dict[str, Any]) -> dict[str, Any]:
    client = AdminClient(args.settings, args.admin_url)
    body = {k: v for k, v in body.items() if v is not None}
    body["source"] = "cli"
    return client.request("POST", f"/api/chargers/{_q(args.charger_id)}/actions/{action}", body)


def _summary(result: dict[str, Any]) -> str:
    """`CP1 Reset: Accepted`, with the answer's other fields and derived values after it."""
    head = f"{result['charger_id']} {result['action']}: {result.get('status') or 'answered'}"
    extra = {k: v for k, v in result["answer"].items() if k != "status"}
    for key in ("transaction_id", "old_value", "file_name", "list_version", "sent", "not_sent"):
        if result.get(key) not in (None, []):
            extra[key] = result[key]
    if not extra:
        return head
    return head + "\n" + "\n".join(f"  {k}: {json.dumps(v) if isinstance(v, dict | list) else v}"
                                   for k, v in extra.items())


def _json_arg(text: str | None) -> Any:
    """A JSON value given inline or as @file."""
    if text is None:
        return None
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"not JSON: {exc}") from None


def cmd_action(args: argparse.Namespace) -> int:
    """One table-driven command: `args.build(args)` gives (OCPP action, body)."""
    action, body = args.build(args)
    _print(args, _action(args, action, body), _summary)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    client = AdminClient(args.settings, args.admin_url)
    base = f"/api/chargers/{_q(args.charger_id)}"
    if args.config_action == "get":
        if args.refresh:
            _action(args, "GetConfiguration", {"keys": args.keys or None})
        query = "&".join(f"key={_q(k)}" for k in args.keys)
        data = client.request("GET", f"{base}/configuration" + (f"?{query}" if query else ""))
        _print(args, data, _config_text)
    elif args.config_action == "set":
        result = _action(args, "ChangeConfiguration", {"key": args.key, "value": args.value})
        _print(args, result, _summary)
    else:
        rows = client.request("GET", f"{base}/configuration/changes")
        _print(args, rows, lambda d: _table(d, ["ts", "key", "old_value", "new_value", "result", "source"]))
    return 0


def _config_text(data: dict[str, Any]) -> str:
    rows = [{**k, "readonly": "R" if k["readonly"] else "RW"} for k in data["keys"]]
    text = _table(rows, ["key", "value", "readonly", "pending_value"])
    if data["unknown_keys"]:
        text += "\nunknown to the charger: " + ", ".join(data["unknown_keys"])
    if data.get("missing"):
        text += "\nnot read yet: " + ", ".join(data["missing"]) + " (try --refresh)"
    if data.get("read_at"):
        text += f"\nread {data['read_at']} ({data['read_method']})"
    return text


def _local_list(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    if args.local_list_action == "send":
        return "SendLocalList", {"differential": args.differential}
    return "GetLocalListVersion", {}


def _charging_profile(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    if args.profile_action == "set":
        return "SetChargingProfile", {"connector_id": args.connector,
                                      "charging_profile": _json_arg(args.profile_json)}
    return "ClearChargingProfile", {"id": args.id, "connector_id": args.connector,
                                    "charging_profile_purpose": args.purpose,
                                    "stack_level": args.stack_level}


def _add(sub: Any, name: str, help_text: str, build: Any) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text)
    parser.add_argument("charger_id")
    parser.set_defaults(func=cmd_action, build=build)
    return parser


def register(sub: Any) -> None:
    """Add the operator-action subcommands to the `ocpp-gateway` parser."""
    _register_core(sub)
    _register_config(sub)
    _register_remote_trigger_and_firmware(sub)
    _register_local_list_and_reservations(sub)
    _register_smart_charging(sub)


def _register_core(sub: Any) -> None:
    """Core: reset, clear-cache, unlock, start, stop, availability."""
    p = _add(sub, "reset", "Reset a charger (Soft unless --hard)",
             lambda a: ("Reset", {"type": "Hard" if a.hard else "Soft"}))
    p.add_argument("--hard", action="store_true", help="full reboot instead of a soft restart")

    _add(sub, "clear-cache", "clear the charger's authorization cache", lambda a: ("ClearCache", {}))

    p = _add(sub, "unlock", "unlock a connector (stuck cable)",
             lambda a: ("UnlockConnector", {"connector_id": a.connector_id}))
    p.add_argument("connector_id", type=int)

    p = _add(sub, "start", "RemoteStartTransaction",
             lambda a: ("RemoteStartTransaction", {"id_tag": a.id_tag, "connector_id": a.connector,
                                                   "charging_profile": _json_arg(a.profile_json)}))
    p.add_argument("--id-tag", required=True)
    p.add_argument("--connector", type=int)
    p.add_argument("--profile-json", help="chargingProfile (OCPP JSON, TxProfile) inline or @file")

    p = _add(sub, "stop", "RemoteStopTransaction by connector or transaction id",
             lambda a: ("RemoteStopTransaction", {"connector_id": a.connector,
                                                  "transaction_id": a.transaction}))
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--connector", type=int, help="stop the active transaction on this connector")
    which.add_argument("--transaction", type=int, help="transaction id")

    p = _add(sub, "availability", "ChangeAvailability of a connector or the whole charger (0)",
             lambda a: ("ChangeAvailability", {"connector_id": a.connector, "type": a.type.capitalize()}))
    p.add_argument("type", choices=("operative", "inoperative"))
    p.add_argument("--connector", type=int, default=0, help="connector id; 0 (default) = whole charger")


def _register_config(sub: Any) -> None:
    """configuration keys: `config get|set|changes`."""
    config = sub.add_parser("config", help="configuration keys: kept values, changes")
    csub = config.add_subparsers(dest="config_action", required=True)
    g = csub.add_parser("get", help="kept values (all, or the keys named)")
    g.add_argument("charger_id")
    g.add_argument("keys", nargs="*", metavar="KEY")
    g.add_argument("--refresh", action="store_true", help="ask the charger first")
    s = csub.add_parser("set", help="ChangeConfiguration")
    s.add_argument("charger_id")
    s.add_argument("key")
    s.add_argument("value")
    c = csub.add_parser("changes", help="every ChangeConfiguration sent, with its result")
    c.add_argument("charger_id")
    config.set_defaults(func=cmd_config)


def _register_remote_trigger_and_firmware(sub: Any) -> None:
    """TriggerMessage, DataTransfer, GetDiagnostics, UpdateFirmware."""
    p = _add(sub, "trigger", "TriggerMessage",
             lambda a: ("TriggerMessage", {"requested_message": a.message, "connector_id": a.connector}))
    p.add_argument("message", choices=TRIGGER_MESSAGES)
    p.add_argument("--connector", type=int)

    p = _add(sub, "data-transfer", "DataTransfer to a vendor extension",
             lambda a: ("DataTransfer", {"vendor_id": a.vendor_id, "message_id": a.message_id,
                                         "data": a.data}))
    p.add_argument("vendor_id")
    p.add_argument("--message-id")
    p.add_argument("--data")

    p = _add(sub, "diagnostics", "GetDiagnostics: upload a diagnostics file to --location",
             lambda a: ("GetDiagnostics", {"location": a.location, "retries": a.retries,
                                           "retry_interval": a.retry_interval,
                                           "start_time": a.start, "stop_time": a.stop}))
    p.add_argument("--location", required=True, help="upload URL (e.g. ftp://...)")
    p.add_argument("--retries", type=int)
    p.add_argument("--retry-interval", type=int)
    p.add_argument("--start", help="oldest log entry wanted (ISO date-time)")
    p.add_argument("--stop", help="newest log entry wanted (ISO date-time)")

    p = _add(sub, "firmware", "UpdateFirmware from --location at --retrieve-date",
             lambda a: ("UpdateFirmware", {"location": a.location, "retrieve_date": a.retrieve_date,
                                           "retries": a.retries, "retry_interval": a.retry_interval}))
    p.add_argument("--location", required=True)
    p.add_argument("--retrieve-date", required=True, help="ISO date-time (UTC if no zone)")
    p.add_argument("--retries", type=int)
    p.add_argument("--retry-interval", type=int)


def _register_local_list_and_reservations(sub: Any) -> None:
    """the local list, ReserveNow, CancelReservation."""
    ll = sub.add_parser("local-list", help="the charger's local authorization list")
    lsub = ll.add_subparsers(dest="local_list_action", required=True)
    send = lsub.add_parser("send", help="send the gateway whitelist (Full unless --differential)")
    send.add_argument("charger_id")
    send.add_argument("--differential", action="store_true")
    version = lsub.add_parser("version", help="GetLocalListVersion")
    version.add_argument("charger_id")
    ll.set_defaults(func=cmd_action, build=_local_list)

    p = _add(sub, "reserve", "ReserveNow",
             lambda a: ("ReserveNow", {"connector_id": a.connector, "id_tag": a.id_tag,
                                       "expiry_date": a.expiry, "reservation_id": a.reservation_id,
                                       "parent_id_tag": a.parent}))
    p.add_argument("--connector", type=int, required=True)
    p.add_argument("--id-tag", required=True)
    p.add_argument("--expiry", required=True, help="ISO date-time (UTC if no zone)")
    p.add_argument("--reservation-id", type=int, required=True)
    p.add_argument("--parent", help="parentIdTag")

    p = _add(sub, "cancel-reservation", "CancelReservation",
             lambda a: ("CancelReservation", {"reservation_id": a.reservation_id}))
    p.add_argument("reservation_id", type=int)


def _register_smart_charging(sub: Any) -> None:
    """GetCompositeSchedule, Set/ClearChargingProfile."""
    p = _add(sub, "composite-schedule", "GetCompositeSchedule",
             lambda a: ("GetCompositeSchedule", {"connector_id": a.connector, "duration": a.duration,
                                                 "charging_rate_unit": a.unit}))
    p.add_argument("--connector", type=int, required=True)
    p.add_argument("--duration", type=int, required=True, help="seconds")
    p.add_argument("--unit", choices=("A", "W"))

    cp = sub.add_parser("charging-profile", help="SetChargingProfile / ClearChargingProfile as plain calls")
    psub = cp.add_subparsers(dest="profile_action", required=True)
    ps = psub.add_parser("set")
    ps.add_argument("charger_id")
    ps.add_argument("--connector", type=int, required=True)
    ps.add_argument("--profile-json", required=True, help="csChargingProfiles inline or @file")
    pc = psub.add_parser("clear")
    pc.add_argument("charger_id")
    pc.add_argument("--id", type=int)
    pc.add_argument("--connector", type=int)
    pc.add_argument("--purpose", choices=PROFILE_PURPOSES)
    pc.add_argument("--stack-level", type=int)
    cp.set_defaults(func=cmd_action, build=_charging_profile)
