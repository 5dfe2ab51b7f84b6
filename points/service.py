"""Wires the point table into a running gateway: persistence, events, writers, BACnet, admin API.

`service_for(gateway)` gives the one `PointsService` of a gateway (Modbus uses the same table:
`service_for(gateway).table`). `install(gateway)` is called by `gateway.extensions`; the table
is always built (Modbus and the exports need it), the BACnet device only with `bacnet.enabled`.
`table_from_db(path)` builds the same table from a database file, for exports while stopped.

Smart charging: the controller (`gateway.charging.controller`) owns the Niagara 6.3 settings and
the site limit; the smart-charging points read it, forward BMS writes to it, and are refreshed
when it reports a change.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.model.station import Registry
from points.commands import writers
from points.table import OFFSETS_SCOPE, Point, PointTable

if TYPE_CHECKING:
    from aiohttp import web

    from gateway.app import Gateway
    from gateway.history.store import HistoryStore

log = logging.getLogger(__name__)
SEEN_SCOPE = "points.seen"  # per charger: connectors, meter values and keys seen (for --db exports)
_services: weakref.WeakKeyDictionary[Any, PointsService] = weakref.WeakKeyDictionary()


class PointsService:
    """The point table of one gateway and the hooks other parts attach to it."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.table = PointTable(clock=gateway.clock)
        self.bacnet: Any = None
        self._seen: dict[str, str] = {}
        self._pending: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        gw, table = self.gateway, self.table
        await load_state(table, gw.history)
        sc = gw.settings.smart_charging
        site = table.state.site
        # What a BMS falls back to when it relinquishes: the safe limit, else the configured one.
        default_kw = sc.safe_power_limit_kw if sc.safe_power_limit_kw is not None else sc.site_power_limit_kw
        if default_kw is not None:
            site.power_limit_kw = site.default_power_kw = default_kw
        if sc.site_current_limit_a is not None:
            site.current_limit_a = site.default_current_a = sc.site_current_limit_a
        if gw.charging is not None:
            table.state.charging = gw.charging
            gw.charging.listeners.append(self._on_charging)
            bms = gw.charging.site.bms  # kept across a restart: the other site point must not lose it
            if bms is not None:
                if bms.limit.power_w is not None:
                    site.power_limit_kw = bms.limit.power_w / 1000.0
                if bms.limit.current_a is not None:
                    site.current_limit_a = bms.limit.current_a
        table.persist = lambda values: self._persist(OFFSETS_SCOPE, values)
        table.writers.update(writers(self))
        table.write_wait_s = gw.settings.bacnet.write_wait_s
        table.added.append(self._remember)
        gw.registry.subscribe(self._on_event)
        seen = await gw.history.kv_get(SEEN_SCOPE)
        for station in gw.registry.added_stations():
            table.restore(station, _record(seen, station.charger_id))
        table.sync(gw.registry)
        if gw.settings.bacnet.enabled:
            from points.bacnet.device import BacnetServer
            self.bacnet = BacnetServer(gw.settings.bacnet, table, gw.spawn)
            gw.ports["bacnet"] = await self.bacnet.start()
            gw.stop_hooks.append(self.bacnet.stop)

    def _persist(self, scope: str, values: dict[str, str]) -> None:
        """Store in the background; `flush` waits for it, so a stop never loses an offset."""
        task = self.gateway.spawn(self.gateway.history.kv_put(scope, values), f"persist {scope}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def _on_charging(self, charger_id: str | None) -> None:
        """The controller changed something: refresh its points (one charger's, or all)."""
        self.table.notify([p for p in self.table.points() if p.spec.key.startswith("SC-")
                           and (charger_id is None or p.charger_id == charger_id)
                           or p.spec.kind == "site"])

    def _on_event(self, event: Any) -> None:
        """Registry events arrive inside OCPP handlers: a points fault must never break those."""
        try:
            self.table.handle(event, self.gateway.registry)
        except Exception:
            log.exception("point table update failed for %s (%s)", event.charger_id, event.kind)

    def _remember(self, points: list[Point]) -> None:
        """Persist which connectors, meter values and keys a charger has, when that changes."""
        station_ids = {p.charger_id for p in points if p.charger_id}
        changed = {}
        for charger_id in station_ids:
            record = json.dumps(self.table.seen(charger_id), sort_keys=True)
            if self._seen.get(charger_id) != record:
                self._seen[charger_id] = changed[charger_id] = record
        if changed:
            self._persist(SEEN_SCOPE, changed)

    def register_routes(self, app: web.Application) -> None:
        from aiohttp import web

        async def list_points(request: web.Request) -> web.Response:
            return web.json_response(point_rows(self.table))
        app.router.add_get("/api/points", list_points)


def service_for(gateway: Gateway) -> PointsService:
    service = _services.get(gateway)
    if service is None:
        service = _services[gateway] = PointsService(gateway)
    return service


def install(gateway: Gateway) -> PointsService:
    service = service_for(gateway)
    gateway.start_hooks.append(service.start)
    gateway.stop_hooks.append(service.flush)  # stop hooks run in reverse: after BACnet stops
    gateway.admin_routes.append(service.register_routes)
    return service


def _record(seen: dict[str, str], charger_id: str) -> dict[str, Any]:
    try:
        return json.loads(seen.get(charger_id) or "{}")
    except ValueError:
        log.warning("ignoring unreadable seen-points record of %s", charger_id)
        return {}


async def load_state(table: PointTable, history: HistoryStore) -> None:
    """Persisted offsets into a fresh table."""
    table.load(await history.kv_get(OFFSETS_SCOPE))


async def table_from_db(path: str | Path) -> PointTable:
    """The table the gateway would build, from a database file (slots, offsets, seen points)."""
    from gateway.history.store import HistoryStore
    store = HistoryStore(path)
    await store.open()
    try:
        registry, table = Registry(), PointTable(clock=lambda: 0.0)
        await load_state(table, store)
        seen = await store.kv_get(SEEN_SCOPE)
        for device in await store.devices():
            station = registry.ensure(device["charger_id"])
            station.slot, station.registration = device["slot"], device["registration"]
            table.restore(station, _record(seen, station.charger_id))
        table.sync(registry)
        return table
    finally:
        await store.close()


def point_rows(table: PointTable) -> list[dict[str, Any]]:
    """Every point as a plain row: what /api/points, `points list` and the EDE export show."""
    rows = []
    for p in table.points():
        spec = p.spec
        default = table.read_default(p) if spec.commandable else None
        rows.append({
            "name": p.name, "object_type": spec.bacnet_type, "instance": p.instance,
            "charger_id": p.charger_id, "slot": p.slot, "connector_id": p.connector_id,
            "kind": spec.kind, "key": spec.key, "description": f"{p.charger_id} {spec.description}".strip(),
            "units": spec.units, "states": list(spec.states), "writable": spec.writable,
            "commandable": spec.commandable, "min": spec.min_value, "max": spec.max_value,
            "default": default, "modbus_type": spec.modbus_type, "ocpp_source": spec.ocpp_source,
            "value": table.read(p), "reliable": table.reliable(p),
        })
    return rows
