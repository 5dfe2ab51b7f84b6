"""The `ocpp-gateway` command: run the gateway, and operate it through its admin API.

Commands that need the running gateway talk to its admin HTTP API (settings `admin.host`,
`admin.port`, read from the same --config file) with the admin token: `admin.token`, or the
token the gateway made beside its database on first start (`database.path`). `history` can also read a
database file directly with --db, for exports when the gateway is stopped.
"""

from __future__ import annotations

import argparse
import errno
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from gateway.errors import CliError, ConfigError
from gateway.operator.token import read_admin_token, read_charger_password, token_path
from gateway.settings import REGISTRATION_STATUSES, Settings, load_settings

# A run command: settings in, exit status out (the composition root's `gateway.main.serve`).
Serve = Callable[[Settings], int]
# A module's `register(subparsers)`, adding its own subcommands (actions, site, points, simulate).
Register = Callable[[Any], None]


class AdminClient:
    """A small synchronous client of the admin API (the CLI needs nothing more)."""

    def __init__(self, settings: Settings, url: str | None = None) -> None:
        host = settings.admin.host if settings.admin.host not in ("0.0.0.0", "::") else "127.0.0.1"
        self.base = (url or f"http://{host}:{settings.admin.port}").rstrip("/")
        self.token = read_admin_token(settings)
        self.token_hint = "admin.token" if settings.admin.token else str(token_path(settings))

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                query: dict[str, Any] | None = None, raw: bool = False, timeout: float = 120) -> Any:
        q = {k: v for k, v in (query or {}).items() if v is not None}
        url = self.base + path + (("?" + urllib.parse.urlencode(q)) if q else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                payload = resp.read().decode()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                text = json.loads(text).get("error", text)
            except ValueError:
                pass
            if exc.code == 401:
                text += (f" (the CLI sends the token from {self.token_hint}; use the same --config "
                         "as the gateway, or --set admin.token=...)")
            raise CliError(f"{method} {path}: {exc.code} {text}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise CliError(f"the gateway is not reachable at {self.base} ({exc}); "
                           "start it with `ocpp-gateway run`") from None
        return payload if raw else json.loads(payload)


def _print(args: argparse.Namespace, data: Any, text: Callable[[Any], str] | None = None) -> None:
    if args.json or text is None:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text(data))


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, "") if r.get(c) is not None else "")) for r in rows))
              for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    for r in rows:
        lines.append("  ".join(str(r.get(c) if r.get(c) is not None else "").ljust(widths[c]) for c in columns))
    # The last column is never padded: a long message must not widen every other line.
    return "\n".join(line.rstrip() for line in lines)



def bind_error(settings: Settings, exc: OSError) -> str:
    """One line naming the setting whose port could not be bound (instead of a traceback)."""
    found = re.search(r"\(\'?([^',)]*)\'?, (\d+)\)", str(exc))
    port = int(found.group(2)) if found else None
    names = [f"{name}.port" for name in ("ocpp", "admin", "modbus", "bacnet")
             if getattr(settings, name).port == port and port]
    what = " or ".join(names) or "a listening port"
    if exc.errno == errno.EADDRINUSE or "in use" in str(exc):
        return f"{what} {port} is in use by another program; stop it or choose another port with --set {names[0] if names else 'ocpp.port'}=N"
    return f"cannot listen on {what} {port if port else ''}: {exc.strerror or exc}"


def security_summary(settings: Settings) -> str:
    """Where the secrets are (never the secrets): what an installer needs on the first start."""
    from gateway.operator.token import charger_password_path
    ocpp = settings.ocpp
    if ocpp.require_client_certificate:
        chargers = "chargers show a client certificate naming their id (security profile 3)"
    elif ocpp.require_password:
        where = "ocpp.default_password" if ocpp.default_password else str(charger_password_path(settings))
        chargers = (f"chargers log in as <charger id> with their own key or the site password ({where})")
    else:
        chargers = "chargers without their own key connect without a password (ocpp.require_password = false)"
    token = "admin.token" if settings.admin.token else str(token_path(settings))
    return f"security: {chargers}; the CLI sends the admin token from {token}"


# --- devices -----------------------------------------------------------------------------
DEVICE_COLUMNS = ["charger_id", "slot", "registration", "online", "vendor", "model", "firmware"]


def _charger_rows(chargers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**c, "vendor": c["boot"]["vendor"], "model": c["boot"]["model"],
             "firmware": c["boot"]["firmware_version"]} for c in chargers]


def _charger_page(c: dict[str, Any]) -> str:
    """`devices show` for people: boot data, health, connectors, meters (--json has it all)."""
    boot = c["boot"]
    lines = [f"{c['charger_id']}: slot {c['slot'] if c['slot'] is not None else '- (guest)'}, "
             f"registration {c['registration']}, {'online' if c['online'] else 'offline'}"
             + (f", fault: {c['fault']}" if c.get("fault") else ""),
             f"  {boot['vendor']} {boot['model']}, serial {boot['charge_point_serial'] or '-'}, "
             f"firmware {boot['firmware_version'] or '-'}; quirk {_quirk_text(c)}",
             f"  last seen {c['last_seen'] or '-'}; last boot {c['last_boot'] or '-'}; "
             f"from {c['remote_address'] or '-'}", ""]
    lines.append(_table(c["connectors"], ["connector_id", "status", "error_code", "info",
                                          "transaction_id", "id_tag", "last_update"]))
    if c["meters"]:
        lines += ["", _table(c["meters"], ["connector_id", "measurand", "phase", "value", "unit", "timestamp"])]
    return "\n".join(lines)


def cmd_devices(args: argparse.Namespace) -> int:
    client = AdminClient(args.settings, args.admin_url)
    action = args.devices_action
    if action in ("list", "discover"):
        data = client.request("GET", "/api/chargers", query={"guests": "1" if action == "discover" else None})
        _print(args, data, lambda d: _table(_charger_rows(d), DEVICE_COLUMNS))
    elif action == "show":
        data = client.request("GET", f"/api/chargers/{_q(args.charger_id)}")
        _print(args, data, _charger_page)
    elif action == "add":
        data = client.request("POST", "/api/devices", {"charger_id": args.charger_id,
                                                      "registration": args.registration,
                                                      "auth_key": args.auth_key})
        _print(args, data, lambda d: "\n".join(
            [f"added {d['charger_id']} in slot {d['slot']} ({d['registration']})"]
            + [f"warning: {w}" for w in d.get("warnings", [])]))
    elif action == "set":
        body = {k: v for k, v in (("registration", args.registration), ("auth_key", args.auth_key),
                                  ("priority", args.priority), ("weight", args.weight),
                                  ("quirk", args.quirk)) if v is not None}
        data = client.request("PATCH", f"/api/devices/{_q(args.charger_id)}", body)
        _print(args, data, lambda d: f"{d['charger_id']}: slot {d['slot']}, registration {d['registration']}")
    elif action == "remove":
        data = client.request("DELETE", f"/api/devices/{_q(args.charger_id)}")
        _print(args, data, lambda d: f"removed {d['removed']}")
    elif action == "forget":
        data = client.request("DELETE", f"/api/chargers/{_q(args.charger_id)}")
        _print(args, data, lambda d: f"removed guest {d['removed']} from the discovery list")
    return 0


# --- tags --------------------------------------------------------------------------------
def cmd_tags(args: argparse.Namespace) -> int:
    client = AdminClient(args.settings, args.admin_url)
    if args.tags_action == "list":
        _print(args, client.request("GET", "/api/tags"),
               lambda d: _table(d, ["id_tag", "listed", "expiry", "parent_id_tag", "note"]))
    elif args.tags_action == "add":
        body = {"list": "blacklist" if args.blacklist else "whitelist", "expiry": args.expiry,
                "parent_id_tag": args.parent or "", "note": args.note or ""}
        data = client.request("PUT", f"/api/tags/{_q(args.id_tag)}", body)
        _print(args, data, lambda d: f"{d['id_tag']} on the {d['list']}")
    elif args.tags_action == "remove":
        data = client.request("DELETE", f"/api/tags/{_q(args.id_tag)}")
        _print(args, data, lambda d: f"removed {d['removed']}")
    return 0


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("ocpp-bms-gateway")
    except PackageNotFoundError:
        return "(not installed)"


# --- parser ------------------------------------------------------------------------------
class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (`error: ...`), exit code 2, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser(serve: Serve, commands: Sequence[Register] = ()) -> argparse.ArgumentParser:
    """The whole command line: `run` (served by `serve`), the built-in commands and `commands`."""
    parser = OneLineParser(prog="ocpp-gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--config", "-c", help="TOML settings file (defaults need none)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one setting, e.g. --set ocpp.port=9000 (repeatable)")
    parser.add_argument("--admin-url", help="admin API URL (default from settings admin.host/port)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts (anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the gateway")
    # Also after `run` (`ocpp-gateway run --set ocpp.port=9000`), where people put them.
    run.add_argument("--config", "-c", dest="run_config", help="TOML settings file")
    run.add_argument("--set", action="append", default=[], dest="run_set", metavar="SECTION.KEY=VALUE",
                     help="override one setting (repeatable)")
    run.set_defaults(func=lambda args: serve(args.settings))

    dev = sub.add_parser("devices", help="discovery and the device database")
    dsub = dev.add_subparsers(dest="devices_action", required=True)
    dsub.add_parser("list", help="every known charger (added and guests)")
    dsub.add_parser("discover", help="chargers that connected but are not added")
    show = dsub.add_parser("show", help="one charger with connectors and meters")
    show.add_argument("charger_id")
    add = dsub.add_parser("add", help="add a charger: it gets the next slot, kept for ever")
    add.add_argument("charger_id")
    add.add_argument("--registration", choices=REGISTRATION_STATUSES, default="Accepted")
    add.add_argument("--auth-key", help="HTTP Basic password the charger must send (security profile 1)")
    setp = dsub.add_parser("set", help="change registration response, auth key, priority, weight, quirk")
    setp.add_argument("charger_id")
    setp.add_argument("--registration", choices=REGISTRATION_STATUSES)
    setp.add_argument("--auth-key", help="new key; an empty string removes it")
    setp.add_argument("--priority", type=int)
    setp.add_argument("--weight", type=float)
    setp.add_argument("--quirk", help="quirk file by name for a charger no boot identifies "
                                      "(e.g. ac-wallbox); an empty string goes back to matching")
    rem = dsub.add_parser("remove", help="remove a charger from the device database")
    rem.add_argument("charger_id")
    forget = dsub.add_parser("forget", help="remove a guest from the discovery list (disconnects it)")
    forget.add_argument("charger_id")
    dev.set_defaults(func=cmd_devices)

    tags = sub.add_parser("tags", help="idTag white and black lists")
    tsub = tags.add_subparsers(dest="tags_action", required=True)
    tsub.add_parser("list")
    tadd = tsub.add_parser("add", help="put a tag on the whitelist (or --blacklist)")
    tadd.add_argument("id_tag")
    tadd.add_argument("--blacklist", action="store_true")
    tadd.add_argument("--expiry", help="ISO date-time after which the tag is Expired")
    tadd.add_argument("--parent", help="parentIdTag")
    tadd.add_argument("--note")
    trem = tsub.add_parser("remove")
    trem.add_argument("id_tag")
    tags.set_defaults(func=cmd_tags)

    for register in commands:
        register(sub)
    return parser


def main(argv: list[str] | None, serve: Serve, commands: Sequence[Register] = ()) -> int:
    """Parse and run one command (the console script is `gateway.main:main`, which passes `serve`)."""
    parser = build_parser(serve, commands)
    argv = list(sys.argv[1:] if argv is None else argv)
    # --json anywhere (`history report --json` as well as `--json history report`).
    as_json = "--json" in argv
    args = parser.parse_args([a for a in argv if a != "--json"])
    args.json = as_json
    items = [*args.set, *getattr(args, "run_set", [])]
    if any("=" not in item for item in items):
        print(f"error: --set takes SECTION.KEY=VALUE, not {next(i for i in items if '=' not in i)!r}",
              file=sys.stderr)
        return 2
    overrides = dict(item.split("=", 1) for item in items)
    try:
        args.settings = load_settings(getattr(args, "run_config", None) or args.config, overrides)
        if args.command == "simulate" and args.password is None:
            # The simulator knows nothing of the gateway: hand it the site password made beside the
            # database, as the CLI reads the admin token (docs/security.md).
            args.password = read_charger_password(args.settings)
        return int(args.func(args) or 0)
    except (CliError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _quirk_text(charger: dict[str, Any]) -> str:
    """The quirk file in use, and whether an operator assigned it or the boot identity matched it."""
    if charger.get("quirk"):
        return f"{charger['quirk']} (assigned)"
    return f"{charger['quirk_in_use']} (matched)" if charger.get("quirk_in_use") else "-"
