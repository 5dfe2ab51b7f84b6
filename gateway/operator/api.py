"""The local admin HTTP API (aiohttp): what the CLI and scripts use to run the gateway.

Bound to loopback by default; every request needs `Authorization: Bearer <admin token>` and a
Host/Origin of this gateway (gateway/operator/auth.py). Errors come back as JSON
`{"error": "..."}` with a 4xx code.
`build_app` holds the core routes; the composition root (`gateway.main`) adds the routes of
operator actions, smart charging and points to the same app before it starts.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway import errors
from gateway.chargers.capabilities import capabilities_of
from gateway.history.exports import to_csv
from gateway.history.store import REJECTED_COLUMNS, TRANSACTION_COLUMNS
from gateway.model.station import Station
from gateway.model.timestamps import absolute_time, iso_z, query_time
from gateway.ocpp.server import valid_charger_id
from gateway.operator.auth import install_guard
from gateway.settings import REGISTRATION_STATUSES

if TYPE_CHECKING:
    from gateway.chargers.devices import DeviceBook
    from gateway.charging.controller import ChargingController
    from gateway.history.store import HistoryStore
    from gateway.memtrim import HeapTrim
    from gateway.model.station import Clock, Registry
    from gateway.ocpp.connections import Connections
    from gateway.operator.actions import ActionParts
    from gateway.operator.live import LiveSettings
    from gateway.settings import AdminSettings, Settings
    from gateway.tasks import Spawn
    from points.table import PointTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdminParts:
    """What the admin API reads and drives; built once by the composition root."""

    settings: Settings
    actions: ActionParts  # registry, history, device book, configuration, charger requests
    connections: Connections
    ports: dict[str, int]  # filled in as the servers start
    charging: ChargingController
    live: LiveSettings
    clock: Clock
    spawn: Spawn
    points_table: PointTable  # what BACnet and Modbus serve (the web pages show a charger's points)
    heap_trim: HeapTrim | None = None  # RSS and the trims after bursts of large frames, for /api/status

    @property
    def registry(self) -> Registry:
        return self.actions.registry

    @property
    def history(self) -> HistoryStore:
        return self.actions.history

    @property
    def device_book(self) -> DeviceBook:
        return self.actions.device_book


PARTS_KEY: web.AppKey[AdminParts] = web.AppKey("parts")
LOG_COLUMNS = ("ts", "identifier", "message_type", "message", "level")


def station_view(station: Station) -> dict[str, Any]:
    """A charger as the operator sees it: discovery fields, health, connectors."""
    ts = lambda v: iso_z(v) if v else None  # noqa: E731
    return {
        "charger_id": station.charger_id, "slot": station.slot, "added": station.slot is not None,
        "registration": station.registration, "boot_status": station.boot_status,
        "online": station.online, "connected": station.connected, "fault": station.fault,
        "boot": dataclasses.asdict(station.boot), "last_seen": ts(station.last_seen),
        "last_heartbeat": ts(station.last_heartbeat), "last_boot": ts(station.last_boot),
        "connected_since": ts(station.connected_since), "reconnects": station.reconnects,
        "last_disconnect": station.last_disconnect, "subprotocol": station.subprotocol,
        "remote_address": station.remote_address, "clock_skew_s": station.clock_skew_s,
        "firmware_status": station.firmware_status, "diagnostics_status": station.diagnostics_status,
        "quirk": station.quirk_name,  # assigned by an operator
        "quirk_in_use": capabilities_of(station).quirk_name,  # assigned, or matched on the boot identity
        "connectors": [
            {**dataclasses.asdict(c), "last_update": ts(c.last_update), "session_start": ts(c.session_start)}
            for c in sorted(station.connectors.values(), key=lambda c: c.connector_id)],
        "meters": [
            {"connector_id": k.connector_id, "measurand": k.measurand, "phase": k.phase,
             "location": k.location, "value": r.value, "unit": r.unit, "timestamp": ts(r.timestamp)}
            for k, r in station.meters.items()],
    }


def _parts(request: web.Request) -> AdminParts:
    return request.app[PARTS_KEY]


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "body is not JSON"}', content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be a JSON object"}', content_type="application/json")
    return body


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def _errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.GatewayError as exc:
        return _error(409, str(exc))
    except (KeyError, ValueError, TypeError) as exc:
        return _error(400, f"bad request: {exc}")


def _station(request: web.Request) -> Station:
    station = _parts(request).registry.get(request.match_info["charger_id"])
    if station is None:
        raise web.HTTPNotFound(text='{"error": "unknown charger"}', content_type="application/json")
    return station


async def status(request: web.Request) -> web.Response:
    parts = _parts(request)
    stations = parts.registry.stations.values()
    return web.json_response({
        "ports": parts.ports, "chargers_known": len(parts.registry.stations),
        "chargers_added": len(parts.device_book.devices), "chargers_online": sum(s.online for s in stations),
        "sessions": len(parts.connections.sessions), "authorize_policy": parts.settings.authorize.policy,
        "guest_response": parts.settings.registration.guest_response,
        "store": parts.history.writer.stats(),
        "memory": parts.heap_trim.stats() if parts.heap_trim is not None else {},
        "budget_refusals": parts.connections.parts.budget_refusals(),
        "security": {"tls": parts.settings.ocpp.ssl_enabled,
                     "require_password": parts.settings.ocpp.require_password,
                     "require_client_certificate": parts.settings.ocpp.require_client_certificate},
    })


async def list_chargers(request: web.Request) -> web.Response:
    """Discovery: every charger that connected since start, plus every added one."""
    stations = sorted(_parts(request).registry.stations.values(), key=lambda s: s.charger_id)
    if request.query.get("guests") == "1":
        stations = [s for s in stations if s.slot is None]
    return web.json_response([station_view(s) for s in stations])


async def get_charger(request: web.Request) -> web.Response:
    return web.json_response(station_view(_station(request)))


async def forget_guest(request: web.Request) -> web.Response:
    """Remove a guest from the discovery list (an added charger is removed from the devices)."""
    parts, charger_id = _parts(request), request.match_info["charger_id"]
    if not await parts.connections.forget_guest(charger_id, added=charger_id in parts.device_book.devices):
        return _error(404, "unknown charger")
    return web.json_response({"removed": request.match_info["charger_id"]})


async def list_devices(request: web.Request) -> web.Response:
    return web.json_response([_public(d) for d in await _parts(request).history.devices()])


def _registration(body: dict[str, Any], default: str | None) -> str | None:
    value = body.get("registration", default)
    if value is not None and value not in REGISTRATION_STATUSES:
        raise ValueError(f"registration must be one of {REGISTRATION_STATUSES}")
    return value


async def add_device(request: web.Request) -> web.Response:
    body = await _json_body(request)
    charger_id = str(body["charger_id"])
    if not valid_charger_id(charger_id):
        raise ValueError(f"{charger_id!r} is not a charger id: 1 to 48 printable characters, "
                         "no space or '/' (OCPP 1.6 chargeBoxIdentity)")
    parts = _parts(request)
    device = await parts.device_book.add_device(charger_id, _registration(body, "Accepted") or "Accepted",
                                                body.get("auth_key"))
    from points.capacity import not_exposed  # what BACnet and Modbus cannot show of this slot
    return web.json_response({**_public(device), "warnings": not_exposed(device["slot"], parts.settings)},
                             status=201)


async def update_device(request: web.Request) -> web.Response:
    body = await _json_body(request)
    fields: dict[str, Any] = {}
    if "registration" in body:
        fields["registration"] = _registration(body, None)
    for key, kind in (("priority", int), ("weight", float)):
        if key in body:
            fields[key] = kind(body[key])
    if "auth_key" in body:
        fields["auth_key"] = body["auth_key"]
    if "quirk" in body:
        fields["quirk"] = body["quirk"] or None
    device = await _parts(request).device_book.update_device(request.match_info["charger_id"], **fields)
    return web.json_response(_public(device))


async def remove_device(request: web.Request) -> web.Response:
    if not await _parts(request).device_book.remove_device(request.match_info["charger_id"]):
        return _error(404, "not in the device database")
    return web.json_response({"removed": request.match_info["charger_id"]})


def _public(device: dict[str, Any]) -> dict[str, Any]:
    out = dict(device)
    out["has_auth_key"] = bool(out.pop("auth_key_hash", None))
    return out


async def list_tags(request: web.Request) -> web.Response:
    return web.json_response(await _parts(request).history.tags())


async def put_tag(request: web.Request) -> web.Response:
    parts = _parts(request)
    body = await _json_body(request)
    listed = body.get("list", "whitelist")
    if listed not in ("whitelist", "blacklist"):
        raise ValueError("list must be whitelist or blacklist")
    # OCPP 1.6 IdToken is CiString20: a longer tag can never be presented, and in a local list it
    # would fail the whole SendLocalList (AC wallbox 001 3.1: "each ID tag with max 20 characters").
    for name, value in (("id tag", request.match_info["id_tag"]), ("parent id tag", body.get("parent_id_tag", ""))):
        if len(value) > 20:
            raise ValueError(f"{name} {value!r} is longer than 20 characters (OCPP 1.6 IdToken)")
    await parts.history.put_tag(request.match_info["id_tag"], listed, absolute_time(body.get("expiry"), "expiry"),
                             body.get("parent_id_tag", ""), body.get("note", ""))
    await parts.device_book.reload_tags()
    return web.json_response({"id_tag": request.match_info["id_tag"], "list": listed})


async def remove_tag(request: web.Request) -> web.Response:
    parts = _parts(request)
    if not await parts.history.remove_tag(request.match_info["id_tag"]):
        return _error(404, "unknown tag")
    await parts.device_book.reload_tags()
    return web.json_response({"removed": request.match_info["id_tag"]})


def _table_response(request: web.Request, rows: list[dict[str, Any]], columns: tuple[str, ...],
                    name: str) -> web.Response:
    if request.query.get("format") == "csv":
        return web.Response(text=to_csv(rows, columns), content_type="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return web.json_response(rows)


async def general_log(request: web.Request) -> web.Response:
    q = request.query
    since, until = query_time(q.get("since"), "since"), query_time(q.get("until"), "until")
    rows = await _parts(request).history.general_log(q.get("charger"), since, until,
                                                  int(q.get("limit", "1000")), q.get("type"))
    return _table_response(request, rows, LOG_COLUMNS, "general_log")


async def transaction_log(request: web.Request) -> web.Response:
    q = request.query
    since, until = query_time(q.get("since"), "since"), query_time(q.get("until"), "until")
    rows = await _parts(request).history.transactions(q.get("charger"), since, until,
                                                   int(q.get("limit", "100000")))
    return _table_response(request, rows, TRANSACTION_COLUMNS, "transactions")


async def rejected_log(request: web.Request) -> web.Response:
    """Messages the database refused, kept with their raw frame (see docs/operations.md)."""
    q = request.query
    rows = await _parts(request).history.rejected(q.get("charger"), int(q.get("limit", "1000")))
    return _table_response(request, rows, REJECTED_COLUMNS, "rejected")


def build_app(parts: AdminParts, token: str) -> web.Application:
    """The admin app; `token` is the admin token every request must carry."""
    app = web.Application(middlewares=[_errors_as_json])
    install_guard(app, token, parts.settings.admin.allowed_hosts)
    app[PARTS_KEY] = parts
    app.router.add_get("/api/status", status)
    app.router.add_get("/api/chargers", list_chargers)
    app.router.add_get("/api/chargers/{charger_id}", get_charger)
    app.router.add_delete("/api/chargers/{charger_id}", forget_guest)
    app.router.add_get("/api/devices", list_devices)
    app.router.add_post("/api/devices", add_device)
    app.router.add_patch("/api/devices/{charger_id}", update_device)
    app.router.add_delete("/api/devices/{charger_id}", remove_device)
    app.router.add_get("/api/tags", list_tags)
    app.router.add_put("/api/tags/{id_tag}", put_tag)
    app.router.add_delete("/api/tags/{id_tag}", remove_tag)
    app.router.add_get("/api/history/log", general_log)
    app.router.add_get("/api/history/transactions", transaction_log)
    app.router.add_get("/api/history/rejected", rejected_log)
    return app


class AdminServer:
    """Serves one built app on `admin.host:admin.port`."""

    def __init__(self, settings: AdminSettings, app: web.Application) -> None:
        self.settings = settings
        self.app = app
        self.runner: web.AppRunner | None = None

    async def start(self) -> int:
        cfg = self.settings
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, cfg.host, cfg.port)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only here
        return int(server.sockets[0].getsockname()[1]) if server and server.sockets else cfg.port

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
