"""Smart charging at run time: the one owner of the site limit, the site shares and the writes.

The pure parts decide (`limit.decide`: which limit is in force; `allocator.allocate`: the
shares; `profiles.build_profile`: what each charger accepts; `guard.WriteGuard`: whether a write
is worth it); this module does the I/O around them: it keeps the limit wishes (persisted, a BMS
command included), coalesces BMS writes, re-allocates when sessions start or stop, when a
settled measurement moves, when the limit changes and when a charger reboots, sends the
profiles, records what each charger accepted, and verifies with GetCompositeSchedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.chargers.capabilities import ChargerCapabilities, capabilities_of
from gateway.charging.allocator import AllocatorConfig, RotationState, allocate
from gateway.charging.guard import WriteGuard
from gateway.charging.held import HeldProfiles
from gateway.charging.inputs import ConnectorControl, counted_current, session_input
from gateway.charging.limit import LimitRecord
from gateway.charging.link import ChargerLink
from gateway.charging.niagara import OperatorProfiles, settings_dict
from gateway.charging.profiles import NiagaraProfileSettings
from gateway.charging.sending import ProfileSender, Send
from gateway.charging.site import SiteWishes
from gateway.model.station import ChangeEvent, Station

if TYPE_CHECKING:
    from gateway.history.store import HistoryStore
    from gateway.model.station import Clock, Registry
    from gateway.ocpp.session import ChargerSession
    from gateway.settings import Settings
    from gateway.tasks import Spawn


log = logging.getLogger(__name__)
MEASURED_CHANGE_A = 1.0  # re-allocate when a session's current moves by this much
REALLOCATE_MIN_INTERVAL_S = 0.1
STARTING_S = 5.0  # a start whose answer was never sent (the charger went away) counts after this


class ChargingController(HeldProfiles, ProfileSender):
    def __init__(self, settings: Settings, registry: Registry, history: HistoryStore, clock: Clock,
                 chargers: ChargerLink, device_of: Callable[[str], dict[str, Any]], spawn: Spawn,
                 changed: Callable[[str | None], None] = lambda charger_id: None) -> None:
        self.settings = settings
        self.registry = registry
        self.history = history
        self.clock = clock
        self.chargers = chargers
        self.device_of = device_of  # the device row (priority, weight) of a charger, {} for a guest
        self.spawn = spawn
        self.changed = changed  # told after each change (one charger's id, or None: the site)
        self.operator = OperatorProfiles(self)
        self.profiles = self.operator.settings  # (charger, connector) -> Niagara 6.3 settings
        self.site = SiteWishes(settings.smart_charging, lambda: self.clock(), history,
                               lambda: self.notify(None))
        self.rotation = RotationState()
        self.control: dict[tuple[str, int], ConnectorControl] = {}
        self.guards: dict[str, WriteGuard] = {}
        self._measured: dict[tuple[str, int], float] = {}
        self._site_profiles: set[tuple[str, int]] = set()  # site profiles that outlive a transaction
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()
        self._stopping = False  # the gateway stops: no pass starts any more
        self._restored: set[tuple[str, int]] = set()  # shares from before a restart, not yet verified
        self._starting: dict[tuple[str, int], float] = {}  # connector -> when its start was being answered
        self._earlier: dict[str, tuple[list[float], list[dict[str, Any]]]] = {}  # stored before a restart

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        await self.operator.load()
        await self.site.load()
        await self._load_held()
        self.spawn(self._worker(), "smart charging")

    async def stop(self) -> None:
        """Store the wishes, and what each charger holds and its recent writes (its budget goes on).

        The pass in flight finishes first, and no other starts: a charger stores and applies a
        profile before it answers, so a write whose answer was still unread would be stored as
        not held, and the restarted gateway would count that session at its old share while the
        charger applies the new one (a raise: the others would get the difference twice)."""
        self._stopping = True
        try:
            async with asyncio.timeout(self.settings.ocpp.response_timeout_s):
                async with self._lock:
                    pass
        except TimeoutError:
            log.warning("smart charging: a pass still waits for a charger's answer; stopping anyway")
        await self.site.save()
        await self._store_held(*self.guards)

    # --- commands (CLI, admin API, BMS points) --------------------------------------------
    async def set_site_limit(self, power_kw: float | None, current_a: float | None,
                             source: str = "manual", priority: int | None = None) -> LimitRecord:
        """Write a site-limit wish; None for both removes it. A BMS command has a watchdog.

        BMS writes are coalesced: each updates the wish at once, and the worker writes profiles
        once the writes pause (the last value within `coalesce_s` wins) and stores the wish then.
        Clearing the manual limit drops every held-back write of the site shares.
        """
        record = self.site.write(power_kw, current_a, source, priority)
        if source == "manual":
            if record.limit.unlimited:
                for guard in self.guards.values():
                    guard.clear_pending()
            await self.site.save()
            self.history.log("site", "SiteLimit", f"manual: power {power_kw} kW, current {current_a} A")
        self._dirty.set()
        self.notify(None)
        return self.in_force

    def settings_for(self, charger_id: str, connector_id: int) -> NiagaraProfileSettings:
        """The Niagara settings of a charger (connector 0) or connector; defaults when unset."""
        return self.operator.get(charger_id, connector_id)

    async def configure(self, charger_id: str, connector_id: int, **changes: Any) -> NiagaraProfileSettings:
        """Change Niagara smart-charging properties; sent when enabled, cleared when disabled."""
        return await self.operator.configure(charger_id, connector_id, **changes)

    # --- events -------------------------------------------------------------------------
    async def on_boot(self, session: ChargerSession, status: str) -> None:
        """A charger rebooted: it lost its profiles, so write them again."""
        if status != "Accepted":
            return
        guard = self.guards.get(session.charger_id)
        if guard is not None:
            guard.forget()
            self._remember_held(session.charger_id)
        for (charger_id, _connector), control in self.control.items():
            if charger_id == session.charger_id:
                control.written_a = control.written_tx = control.applied_at = None
                control.measured_a = control.measured_under_a = None
        self._site_profiles = {k for k in self._site_profiles if k[0] != session.charger_id}
        for settings in self.operator.enabled(session.charger_id):
            await self.operator.send(session.station, settings)
        self._dirty.set()

    def starting(self, charger_id: str, connector_id: int) -> None:
        """A StartTransaction is being answered: no share for it until the charger has the answer."""
        self._starting[(charger_id, connector_id)] = self.clock()

    async def on_transaction(self, station: Station, connector_id: int) -> None:
        self._starting.pop((station.charger_id, connector_id), None)
        if station.slot is not None:  # guests take no share of the site limit
            self._dirty.set()

    def on_registry_change(self, event: ChangeEvent) -> None:
        if event.kind == "station":  # online or offline: its sessions are counted differently
            self._dirty.set()
            return
        if event.kind != "meter" or not any(k.measurand == "Current.Import" for k in event.key):
            return
        station = self.registry.get(event.charger_id)
        if station is None or station.slot is None:
            return  # guests take no share of the site limit
        key = (event.charger_id, event.connector_id or 0)
        control, connector = self.control.get(key), station.connectors.get(key[1])
        if control is None or connector is None or connector.transaction_id is None:
            return
        measured = counted_current(station, key[1], connector.session_start, control.applied_at,
                                   self.settings.smart_charging.settle_s)
        if measured is not None and abs(measured - self._measured.get(key, -100.0)) >= MEASURED_CHANGE_A:
            self._measured[key] = measured
            self._dirty.set()

    # --- the worker ---------------------------------------------------------------------
    async def _worker(self) -> None:
        """Re-allocate on demand, and once a second check the watchdog and held-back writes."""
        loop = asyncio.get_running_loop()
        coalesce_s = self.settings.smart_charging.coalesce_s
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the event's result
            # when a cancel arrives just as the event fires, and the worker looped on after
            # Gateway.stop() cancelled it (a hung test teardown).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._dirty.wait()
            # BMS writes in quick succession: wait for a pause, the last value wins.
            for _ in range(4):
                quiet = self.site.bms_written_mono + coalesce_s - loop.time()
                if quiet <= 0:
                    break
                await asyncio.sleep(quiet)
            self._dirty.clear()
            try:
                if self.site.unsaved:
                    await self.site.save()
                self.site.decide()
                await self.reallocate()
            except Exception:
                log.exception("smart charging pass failed")
            # Coalesce: in a reconnect storm thousands of starts would each ask for a pass.
            await asyncio.sleep(REALLOCATE_MIN_INTERVAL_S)

    async def reallocate(self) -> None:
        """Share the limit in force among charging sessions and write what changed."""
        async with self._lock:
            if self._stopping:
                return
            now = self.clock()
            sessions, stations = self._sessions(now)
            self._end_sessions(set(stations.values()))
            for key in [k for k in self._restored if k in stations.values() and self.registry.get(k[0]).online]:
                self._restored.discard(key)
                self.spawn(self._verify_restored(*key), f"verify the restored share of {key[0]}")
            unlimited = self.site.in_force.limit.unlimited
            if unlimited and not self._site_profiles and not any(
                    c.requested_a is not None for c in self.control.values()):
                return
            voltage = self.settings.smart_charging.nominal_voltage_v
            config = AllocatorConfig(newcomer_reserve_a=self._reserve_a())
            result = allocate(self.site.in_force.limit, sessions, voltage, self.rotation, now, config)
            # A session pinned at what its charger still applies (write budget used) is counted at
            # that value; what it should get once it can be written is the unpinned share, kept in
            # its write guard as the newest wish.
            pinned = {s.key: s.fixed_a for s in sessions if s.fixed_a is not None}
            wishes = allocate(self.site.in_force.limit, [dataclasses.replace(s, fixed_a=None) for s in sessions],
                              voltage, self.rotation, now, config).allocations if pinned else {}
            self.rotation = result.state
            cuts: list[Send] = []
            others: list[Send] = []
            raises: list[Send] = []
            if unlimited:  # the limit was lifted: remove the site profiles still on the chargers
                for key in sorted(self._site_profiles | {k for k, c in self.control.items()
                                                         if c.requested_a is not None}):
                    self.control.setdefault(key, ConnectorControl()).requested_a = None
                    raises.append(functools.partial(self._clear_site_profile, *key))
            for key, allocation in result.allocations.items():
                control = self.control[stations[key]]
                control.allocation_reason = allocation.reason
                station = self.registry.get(stations[key][0])
                if unlimited or station is None or not station.online:
                    continue  # an offline charger is counted at what it applies, and told later
                control.requested_a = (wishes[key] if key in pinned else allocation).amps
                # A pinned session was counted at what it applies: it may be told less (a cut that
                # need not land), never more; its full wish waits until it is no longer pinned.
                amps = min(control.requested_a, pinned[key] or 0.0) if key in pinned else control.requested_a
                send = functools.partial(self._send_share, *stations[key], amps)
                lowers = control.lowers_to(amps, self._start_held(stations[key][0]))
                (others if key in pinned else cuts if lowers else raises).append(send)
            if not unlimited:
                start_cuts, start_others = self._start_defaults(now)
                cuts, others = cuts + start_cuts, others + start_others
            await self._send_in_order(cuts, others, raises, now)
            self.notify(None)

    def _sessions(self, now: float) -> tuple[list[Any], dict[str, tuple[str, int]]]:
        """One allocator session per connector with an active transaction on an added charger."""
        sessions, keys = [], {}
        cfg = self.settings.smart_charging
        for station in self.registry.added_stations():
            caps = capabilities_of(station)
            if not caps.supports_action("SetChargingProfile"):
                continue
            guard = self._guard(station.charger_id, caps)
            # Pinned at what it applies: a charger that cannot take a new value now (budget used)
            # or cannot be told (offline: it goes on charging at its last profile)...
            budget_used = bool(guard.pending) and guard.writes_in_window(now) >= guard.writes_per_hour
            for connector in station.connectors.values():
                if connector.connector_id == 0 or connector.transaction_id is None \
                        or now - self._starting.get((station.charger_id, connector.connector_id), -1e9) < STARTING_S:
                    continue
                key = f"{station.charger_id}/{connector.connector_id}"
                keys[key] = (station.charger_id, connector.connector_id)
                control = self.control.setdefault(keys[key], ConnectorControl())
                if control.transaction_id not in (None, connector.transaction_id):
                    self._end_session(keys[key], control)
                control.transaction_id = connector.transaction_id
                # Or it refused its share for this transaction (it goes on at what it applies).
                refused = control.send_state in ("Rejected", "Failed")
                sessions.append(session_input(
                    key, station, connector.connector_id, caps, control,
                    self.device_of(station.charger_id), default_phases=cfg.default_phases,
                    settle_s=cfg.settle_s, pinned=not station.online or budget_used or refused,
                    start_a=self._start_held(station.charger_id)))
        return sessions, keys

    def _start_held(self, charger_id: str) -> float | None:
        """The start limit this charger accepted (its connector-0 TxDefaultProfile), if it holds
        one: what a session applies there until its own share lands."""
        if (charger_id, 0) not in self._site_profiles:
            return None
        return self.control[(charger_id, 0)].written_a

    def _reserve_a(self) -> float:
        """The newcomer reserve while a connector of an online charger is free to start a session."""
        idle = any(station.online and connector.connector_id > 0 and connector.transaction_id is None
                   for station in self.registry.added_stations() for connector in station.connectors.values())
        return self.settings.smart_charging.newcomer_reserve_a if idle else 0.0

    def _end_sessions(self, live: set[tuple[str, int]]) -> None:
        for key, control in self.control.items():
            if key not in live and control.transaction_id is not None:
                self._end_session(key, control)

    def _end_session(self, key: tuple[str, int], control: ConnectorControl) -> None:
        """A transaction ended or is gone: its share and its pending writes go with it."""
        guard = self.guards.get(key[0])
        if guard is not None and control.transaction_id is not None:
            guard.drop_transaction(control.transaction_id)
        self._measured.pop(key, None)
        self._restored.discard(key)
        control.end_session()
        self.notify(key[0])

    def _guard(self, charger_id: str, caps: ChargerCapabilities) -> WriteGuard:
        default = self.settings.smart_charging.profile_writes_per_hour
        guard = self.guards.get(charger_id)
        if guard is None:
            guard = self.guards[charger_id] = WriteGuard(caps, default_writes_per_hour=default)
            times, held = self._earlier.pop(charger_id, ([], []))
            guard.restore_writes(times, self.clock())
            guard.restore_held(held)
        # The budget follows what is known of the charger (its quirk may match only after its boot).
        guard.writes_per_hour = caps.profile_writes_per_hour or default
        return guard

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def notify(self, charger_id: str | None) -> None:
        self.changed(charger_id)

    # --- what operators and points see ------------------------------------------------------
    @property
    def in_force(self) -> LimitRecord:
        return self.site.in_force

    def site_view(self) -> dict[str, Any]:
        return self.site.view()

    def writes_of(self, charger_id: str) -> dict[str, Any]:
        """The flash-wear counters of one charger (points: SC-Writes, SC-WriteBudget)."""
        guard = self.guards.get(charger_id)
        if guard is None:
            return {"total": 0, "last_hour": 0, "budget_per_hour": None, "pending": 0, "rejected": 0}
        return {"total": guard.writes_total, "last_hour": guard.writes_in_window(self.clock()),
                "budget_per_hour": guard.writes_per_hour, "pending": len(guard.pending),
                "rejected": guard.rejections_total}

    def status(self) -> dict[str, Any]:
        """Everything an operator or a BMS point shows about smart charging (live sessions only)."""
        return {
            "site": self.site_view(),
            "connectors": {f"{c}/{n}": dataclasses.asdict(v) for (c, n), v in sorted(self.control.items())
                           if v.transaction_id is not None},
            "profiles": {f"{c}/{n}": settings_dict(v) for (c, n), v in sorted(self.profiles.items())},
            "writes": {c: self.writes_of(c) for c in sorted(self.guards)},
        }
