"""The gateway process: one asyncio loop holding the OCPP server, the store and the live model.

`Gateway` wires the parts together and holds the few policies that need more than one part:
which registration answer a charger gets, how an idTag is authorized, what happens when a
charger connects, boots or disconnects. Extensions (operations, points, smart charging) hook in
through `boot_hooks`, `transaction_hooks` and `registry.subscribe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from gateway.chargers.capabilities import capabilities_of
from gateway.chargers.quirks import bundled_quirks
from gateway.errors import ChargerUnavailable, OperationError
from gateway.gc_policy import GcPolicy
from gateway.history.store import HistoryStore
from gateway.model import authorize
from gateway.model.credentials import stored_key
from gateway.model.station import BootInfo, Registry, Station
from gateway.model.timestamps import parse_timestamp
from gateway.ocpp.server import OcppServer
from gateway.ocpp.session import Session
from gateway.operator.token import ensure_charger_password
from gateway.settings import Settings

log = logging.getLogger(__name__)
TASK_STOP_TIMEOUT_S = 1.0  # of the 5 s a stop may take; the sockets' close has 2 s
QUIRK_SCOPE = "quirk"  # kv scope: charger id -> quirk name an operator assigned
BootHook = Callable[[Session, str], Awaitable[None]]
TransactionHook = Callable[[Station, int], Awaitable[None]]


class Gateway:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.registry = Registry(clock)
        self.history = HistoryStore(settings.database.path, clock)
        self.sessions: dict[str, Session] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, authorize.TagEntry] = {}
        self.boot_hooks: list[BootHook] = []
        self.transaction_hooks: list[TransactionHook] = []
        self.start_hooks: list[Callable[[], Awaitable[None]]] = []  # after the store, before OCPP
        self.stop_hooks: list[Callable[[], Awaitable[None]]] = []
        self.admin_routes: list[Callable[[Any], None]] = []
        self.ocpp = OcppServer(self)
        self.ports: dict[str, int] = {}
        self.started = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.charging: Any = None  # the smart-charging controller, when installed
        self.gc_policy = GcPolicy(settings.ocpp.gc_freeze_interval_s)
        self._new_auth_keys: dict[str, str] = {}  # charger id -> a key being changed right now
        self.site_password_key: str | None = None  # stored form of ocpp.default_password

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        await self.history.open()
        site_password = ensure_charger_password(self.settings)
        if site_password:
            self.site_password_key = await asyncio.to_thread(stored_key, site_password)
        await self.reload_devices()
        await self.reload_quirks()
        await self.reload_transactions()
        await self.reload_tags()
        for hook in self.start_hooks:
            await hook()
        self.ports["ocpp"] = await self.ocpp.start()
        if self.settings.admin.enabled:
            from gateway.operator.api import AdminServer
            admin = AdminServer(self)
            self.ports["admin"] = await admin.start()
            self.stop_hooks.append(admin.stop)
        self.gc_policy.start(self.clock())
        self.spawn(self._housekeeping(), "housekeeping")
        self.started.set()
        log.info("OCPP central system listening on %s:%s (%s)", self.settings.ocpp.host,
                 self.ports["ocpp"], "wss" if self.settings.ocpp.ssl_enabled else "ws")

    async def stop(self) -> None:
        for hook in reversed(self.stop_hooks):
            with contextlib.suppress(Exception):
                await hook()
        await self.ocpp.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            # Bounded: a task that ignores its cancel must not hang the stop (SIGTERM, Ctrl-C).
            _done, stuck = await asyncio.wait(list(self._tasks), timeout=TASK_STOP_TIMEOUT_S)
            for task in stuck:
                log.error("task %s did not end when cancelled; stopping without it", task.get_name())
        await self.history.close()  # commits what is queued: nothing acknowledged is lost

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """Start a background task, keep a reference, and log its failure with context."""
        task = asyncio.create_task(coro, name=what)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("task %s failed", what, exc_info=t.exception())
        task.add_done_callback(done)
        return task

    async def _housekeeping(self) -> None:
        """Mark silent chargers offline, apply retention (the log is committed with each message)."""
        db = self.settings.database
        last_retention = 0.0
        while True:
            await asyncio.sleep(db.log_flush_interval_s)
            try:
                self.gc_policy.tick(self.clock())
                for station in list(self.registry.stations.values()):
                    self.registry.refresh_liveness(station, self.settings.ocpp.offline_after_heartbeats)
                if self.clock() - last_retention > 3600:
                    last_retention = self.clock()
                    await self.history.apply_retention(db.general_log_retention_days,
                                                       db.general_log_max_rows,
                                                       db.meter_sample_retention_days)
            except Exception:
                log.exception("housekeeping failed; retrying")

    # --- device database and tags --------------------------------------------------------
    async def reload_devices(self) -> None:
        self.devices = {d["charger_id"]: d for d in await self.history.devices()}
        for station in self.registry.stations.values():
            if station.charger_id not in self.devices and station.slot is not None:
                self.registry.update_station(station, slot=None,
                                             registration=self.settings.registration.guest_response)
        for charger_id, device in self.devices.items():
            station = self.registry.ensure(charger_id)
            boot = station.boot
            if not boot.vendor and device.get("vendor"):
                boot = BootInfo(**{k: device.get(k) or "" for k in BootInfo.__dataclass_fields__})
            self.registry.update_station(station, slot=device["slot"],
                                         registration=device["registration"], boot=boot)

    async def reload_quirks(self) -> None:
        for charger_id, name in (await self.history.kv_get(QUIRK_SCOPE)).items():
            if name:
                self.registry.update_station(self.registry.ensure(charger_id), quirk_name=name)

    async def assign_quirk(self, charger_id: str, name: str | None) -> None:
        """Use the quirk file `name` for this charger (None: match it on the BootNotification).

        For chargers no boot identifies, such as the AC wallbox (manual 001 names no vendor/model).
        """
        if name and bundled_quirks().by_name(name) is None:
            known = ", ".join(sorted(q.name for q in bundled_quirks()))
            raise OperationError(f"no quirk named {name!r}; known: {known}")
        await self.history.kv_put(QUIRK_SCOPE, {charger_id: name or ""})
        self.registry.update_station(self.registry.ensure(charger_id), quirk_name=name or None)
        self.history.log(charger_id, "DeviceChanged", f"quirk: {name or 'matched on the boot'}")

    async def reload_transactions(self) -> None:
        """Put the transactions still active in the store back on their connectors (at start), so
        that after a restart remote stop by connector and smart charging still see them."""
        for row in await self.history.active_transactions():
            station = self.registry.ensure(row["identifier"])
            self.registry.update_connector(
                station, int(row["connector_id"]), transaction_id=int(row["transaction_id"]),
                id_tag=row["id_tag"], session_start=parse_timestamp(row.get("start_time")),
                meter_start_wh=row.get("start_meter_wh"))

    async def reload_tags(self) -> None:
        tags = {}
        for row in await self.history.tags():
            expiry = None
            if row.get("expiry"):
                with contextlib.suppress(ValueError):
                    expiry = datetime.fromisoformat(row["expiry"].replace("Z", "+00:00"))
                    if expiry.tzinfo is None:  # stored as a date alone before it was checked: UTC
                        expiry = expiry.replace(tzinfo=UTC)
            tags[row["id_tag"]] = authorize.TagEntry(row["id_tag"], row["listed"], expiry,
                                                     row.get("parent_id_tag") or "", row.get("note") or "")
        self.tags = tags

    async def add_device(self, charger_id: str, registration: str = "Accepted",
                         auth_key: str | None = None) -> dict[str, Any]:
        """Add a charger to the device database: it gets the next slot, which never changes."""
        station = self.registry.get(charger_id)
        boot = {k: getattr(station.boot, k) for k in BootInfo.__dataclass_fields__} if station else {}
        device = await self.history.add_device(charger_id, registration, boot)
        if auth_key is not None:
            await self.history.set_auth_key(charger_id, auth_key or None)
        await self.reload_devices()
        self.history.log(charger_id, "DeviceAdded", f"slot {device['slot']}; registration {registration}")
        self._ask_for_new_boot(charger_id)
        return self.devices[charger_id]

    async def update_device(self, charger_id: str, **fields: Any) -> dict[str, Any]:
        quirk = fields.pop("quirk", False)
        if "auth_key" in fields:
            await self.history.set_auth_key(charger_id, fields.pop("auth_key") or None)
        if await self.history.update_device(charger_id, **fields) is None:
            raise OperationError(f"{charger_id} is not in the device database")
        await self.reload_devices()
        if fields:
            self.history.log(charger_id, "DeviceChanged", "; ".join(f"{k}: {v}" for k, v in fields.items()))
        if quirk is not False:
            await self.assign_quirk(charger_id, quirk or None)
        self._ask_for_new_boot(charger_id)
        return self.devices[charger_id]

    async def remove_device(self, charger_id: str) -> bool:
        removed = await self.history.remove_device(charger_id)
        await self.reload_devices()
        if removed:
            self.history.log(charger_id, "DeviceRemoved", "removed from the device database")
            self._ask_for_new_boot(charger_id)  # it is a guest from its next boot (OCPP 1.6 4.2)
        return removed

    def _bound_guests(self) -> None:
        """Keep the discovery list bounded (registration.max_guests): a flood of made-up ids must
        not grow memory for good."""
        for charger_id in self.registry.drop_oldest_guests(self.settings.registration.max_guests):
            log.info("%s: dropped from the discovery list (more than %d guests)", charger_id,
                     self.settings.registration.max_guests)

    async def forget_guest(self, charger_id: str) -> bool:
        """Remove a guest from the discovery list; a connected one is disconnected first."""
        if charger_id in self.devices:
            raise OperationError(f"{charger_id} is in the device database: remove it there first")
        session = self.sessions.get(charger_id)
        if session is not None:
            await session.ws.close(1000, "removed by the operator")
            await session.closed.wait()
        if not self.registry.forget(charger_id):
            return False
        self.history.log(charger_id, "GuestRemoved", "removed from the discovery list by the operator")
        return True

    def _ask_for_new_boot(self, charger_id: str) -> None:
        """A connected charger whose answer changed is asked to boot again now (TriggerMessage,
        allowed while Pending, OCPP 1.6 section 4.2.1) instead of after its retry interval.
        Chargers that refuse (zappi sends nothing until Accepted) boot at their interval."""
        session = self.sessions.get(charger_id)
        if session is None or session.closed.is_set():
            return
        if session.station.boot_status == self.boot_response(session.station):
            return

        async def trigger() -> None:
            try:
                await session.call("TriggerMessage", {"requestedMessage": "BootNotification"})
            except OperationError as exc:
                log.info("%s: no early boot: %s", charger_id, exc)
        self.spawn(trigger(), f"boot trigger for {charger_id}")

    def auth_keys(self, charger_id: str) -> tuple[list[str], str | None]:
        """The stored key of a charger (empty: none) and a new key being set right now (or None)."""
        device = self.devices.get(charger_id)
        stored = device.get("auth_key_hash") if device else None
        return ([stored] if stored else []), self._new_auth_keys.get(charger_id)

    def expect_auth_key(self, charger_id: str, key: str) -> None:
        """Let `key` in as well while ChangeConfiguration(AuthorizationKey) is under way (kept in
        memory only for that call, in both its text and whitepaper hex forms)."""
        self._new_auth_keys[charger_id] = key

    async def renew_auth_key(self, charger_id: str, key: str) -> None:
        """Store a key that was just used again, in the current form (scrypt, text and hex)."""
        await self.history.set_auth_key(charger_id, key)
        await self.reload_devices()
        self.history.log(charger_id, "AuthorizationKey", "stored key renewed (scrypt)")

    async def settle_auth_key(self, charger_id: str, key: str | None) -> None:
        """The charger took the new `key` (stored as its password), or None: it did not."""
        try:
            if key is None:
                return
            if charger_id not in self.devices:
                self.history.log(charger_id, "AuthorizationKey",
                                 "new key not stored: the charger is not in the device database", "warning")
                return
            await self.history.set_auth_key(charger_id, key)
            await self.reload_devices()
            self.history.log(charger_id, "AuthorizationKey", "new authorization key stored")
        finally:
            self._new_auth_keys.pop(charger_id, None)

    # --- policies the sessions ask ---------------------------------------------------------
    def boot_response(self, station: Station) -> str:
        device = self.devices.get(station.charger_id)
        if device is not None:
            return device["registration"]
        return self.settings.registration.guest_response

    def authorize(self, id_tag: str) -> dict[str, str]:
        return authorize.decide(self.settings.authorize.policy, id_tag, self.tags)

    def session_for(self, charger_id: str) -> Session:
        """The live session of a charger, or ChargerUnavailable; `Session.call` refuses what its
        registration does not allow (gateway/model/registration.py)."""
        session = self.sessions.get(charger_id)
        if session is None or session.closed.is_set():
            raise ChargerUnavailable(f"{charger_id} is offline")
        return session

    # --- connection lifecycle -----------------------------------------------------------
    async def run_session(self, charger_id: str, websocket: Any, subprotocol: str, peer: str,
                          authenticated: bool = False) -> None:
        old = self.sessions.get(charger_id)
        if old is not None:
            # A charger that reconnects has usually lost the old socket without a close; the
            # new connection wins and the old one is closed cleanly (not counted as a fault).
            self.history.log(charger_id, "Connection", f"replaced by a new connection from {peer}")
            await old.ws.close(1000, "replaced by a new connection")
        station = self.registry.ensure(charger_id)
        station.registration = self.boot_response(station)
        session = Session(self, station, websocket, authenticated)
        self.sessions[charger_id] = session
        self.registry.update_station(station, subprotocol=subprotocol, remote_address=peer)
        self.registry.set_online(station, True)
        if station.is_guest:
            self._bound_guests()
        self.history.log(charger_id, "Connected", f"from {peer}; subprotocol {subprotocol or 'none'}")
        self.spawn(self.ask_for_status(session, after_boot=False), f"status check for {charger_id}")
        log.info("%s: connected from %s", charger_id, peer)
        try:
            await session.serve()
        finally:
            if self.sessions.get(charger_id) is session:
                del self.sessions[charger_id]
                code = websocket.close_code
                reason = f"websocket closed (code {code})" if code is not None else "connection lost"
                if self.registry.get(charger_id) is station:  # not forgotten meanwhile
                    self.registry.set_online(station, False, reason,
                                             self.settings.ocpp.websocket_lost_connection_fault)
                self.history.log(charger_id, "Disconnected", reason)
                log.info("%s: disconnected (%s)", charger_id, reason)

    async def remember_boot(self, station: Station) -> None:
        """Keep what an added charger says it is (and the quirk that matched it) in the device
        database, so its adaptations apply from the first message after a gateway restart, even
        when it reconnects without booting. Written only when it changed."""
        device = self.devices.get(station.charger_id)
        if device is None:
            return
        boot = {k: getattr(station.boot, k) or None for k in BootInfo.__dataclass_fields__}
        boot["quirk_matched"] = capabilities_of(station).quirk_name
        if all(device.get(k) == v for k, v in boot.items()):
            return
        await self.history.save_boot(station.charger_id, boot)
        device.update(boot)

    async def on_boot(self, session: Session, status: str) -> None:
        """Queue follow-up work (configuration read, profile re-apply) for after the answer.

        It starts only once the BootNotification answer is on the wire (lbbrhzn#1503: Wallbox
        loops when GetConfiguration arrives before its boot is answered).
        """
        for hook in self.boot_hooks:
            session.after_answer(lambda h=hook: h(session, status), "boot follow-up")

    async def ask_for_status(self, session: Session, after_boot: bool) -> None:
        """Ask a charger that has not reported its connectors for StatusNotification.

        Many chargers send neither BootNotification nor StatusNotification after a mere
        reconnect, and some none after a triggered boot (real-firmware notes); without this the
        connectors would keep the status kept from before a restart, flagged as not confirmed.
        """
        await asyncio.sleep(self.settings.ocpp.status_trigger_after_s)  # the charger's own reports first
        if session.closed.is_set() or session.status_seen or self.boot_response(session.station) != "Accepted":
            return
        if not after_boot and session.booted:
            return  # the boot's own check asks, counted from the boot
        try:
            answer = await session.call("TriggerMessage", {"requestedMessage": "StatusNotification"})
            self.history.log(session.charger_id, "StatusRequested",
                             f"no StatusNotification since connecting: TriggerMessage {answer.get('status')}")
        except OperationError as exc:
            log.info("%s: StatusNotification not triggered: %s", session.charger_id, exc)

    async def on_transaction_change(self, station: Station, connector_id: int) -> None:
        for hook in self.transaction_hooks:
            self.spawn(hook(station, connector_id), f"transaction hook for {station.charger_id}")

