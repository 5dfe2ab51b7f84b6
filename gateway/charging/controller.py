"""Smart charging at run time: per-charger Niagara profiles and the shared site limit.

The pure parts decide (`allocator.allocate`, `smart_charging.build_profile`, `WriteGuard`); this
module does the I/O around them: it keeps the settings (persisted), decides which site limit is
in force (BMS, manual, fallback), re-allocates when sessions start or stop, when measured
current moves, when the limit changes and when a charger boots again, sends the profiles,
records what each charger accepted, and verifies with GetCompositeSchedule where it can.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.chargers.capabilities import ChargerCapabilities, capabilities_of
from gateway.charging.allocator import RotationState, SiteLimit, allocate
from gateway.charging.allocator import Session as AllocSession
from gateway.charging.profiles import (
    ChargingProfileKind,
    ChargingProfilePurpose,
    ChargingRateUnit,
    ProfileNotSupported,
    SmartChargingSettings,
    WriteGuard,
    build_clear,
    build_profile,
)
from gateway.errors import OperationError
from gateway.model.station import ChangeEvent, Station

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.ocpp.session import Session

log = logging.getLogger(__name__)
SITE_SCOPE, PROFILE_SCOPE = "site_limit", "smart_charging"
# Profiles the allocator writes use their own id and stack level so that an operator's Niagara
# profile (a ChargePointMaxProfile, say) and the site share combine on the charger (the lower wins).
SITE_PROFILE_ID = 900000
MEASURED_CHANGE_A = 1.0  # re-allocate when a session's current moves by this much
REALLOCATE_MIN_INTERVAL_S = 0.1


@dataclass
class SiteState:
    """The site limit as written, and the one in force with the reason (shown as points)."""

    power_w: float | None = None
    current_a: float | None = None
    source: str = "none"  # bms, manual, config
    written_at: float | None = None
    in_force: SiteLimit = field(default_factory=SiteLimit)
    reason: str = "no limit"


@dataclass
class ConnectorControl:
    """What the gateway last wanted, and what the charger answered, for one connector."""

    requested_a: float | None = None
    # The share the charger accepted last, and for which transaction: what it still applies while
    # a newer value is held back by the write budget.
    written_a: float | None = None
    written_tx: int | None = None
    # The connector of the operator profile the share was sent in place of (no room for both).
    in_place_of: int | None = None
    allocation_reason: str = ""
    send_status: str = ""
    applied_limit: float | None = None  # from GetCompositeSchedule
    applied_unit: str = ""


class ChargingController:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        cfg = gateway.settings.smart_charging
        self.profiles: dict[tuple[str, int], SmartChargingSettings] = {}
        self.site = SiteState()
        if cfg.site_power_limit_kw is not None or cfg.site_current_limit_a is not None:
            self.site = SiteState(_kw_to_w(cfg.site_power_limit_kw), cfg.site_current_limit_a, "config")
        self.rotation = RotationState()
        self.control: dict[tuple[str, int], ConnectorControl] = {}
        self.guards: dict[str, WriteGuard] = {}
        self._measured: dict[tuple[str, int], float] = {}
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()
        self.listeners: list[Any] = []  # callables(charger_id | None) told after each change

    # --- wiring --------------------------------------------------------------------------
    def install(self) -> None:
        gw = self.gw
        gw.boot_hooks.append(self.on_boot)
        gw.transaction_hooks.append(self.on_transaction)
        gw.registry.subscribe(self._on_change)
        gw.start_hooks.append(self.start)

    async def start(self) -> None:
        stored = await self.gw.history.kv_get(PROFILE_SCOPE)
        for key, text in stored.items():
            charger_id, _, connector = key.rpartition("/")
            try:
                self.profiles[(charger_id, int(connector))] = _settings_from_json(text)
            except (ValueError, TypeError, KeyError):
                log.warning("ignoring unreadable smart-charging settings for %s", key)
        site = (await self.gw.history.kv_get(SITE_SCOPE)).get("site")
        if site:
            data = json.loads(site)
            if data.get("source") == "manual":  # a BMS value is not trusted across a restart
                self.site = SiteState(data.get("power_w"), data.get("current_a"), "manual",
                                      data.get("written_at"))
        self._update_in_force(restarted=True)
        self.gw.spawn(self._worker(), "smart charging")

    # --- commands (CLI, admin API, BMS points) --------------------------------------------
    async def set_site_limit(self, power_kw: float | None, current_a: float | None,
                             source: str = "manual") -> SiteState:
        """Write the site limit; None for both removes it. A BMS write must be refreshed."""
        for value, name in ((power_kw, "power"), (current_a, "current")):
            if value is not None and not 0 <= value <= 100000:
                raise OperationError(f"site {name} limit out of range: {value}")
        self.site = SiteState(_kw_to_w(power_kw), current_a, source if (power_kw, current_a) != (None, None)
                              else "none", self.gw.clock())
        # Decide the limit in force before the next await: a new SiteState says "no limit" until
        # then, and a pass of the worker in between would clear every site profile.
        self._update_in_force()
        await self.gw.history.kv_put(SITE_SCOPE, {"site": json.dumps(
            {"power_w": self.site.power_w, "current_a": self.site.current_a, "source": source,
             "written_at": self.site.written_at})})
        self.gw.history.log("site", "SiteLimit", f"{source}: power {power_kw} kW, current {current_a} A")
        self._dirty.set()
        self._notify(None)
        return self.site

    def settings_for(self, charger_id: str, connector_id: int) -> SmartChargingSettings:
        """The Niagara settings of a charger (connector 0) or connector; defaults when unset."""
        found = self.profiles.get((charger_id, connector_id))
        return found if found is not None else SmartChargingSettings(connector_id=connector_id)

    async def configure(self, charger_id: str, connector_id: int, **changes: Any) -> SmartChargingSettings:
        """Change Niagara smart-charging properties; sent when enabled, cleared when disabled."""
        key = (charger_id, connector_id)
        current = self.profiles.get(key, SmartChargingSettings(connector_id=connector_id))
        converters = {"unit": ChargingRateUnit, "kind": ChargingProfileKind,
                      "purpose": ChargingProfilePurpose, "limit": float, "profile_id": int,
                      "stack_level": int, "enabled": bool}
        try:
            values = {k: converters[k](v) for k, v in changes.items() if v is not None}
        except (KeyError, ValueError) as exc:
            raise OperationError(f"bad smart-charging setting: {exc}") from None
        if values.get("limit", 0) < 0:
            raise OperationError("limit must not be negative")
        updated = dataclasses.replace(current, **values)
        if updated == current and "enabled" not in values:
            return current
        self.profiles[key] = updated
        self._notify(charger_id)
        await self.gw.history.kv_put(PROFILE_SCOPE, {f"{charger_id}/{connector_id}": _settings_to_json(updated)})
        was_enabled = current.enabled
        station = self.gw.registry.get(charger_id)
        if station is not None and self.gw.sessions.get(charger_id):
            if updated.enabled:
                await self._send_niagara_profile(station, updated)
            elif was_enabled:
                await self._clear_niagara_profile(station, current)
        return self.profiles[key]

    # --- events -------------------------------------------------------------------------
    async def on_boot(self, session: Session, status: str) -> None:
        """A charger booted: it may have lost its profiles, so write them again."""
        if status != "Accepted":
            return
        guard = self.guards.get(session.charger_id)
        if guard is not None:
            guard.forget()
        for (charger_id, _connector), control in self.control.items():
            if charger_id == session.charger_id:
                control.written_a = control.written_tx = None  # its profiles are gone
        for (charger_id, _connector), settings in list(self.profiles.items()):
            if charger_id == session.charger_id and settings.enabled:
                await self._send_niagara_profile(session.station, settings)
        self._dirty.set()

    async def on_transaction(self, station: Station, connector_id: int) -> None:
        if station.slot is not None:  # guests take no share of the site limit
            self._dirty.set()

    def _on_change(self, event: ChangeEvent) -> None:
        if event.kind != "meter" or not any(k.measurand == "Current.Import" for k in event.key):
            return
        station = self.gw.registry.get(event.charger_id)
        if station is None or station.slot is None:
            return  # guests take no share of the site limit
        key = (event.charger_id, event.connector_id or 0)
        measured = _measured_a(station, key[1])
        if measured is not None and abs(measured - self._measured.get(key, -100.0)) >= MEASURED_CHANGE_A:
            self._measured[key] = measured
            self._dirty.set()

    # --- the worker ---------------------------------------------------------------------
    async def _worker(self) -> None:
        """Re-allocate on demand, and once a second check the fail-safe and held-back writes."""
        while True:
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can lose a cancellation
                # that arrives as it times out, and then Gateway.stop waits for ever.
                async with asyncio.timeout(1.0):
                    await self._dirty.wait()
            except TimeoutError:
                pass
            self._dirty.clear()
            try:
                self._update_in_force()
                await self.reallocate()
            except Exception:
                log.exception("smart charging pass failed")
            # Coalesce: in a reconnect storm thousands of starts would each ask for a pass.
            await asyncio.sleep(REALLOCATE_MIN_INTERVAL_S)

    def _update_in_force(self, restarted: bool = False) -> bool:
        """Decide which limit applies now; True when that changed."""
        cfg = self.gw.settings.smart_charging
        site, before = self.site, (self.site.in_force, self.site.reason)
        safe = SiteLimit(power_w=_kw_to_w(cfg.safe_power_limit_kw)) if cfg.safe_power_limit_kw is not None else None
        stale = (site.source == "bms" and site.written_at is not None
                 and self.gw.clock() - site.written_at > cfg.setpoint_timeout_s)
        if site.source == "bms" and not stale:
            site.in_force, site.reason = SiteLimit(site.current_a, site.power_w), "bms"
        elif site.source in ("manual", "config"):
            site.in_force, site.reason = SiteLimit(site.current_a, site.power_w), site.source
        elif safe is not None and (stale or restarted or site.source == "fallback"):
            site.in_force = safe
            site.reason = "fallback: BMS did not refresh the limit" if stale else "fallback: after restart"
            if restarted:
                site.source = "fallback"
        else:
            site.in_force, site.reason = SiteLimit(), "no limit"
        return (site.in_force, site.reason) != before

    async def reallocate(self) -> None:
        """Share the limit in force among charging sessions and write what changed."""
        async with self._lock:
            now = self.gw.clock()
            sessions, stations = self._sessions(now)
            # No limit and no site share left on any charger: nothing to do. (Every connector that
            # still has a share counts, also one whose session has ended: its profile is cleared.)
            if self.site.in_force == SiteLimit() and not any(
                    control.requested_a is not None for control in self.control.values()):
                return
            voltage = self.gw.settings.smart_charging.nominal_voltage_v
            result = allocate(self.site.in_force, sessions, voltage, self.rotation, now)
            # A session pinned at what its charger still applies (write budget used) is counted at
            # that value; what it should get once it can be written is the unpinned share, kept in
            # its write guard as the newest wish.
            pinned = {s.key for s in sessions if s.fixed_a is not None}
            wishes = allocate(self.site.in_force, [dataclasses.replace(s, fixed_a=None) for s in sessions],
                              voltage, self.rotation, now).allocations if pinned else {}
            self.rotation = result.state
            sends = []
            if self.site.in_force == SiteLimit():
                # The limit was lifted: remove the site profiles still on the chargers.
                for (charger_id, connector_id), control in self.control.items():
                    if control.requested_a is not None:
                        control.requested_a = None
                        sends.append(self._clear_site_profile(charger_id, connector_id))
            for key, allocation in result.allocations.items():
                charger_id, connector_id = stations[key]
                control = self.control.setdefault((charger_id, connector_id), ConnectorControl())
                control.allocation_reason = allocation.reason
                if self.site.in_force == SiteLimit():
                    control.requested_a = None
                    continue
                if key in pinned:
                    allocation = wishes[key]
                control.requested_a = allocation.amps
                sends.append(self._send_share(charger_id, connector_id, allocation.amps))
            await asyncio.gather(*sends)
            # Held-back writes whose budget has freed.
            for charger_id, guard in self.guards.items():
                if guard.due(now):
                    for payload in guard.due(now):
                        connector_id = int(payload["connectorId"])
                        site = payload["csChargingProfiles"]["chargingProfileId"] == SITE_PROFILE_ID + connector_id
                        await self._write(charger_id, payload, (charger_id, connector_id) if site else None)
            self._notify(None)

    def _sessions(self, now: float) -> tuple[list[AllocSession], dict[str, tuple[str, int]]]:
        """One allocator session per connector with an active transaction on an added charger."""
        sessions, keys = [], {}
        phases_default = self.gw.settings.smart_charging.default_phases
        for station in self.gw.registry.added_stations():
            if not station.online:
                continue
            caps = capabilities_of(station)
            if not caps.supports_action("SetChargingProfile"):
                continue
            device = self.gw.devices.get(station.charger_id, {})
            guard = self._guard(station.charger_id, caps)
            for connector in station.connectors.values():
                if connector.connector_id == 0 or connector.transaction_id is None:
                    continue
                key = f"{station.charger_id}/{connector.connector_id}"
                keys[key] = (station.charger_id, connector.connector_id)
                control = self.control.get((station.charger_id, connector.connector_id))
                fixed = None
                if guard.pending and not guard.due(now):
                    # Budget used: count what the charger still applies for this transaction, which
                    # is its maximum when it accepted nothing for it yet (zappi: no profile = 32 A).
                    held = (control is not None and control.written_a is not None
                            and control.written_tx in (None, connector.transaction_id))
                    fixed = control.written_a if held else caps.max_current_a
                offered = station.reading(connector.connector_id, "Current.Offered")
                sessions.append(AllocSession(
                    key, phases=_phases(station, connector.connector_id, caps, phases_default),
                    min_a=caps.min_current_a, max_a=caps.max_current_a,
                    priority=int(device.get("priority") or 0), weight=float(device.get("weight") or 1.0),
                    measured_a=_measured_a(station, connector.connector_id),
                    offered_a=offered.value if offered else None, fixed_a=fixed))
        return sessions, keys

    def _guard(self, charger_id: str, caps: ChargerCapabilities) -> WriteGuard:
        guard = self.guards.get(charger_id)
        if guard is None:
            guard = self.guards[charger_id] = WriteGuard(
                caps, default_writes_per_hour=self.gw.settings.smart_charging.profile_writes_per_hour)
        return guard

    async def _send_share(self, charger_id: str, connector_id: int, amps: float) -> None:
        station = self.gw.registry.get(charger_id)
        if station is None:
            return
        caps = capabilities_of(station)
        connector = station.connectors.get(connector_id)
        phases = _phases(station, connector_id, caps, self.gw.settings.smart_charging.default_phases)
        voltage = self.gw.settings.smart_charging.nominal_voltage_v
        control = self.control.setdefault((charger_id, connector_id), ConnectorControl())
        operator = self._operator_profile_in_the_way(charger_id, connector_id, caps)
        if operator is None:
            settings = SmartChargingSettings(
                enabled=True, unit=ChargingRateUnit.A, limit=amps, purpose=ChargingProfilePurpose.TX,
                profile_id=SITE_PROFILE_ID + connector_id, stack_level=caps.max_stack_level,
                connector_id=connector_id)
        else:
            # In the operator profile's place (same id, purpose, stack level), with the lower limit.
            operator_a = operator.limit if operator.unit == ChargingRateUnit.A else operator.limit / (voltage * phases)
            settings = dataclasses.replace(operator, unit=ChargingRateUnit.A, limit=min(amps, operator_a))
        control.in_place_of = operator.connector_id if operator is not None else None
        try:
            plan = build_profile(settings, caps, phases, voltage,
                                 connector.transaction_id if connector else None, now=_utcnow(self.gw))
        except ProfileNotSupported as exc:
            control.send_status = str(exc)
            return
        await self._write(charger_id, plan.request(), (charger_id, connector_id))

    def _operator_profile_in_the_way(self, charger_id: str, connector_id: int,
                                     caps: ChargerCapabilities) -> SmartChargingSettings | None:
        """The operator's profile that leaves no room for a site profile, if there is one.

        AC wallbox 001 3.2.1: MaxChargingProfilesInstalled 1, so a site profile next to an enabled
        Niagara profile would be rejected and the charger would keep the operator's limit.
        """
        enabled = [s for (c, _n), s in self.profiles.items() if c == charger_id and s.enabled]
        if caps.max_profiles_installed is None or len(enabled) < caps.max_profiles_installed:
            return None
        return next((s for s in enabled if s.connector_id in (0, connector_id)), None)

    async def _clear_site_profile(self, charger_id: str, connector_id: int) -> None:
        control = self.control.setdefault((charger_id, connector_id), ConnectorControl())
        station = self.gw.registry.get(charger_id)
        operator = self.profiles.get((charger_id, control.in_place_of)) if control.in_place_of is not None else None
        if operator is not None and station is not None:
            control.in_place_of = None
            await self._send_niagara_profile(station, operator)  # the operator's limit again
            control.send_status = f"operator profile restored: {self.profiles[(charger_id, operator.connector_id)].send_status}"
            return
        try:
            answer = await self.gw.session_for(charger_id).call(
                "ClearChargingProfile", {"id": SITE_PROFILE_ID + connector_id})
            control.send_status = f"cleared: {answer.get('status')}"
        except OperationError as exc:
            control.send_status = f"clear failed: {exc}"
        guard = self.guards.get(charger_id)
        if guard is not None:
            guard.forget()

    async def _write(self, charger_id: str, payload: dict[str, Any], key: tuple[str, int] | None) -> str:
        """Send one SetChargingProfile through the write guard; returns the send status."""
        station = self.gw.registry.get(charger_id)
        if station is None:
            return "unknown charger"
        guard = self._guard(charger_id, capabilities_of(station))
        now = self.gw.clock()
        decision = guard.decide(payload, now)
        control = self.control.setdefault(key, ConnectorControl()) if key else None
        if not decision.write:
            if control is not None and decision.retry_at is not None:
                control.send_status = f"held back: {decision.reason}"
            return decision.reason
        try:
            answer = await self.gw.session_for(charger_id).call("SetChargingProfile", payload)
            status = answer.get("status", "?")
        except OperationError as exc:
            guard.record_write(now, payload, accepted=False)
            status = f"failed: {exc}"
        else:
            guard.record_write(now, payload, accepted=status == "Accepted")
        if control is not None:
            control.send_status = status
            if status == "Accepted":
                control.written_a, control.written_tx = _written_share(payload)
        if status == "Accepted" and key is not None:
            self.gw.spawn(self._verify(charger_id, key[1]), f"verify profile on {charger_id}")
        self._notify(charger_id)
        return status

    async def _verify(self, charger_id: str, connector_id: int) -> None:
        """Ask the charger what it applies now (GetCompositeSchedule), where it can say."""
        station = self.gw.registry.get(charger_id)
        if station is None:
            return
        caps = capabilities_of(station)
        if not caps.supports_action("GetCompositeSchedule") or not caps.can_get_composite_schedule(connector_id):
            return
        try:
            answer = await self.gw.session_for(charger_id).call(
                "GetCompositeSchedule", {"connectorId": connector_id, "duration": 60,
                                         "chargingRateUnit": caps.allowed_rate_units[0]})
        except OperationError as exc:
            log.info("%s: composite schedule not available: %s", charger_id, exc)
            return
        schedule = answer.get("chargingSchedule") or {}
        periods = schedule.get("chargingSchedulePeriod") or []
        control = self.control.setdefault((charger_id, connector_id), ConnectorControl())
        if answer.get("status") == "Accepted" and periods:
            control.applied_limit = float(periods[0]["limit"])
            control.applied_unit = schedule.get("chargingRateUnit", "")
        self._notify(charger_id)

    async def _send_niagara_profile(self, station: Station, settings: SmartChargingSettings) -> None:
        key = (station.charger_id, settings.connector_id)
        caps = capabilities_of(station)
        connector = station.connectors.get(settings.connector_id)
        try:
            plan = build_profile(settings, caps, _phases(station, settings.connector_id, caps,
                                                         self.gw.settings.smart_charging.default_phases),
                                 self.gw.settings.smart_charging.nominal_voltage_v,
                                 connector.transaction_id if connector else None, now=_utcnow(self.gw))
        except ProfileNotSupported as exc:
            status = f"not supported: {exc}"
        else:
            status = await self._write(station.charger_id, plan.request(), None)
        self.profiles[key] = dataclasses.replace(self.profiles.get(key, settings), send_status=status)
        self._notify(station.charger_id)

    async def _clear_niagara_profile(self, station: Station, settings: SmartChargingSettings) -> None:
        key = (station.charger_id, settings.connector_id)
        caps = capabilities_of(station)
        try:
            answer = await self.gw.session_for(station.charger_id).call(
                "ClearChargingProfile", build_clear(settings, caps))
            status = f"cleared: {answer.get('status')}"
        except OperationError as exc:
            status = f"clear failed: {exc}"
        guard = self.guards.get(station.charger_id)
        if guard is not None:
            guard.forget()
        self.profiles[key] = dataclasses.replace(self.profiles[key], send_status=status)
        self._notify(station.charger_id)

    def _notify(self, charger_id: str | None) -> None:
        for listener in list(self.listeners):
            listener(charger_id)

    def site_view(self) -> dict[str, Any]:
        in_force = self.site.in_force
        return {"requested_power_kw": _w_to_kw(self.site.power_w), "requested_current_a": self.site.current_a,
                "source": self.site.source, "in_force_power_kw": _w_to_kw(in_force.power_w),
                "in_force_current_a": in_force.current_a, "reason": self.site.reason}

    def writes_of(self, charger_id: str) -> dict[str, Any]:
        """The flash-wear counters of one charger (points: SC-Writes, SC-WriteBudget)."""
        guard = self.guards.get(charger_id)
        if guard is None:
            return {"total": 0, "last_hour": 0, "budget_per_hour": None, "pending": 0}
        return {"total": guard.writes_total, "last_hour": guard.writes_in_window(self.gw.clock()),
                "budget_per_hour": guard.writes_per_hour, "pending": len(guard.pending)}

    def status(self) -> dict[str, Any]:
        """Everything an operator or a BMS point shows about smart charging."""
        return {
            "site": self.site_view(),
            "connectors": {f"{c}/{n}": dataclasses.asdict(v) for (c, n), v in sorted(self.control.items())},
            "profiles": {f"{c}/{n}": _settings_dict(v) for (c, n), v in sorted(self.profiles.items())},
            "writes": {c: self.writes_of(c) for c in sorted(self.guards)},
        }


def _written_share(payload: dict[str, Any]) -> tuple[float | None, int | None]:
    """The limit in amperes (None in watts) and the transaction of a profile the charger accepted."""
    profile = payload["csChargingProfiles"]
    schedule = profile["chargingSchedule"]
    periods = schedule.get("chargingSchedulePeriod") or []
    amps = float(periods[0]["limit"]) if schedule.get("chargingRateUnit") == "A" and periods else None
    return amps, profile.get("transactionId")


def _measured_a(station: Station, connector_id: int) -> float | None:
    values = [r.value for k, r in station.meters.items()
              if k.connector_id == connector_id and k.measurand == "Current.Import"]
    return max(values) if values else None


def _phases(station: Station, connector_id: int, caps: ChargerCapabilities, default: int) -> int:
    """Phases in use: from per-phase currents in meter values, else the charger's keys, else the setting."""
    drawing = {k.phase for k, r in station.meters.items()
               if k.connector_id == connector_id and k.measurand == "Current.Import"
               and k.phase in ("L1", "L2", "L3") and r.value > 1.0}
    if drawing:
        return 3 if len(drawing) >= 2 else 1
    return caps.phases_hint(connector_id) or default


def _utcnow(gw: Gateway) -> datetime:
    return datetime.fromtimestamp(gw.clock(), UTC)


def _kw_to_w(kw: float | None) -> float | None:
    return None if kw is None else kw * 1000.0


def _w_to_kw(w: float | None) -> float | None:
    return None if w is None else w / 1000.0


def _settings_dict(s: SmartChargingSettings) -> dict[str, Any]:
    return {k: (v.value if hasattr(v, "value") else v) for k, v in dataclasses.asdict(s).items()}


def _settings_to_json(s: SmartChargingSettings) -> str:
    return json.dumps(_settings_dict(s))


def _settings_from_json(text: str) -> SmartChargingSettings:
    data = json.loads(text)
    return SmartChargingSettings(
        enabled=bool(data["enabled"]), unit=ChargingRateUnit(data["unit"]), limit=float(data["limit"]),
        kind=ChargingProfileKind(data["kind"]), purpose=ChargingProfilePurpose(data["purpose"]),
        profile_id=int(data["profile_id"]), stack_level=int(data["stack_level"]),
        connector_id=int(data["connector_id"]), send_status=data.get("send_status", ""),
        min_charging_rate=data.get("min_charging_rate"))
