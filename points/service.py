"""The point table in a running gateway: persistence, registry events, writers, the BACnet device.

The composition root (`gateway.main`) builds one `PointsService` and hands its `table` to the
Modbus server and the admin API; the table is always built (Modbus and the exports need it), the
BACnet device only with `bacnet.enabled`. `table_from_db(path)` builds the same table from a
database file, for exports while stopped.

Smart charging: the controller (`gateway.charging.controller`) owns the Niagara 6.3 settings and
the site limit; the smart-charging points read it, forward BMS writes to it, and are refreshed
when it reports a change.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.model.station import ChangeEvent, ChangeKind, Registry
from points import capacity
from points.commands import PointCommands, PointWrites
from points.restore import STATUS_SCOPE, restore_last_known, status_record
from points.table import OFFSETS_SCOPE, Point, PointTable

if TYPE_CHECKING:
    from aiohttp import web

    from gateway.charging.controller import ChargingController
    from gateway.history.store import HistoryStore
    from gateway.settings import Settings
    from gateway.tasks import Spawn

log = logging.getLogger(__name__)
DYNAMIC_REFRESH_S = 5.0  # how often time-dependent values (session duration) are re-read
SEEN_SCOPE = "points.seen"  # per charger: connectors, meter values and keys seen (for --db exports)


class PointsService:
    """The point table of one gateway, fed by the registry and the smart-charging controller."""

    def __init__(self, settings: Settings, registry: Registry, history: HistoryStore, table: PointTable,
                 spawn: Spawn, charging: ChargingController | None, commands: PointCommands) -> None:
        self.settings = settings
        self.registry = registry
        self.history = history
        self.table = table
        self.spawn = spawn
        self.charging = charging
        self.commands = commands
        self.bacnet: Any = None
        self.port: int | None = None
        self._seen: dict[str, str] = {}
        self._unsaved: dict[str, dict[str, str]] = {}  # scope -> values not yet written
        self._seen_changed: set[str] = set()  # chargers whose seen record may have changed
        self._saver: asyncio.Task[None] | None = None
        self._statuses: dict[str, str] = {}
        self._slots: dict[str, int | None] = {}  # charger id -> slot, for the not-exposed counts
        # Points whose value changes with time alone, kept as the table adds and removes them,
        # so the refresh never walks (or sorts) every point of every charger.
        self._dynamic: dict[tuple[str, int], Point] = {}
        table.added.append(self._track_dynamic)
        table.removed.append(self._untrack_dynamic)
        self._bacnet_import: asyncio.Future[Any] | None = None

    async def start(self) -> None:
        """Load what was persisted and build the points of every added charger (the table both
        protocols serve); `start_bacnet` follows once the OCPP port is open."""
        table, settings = self.table, self.settings
        if settings.bacnet.enabled:  # meanwhile, in a worker thread (it waits for the store as well)
            self._bacnet_import = asyncio.ensure_future(asyncio.to_thread(_import_bacnet))
        await load_state(table, self.history)
        sc = settings.smart_charging
        site = table.state.site
        # What a BMS falls back to when it relinquishes: the safe limit, else the configured one.
        default_kw = sc.safe_power_limit_kw if sc.safe_power_limit_kw is not None else sc.site_power_limit_kw
        if default_kw is not None:
            site.power_limit_kw = site.default_power_kw = default_kw
        if sc.site_current_limit_a is not None:
            site.current_limit_a = site.default_current_a = sc.site_current_limit_a
        if self.charging is not None:
            table.state.charging = self.charging
            bms = self.charging.site.bms  # kept across a restart: the other site point must not lose it
            if bms is not None:
                if bms.limit.power_w is not None:
                    site.power_limit_kw = bms.limit.power_w / 1000.0
                if bms.limit.current_a is not None:
                    site.current_limit_a = bms.limit.current_a
        table.persist = lambda values: self._persist(OFFSETS_SCOPE, values)
        table.writer = PointWrites(self.commands.run)
        table.write_wait_s = settings.bacnet.write_wait_s
        table.added.append(self._remember)
        # The gateway opens its OCPP port before this runs: chargers may already be reporting.
        # The points seen before the restart come back first, then registry events are followed
        # (no await in between), then the kept statuses and readings fill what no charger has
        # reported yet; `sync` adds what was reported before the subscription.
        seen = await self.history.kv_get(SEEN_SCOPE)
        for station in self.registry.added_stations():
            table.restore(station, _record(seen, station.charger_id))
        self._slots = {s.charger_id: s.slot for s in self.registry.added_stations()}
        # Counted once here; each slot change then adjusts the counts (`_count_not_exposed`).
        self.table.state.not_exposed = capacity.counts([s for s in self._slots.values() if s is not None],
                                                       self.settings)
        self.registry.subscribe(self.on_registry_change)
        self._statuses = await restore_last_known(self.history, self.registry.added_stations())
        table.sync(self.registry)
        for station in self.registry.added_stations():
            self._keep_statuses(station.charger_id)  # reported before the subscription
        self._restore_bms_command()
        self._notify_not_exposed()
        self.spawn(self._refresh_dynamic(), "points: values that change with time")

    async def start_bacnet(self) -> None:
        """The BACnet device, with every object built before it answers (`BacnetServer.start`).

        The gateway calls this after opening the OCPP port: building ~49,000 objects for 418
        chargers takes seconds, and chargers reconnecting meanwhile fill their points in."""
        if self.settings.bacnet.enabled:
            device = await (self._bacnet_import or asyncio.to_thread(_import_bacnet))
            self.bacnet = device.BacnetServer(self.settings.bacnet, self.table, self.spawn)
            self.port = await self.bacnet.start()

    def _restore_bms_command(self) -> None:
        """A BMS limit smart charging kept across the restart is a command in the site points'
        priority array again, so BACnet's present-value and priority-array and the Modbus
        register show the same value (issue 13 item 6) without the BMS writing again."""
        charging = self.charging
        bms = charging.site.bms if charging is not None else None
        if bms is None:
            return
        priority = bms.priority or self.settings.modbus.bacnet_priority
        power_kw = bms.limit.power_w / 1000.0 if bms.limit.power_w is not None else None
        for key, value in (("PowerLimit", power_kw), ("CurrentLimit", bms.limit.current_a)):
            point = self.table.get(f"Site-{key}")
            if point is not None and value is not None:
                self.table.restore_command(point, value, priority)

    async def stop(self) -> None:
        """Stop BACnet, then wait for the persisting still under way (a stop never loses an offset)."""
        if self.bacnet is not None:
            await self.bacnet.stop()
        await self.flush()

    async def _refresh_dynamic(self) -> None:
        """Values that change with time alone (a session's duration, the last heartbeat): told
        to both protocols as one change, from here."""
        while True:
            await asyncio.sleep(DYNAMIC_REFRESH_S)
            self.tell_dynamic()

    def tell_dynamic(self) -> None:
        """Tell both protocols the time-dependent points once (kept by `_track_dynamic`)."""
        self.table.notify(list(self._dynamic.values()))

    def _track_dynamic(self, points: list[Point]) -> None:
        self._dynamic.update((p.uid, p) for p in points if p.spec.dynamic)

    def _untrack_dynamic(self, points: list[Point]) -> None:
        for p in points:
            if self._dynamic.get(p.uid) is p:
                del self._dynamic[p.uid]

    def _persist(self, scope: str, values: dict[str, str]) -> None:
        """Gather new offsets and seen records: a new charger's points (38 for an AC wallbox) go
        to the store in ONE background write, which yields to the chargers' transaction commits.
        `flush` waits for it, so a stop never loses an offset."""
        self._unsaved.setdefault(scope, {}).update(values)
        self._schedule_save()

    def _schedule_save(self) -> None:
        if self._saver is None or self._saver.done():
            self._saver = self.spawn(self._save(), "persist points")

    def _take_unsaved(self) -> dict[str, dict[str, str]]:
        """Everything to write, the seen records computed once per charger (not once per point)."""
        changed, self._seen_changed = self._seen_changed, set()
        for charger_id in changed:
            record = json.dumps(self.table.seen(charger_id), sort_keys=True)
            if self._seen.get(charger_id) != record:
                self._seen[charger_id] = self._unsaved.setdefault(SEEN_SCOPE, {})[charger_id] = record
        values, self._unsaved = self._unsaved, {}
        return values

    async def _save(self) -> None:
        while values := self._take_unsaved():
            await self.history.kv_put_many(values, background=True, origin="points")

    async def flush(self) -> None:
        while self._saver is not None and not self._saver.done():
            await asyncio.gather(self._saver, return_exceptions=True)
        values = self._take_unsaved()  # left by a saver that was cancelled or failed
        if values:
            await self.history.kv_put_many(values, background=True, origin="points")

    def charging_changed(self, charger_id: str | None) -> None:
        """The controller changed something: refresh its points (one charger's, or all).

        One charger's are looked up, not filtered from every point: the controller tells each
        ended session (200 at once when chargers reconnect), and sorting all points each time
        held the loop for seconds (a SIGTERM took 5.7 to 9.7 s with 200 chargers)."""
        pts = self.table.points() if charger_id is None else self.table.points_of(charger_id) + self.table.points_of("")
        self.table.notify([p for p in pts if p.spec.key.startswith("SC-") or p.spec.kind == "site"])

    def on_registry_change(self, event: ChangeEvent) -> None:
        """Registry events arrive inside OCPP handlers: a points fault must never break those."""
        try:
            self.table.handle(event, self.registry)
            if event.kind == ChangeKind.CONNECTOR:
                self._keep_statuses(event.charger_id)
            elif event.kind in (ChangeKind.ADDED, ChangeKind.REMOVED, ChangeKind.STATION):
                self._count_not_exposed(event.charger_id)
        except Exception:
            log.exception("point table update failed for %s (%s)", event.charger_id, event.kind)

    def _count_not_exposed(self, charger_id: str) -> None:
        """Keep the site's "not on BACnet / Modbus" counts up to date when one charger's slot
        changes: its old slot's share out, its new slot's in (no recount over every charger)."""
        station = self.registry.get(charger_id)
        slot = station.slot if station is not None and station.slot is not None else None
        old = self._slots.get(charger_id)
        if old == slot:
            return
        self._slots[charger_id] = slot
        before = self.table.state.not_exposed
        gone = capacity.counts([old] if old is not None else [], self.settings)
        came = capacity.counts([slot] if slot is not None else [], self.settings)
        new = {k: before.get(k, 0) - gone[k] + came[k] for k in gone}
        if new != before:
            self.table.state.not_exposed = new
            self._notify_not_exposed()

    def _notify_not_exposed(self) -> None:
        """The site's counts are site points (charger id ""): only those are looked at."""
        self.table.notify([p for p in self.table.points_of("") if p.spec.key.startswith("Chargers-")])

    def _keep_statuses(self, charger_id: str) -> None:
        """Persist a device's connector statuses when they change (restored after a restart)."""
        station = self.registry.get(charger_id)
        if station is None or station.slot is None:
            return
        record = status_record(station)
        if self._statuses.get(charger_id) != record:
            self._statuses[charger_id] = record
            self._persist(STATUS_SCOPE, {charger_id: record})

    def _remember(self, points: list[Point]) -> None:
        """Persist which connectors, meter values and keys a charger has, when that changes."""
        changed = {p.charger_id for p in points if p.charger_id}
        if changed:
            self._seen_changed |= changed
            self._schedule_save()

    def add_routes(self, app: web.Application) -> None:
        """GET /api/points (every point with its value), GET /api/points/meta (the admin app)."""
        from aiohttp import web

        async def list_points(request: web.Request) -> web.Response:
            return web.json_response(point_rows(self.table))

        async def meta(request: web.Request) -> web.Response:
            """What exports need of the running gateway besides the table (issue 14 item 9)."""
            devices = [(s.slot, s.charger_id) for s in self.registry.added_stations()]
            return web.json_response(export_meta(self.settings, devices))
        app.router.add_get("/api/points", list_points)
        app.router.add_get("/api/points/meta", meta)



def _import_bacnet() -> Any:
    """bacpypes3 and BAC0 (about half a second of imports, notes 1.4), for a worker thread."""
    import importlib
    importlib.import_module("BAC0")
    return importlib.import_module("points.bacnet.device")


def _record(seen: dict[str, str], charger_id: str) -> dict[str, Any]:
    try:
        return json.loads(seen.get(charger_id) or "{}")
    except ValueError:
        log.warning("ignoring unreadable seen-points record of %s", charger_id)
        return {}


async def load_state(table: PointTable, history: HistoryStore) -> None:
    """Persisted offsets into a fresh table."""
    table.load(await history.kv_get(OFFSETS_SCOPE))


async def table_from_db(path: str | Path, with_devices: bool = False) -> Any:
    """The table the gateway would build, from a database file (slots, offsets, seen points);
    with `with_devices`, also the (slot, charger id) list."""
    from gateway.history.store import HistoryStore
    store = HistoryStore(path)
    await store.open()
    try:
        registry, table = Registry(), PointTable(clock=lambda: 0.0)
        await load_state(table, store)
        seen = await store.kv_get(SEEN_SCOPE)
        devices = await store.devices()
        for device in devices:
            station = registry.ensure(device["charger_id"])
            station.slot, station.registration = device["slot"], device["registration"]
            table.restore(station, _record(seen, station.charger_id))
        table.sync(registry)
        if with_devices:
            return table, [(int(d["slot"]), str(d["charger_id"])) for d in devices]
        return table
    finally:
        await store.close()


def export_meta(settings: Any, devices: list[tuple[int, str]]) -> dict[str, Any]:
    """The settings and slots exports use: the BACnet device and the Modbus map options."""
    b, m = settings.bacnet, settings.modbus
    return {"bacnet": {"device_id": b.device_id, "device_name": b.device_name, "description": b.description},
            "modbus": {"host": m.host, "port": m.port, "word_order": m.word_order,
                       "mirror_inputs_in_holding": m.mirror_inputs_in_holding,
                       "unit_id_per_charger": m.unit_id_per_charger, "bacnet_priority": m.bacnet_priority},
            "devices": sorted(devices)}


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
            "value": table.read(p), "reliable": table.reliable(p), "reliability": table.reliability(p),
        })
    return rows
