"""Sending the site shares: the one write path of smart charging (a mixin of the controller).

Every SetChargingProfile goes through `write`, which asks the charger's write guard first and
records the answer (the outcome points read it); an accepted site share is verified with
GetCompositeSchedule where the charger can say what it applies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.chargers.capabilities import ChargerCapabilities, capabilities_of
from gateway.charging.guard import WriteGuard
from gateway.charging.inputs import ConnectorControl, phases_of, written_share
from gateway.charging.link import ChargerLink
from gateway.charging.niagara import OperatorProfiles
from gateway.charging.profiles import (
    ChargingProfilePurpose,
    ChargingRateUnit,
    NiagaraProfileSettings,
    ProfileNotSupported,
    build_profile,
)
from gateway.errors import OperationError

if TYPE_CHECKING:
    from gateway.model.station import Clock, Registry
    from gateway.settings import Settings
    from gateway.tasks import Spawn

log = logging.getLogger(__name__)
Send = Callable[[], Awaitable[Any]]  # one write, started when its turn comes
# Profiles the allocator writes use their own id and stack level so that an operator's Niagara
# profile (a ChargePointMaxProfile, say) and the site share combine on the charger (the lower wins).
SITE_PROFILE_ID = 900000


class ProfileSender:
    """The write side of `ChargingController` (its state is the controller's)."""

    settings: Settings
    registry: Registry
    clock: Clock
    chargers: ChargerLink
    spawn: Spawn
    operator: OperatorProfiles
    profiles: dict[tuple[str, int], NiagaraProfileSettings]
    control: dict[tuple[str, int], ConnectorControl]
    guards: dict[str, WriteGuard]
    _site_profiles: set[tuple[str, int]]
    _dirty: asyncio.Event

    def _guard(self, charger_id: str, caps: ChargerCapabilities) -> WriteGuard:
        raise NotImplementedError

    def notify(self, charger_id: str | None) -> None:
        raise NotImplementedError

    async def _store_held(self, *charger_ids: str) -> None:
        raise NotImplementedError

    def _remember_held(self, charger_id: str) -> None:
        raise NotImplementedError

    def utcnow(self) -> datetime:
        raise NotImplementedError

    async def _send_in_order(self, cuts: list[Send], others: list[Send], raises: list[Send], now: float) -> None:
        """Lower first, then raise, each group in parallel across chargers: the sum of what the
        chargers offer stays within the higher of the old and the new limit while the new shares
        go out. If a cut did not land (rejected, held back, failed), no raise goes out in this
        pass: the next one counts that session at what its charger still applies (pinned).
        `others` (start limits, pinned sessions' wishes) go with the cuts; nothing waits on them."""
        landed = await asyncio.gather(*(send() for send in cuts), *(send() for send in others))
        if all(_landed(status) for status in landed[:len(cuts)]):
            await asyncio.gather(*(send() for send in raises))
            await self._write_due(now)  # after: a slot's due value and its new one are not both sent
        elif raises:
            self._dirty.set()

    async def _write_due(self, now: float) -> None:
        """Held-back writes whose budget or back-off has freed (in parallel across chargers)."""
        async def due(charger_id: str, guard: WriteGuard) -> None:
            for payload in guard.due(now):
                connector_id = int(payload["connectorId"])
                site = payload["csChargingProfiles"]["chargingProfileId"] == SITE_PROFILE_ID + connector_id
                await self.write(charger_id, payload, (charger_id, connector_id) if site else None)
        await asyncio.gather(*(due(c, g) for c, g in list(self.guards.items())))

    def _start_defaults(self, now: float) -> tuple[list[Send], list[Send]]:
        """The start limit (`smart_charging.start_limit_a`) on every online charger, so a session
        that starts takes it until its share arrives (otherwise it offers the charger's maximum
        for that while). Returned as (cuts, others): a charger with room for it holds it in a
        TxDefaultProfile on connector 0, written once (the guard keeps it from being rewritten);
        a charger whose one slot per connector carries the session's share
        (`shares_in_default_slot`) gets it on each idle connector, a cut when that slot may
        still hold the share of a session that ended (raises wait for it). Lifted with the limit."""
        cfg = self.settings.smart_charging
        cuts: list[Send] = []
        others: list[Send] = []
        if cfg.start_limit_a is None:
            return cuts, others
        for station in self.registry.added_stations():
            caps = capabilities_of(station)
            if not (station.online and caps.supports_action("SetChargingProfile")
                    and caps.accepts_purpose(ChargingProfilePurpose.TX_DEFAULT.value)
                    and not self.operator.enabled(station.charger_id)):
                continue
            slots = caps.max_profiles_installed
            if slots is None or slots > caps.number_of_connectors:  # room beside the sessions' TxProfiles
                payload = self._start_payload(caps, 0, SITE_PROFILE_ID, 0, cfg.start_limit_a)
                if payload is not None:
                    others.append(functools.partial(self.write, station.charger_id, payload, (station.charger_id, 0)))
                continue
            if not shares_in_default_slot(caps, cfg.start_limit_a):
                continue
            guard = self._guard(station.charger_id, caps)
            for connector in station.connectors.values():
                if connector.connector_id == 0 or connector.transaction_id is not None:
                    continue
                key = (station.charger_id, connector.connector_id)
                payload = self._start_payload(caps, connector.connector_id, SITE_PROFILE_ID + connector.connector_id,
                                              caps.max_stack_level, cfg.start_limit_a)
                if payload is None:
                    continue
                held = self.control[key].written_a if key in self.control else None
                blocked = guard.writes_in_window(now) >= guard.writes_per_hour or guard.rejected_count(payload)
                lowers = (held is None or held > cfg.start_limit_a) and not blocked
                (cuts if lowers else others).append(functools.partial(self.write, station.charger_id, payload, key))
        return cuts, others

    def _start_payload(self, caps: ChargerCapabilities, connector_id: int, profile_id: int, stack_level: int,
                       amps: float) -> dict[str, Any] | None:
        """The SetChargingProfile.req of a start limit (a TxDefaultProfile), or None if the charger takes none."""
        cfg = self.settings.smart_charging
        settings = NiagaraProfileSettings(
            enabled=True, unit=ChargingRateUnit.A, limit=amps, purpose=ChargingProfilePurpose.TX_DEFAULT,
            profile_id=profile_id, stack_level=stack_level, connector_id=connector_id)
        try:
            plan = build_profile(settings, caps, cfg.default_phases, cfg.nominal_voltage_v, None, now=self.utcnow())
        except ProfileNotSupported:
            return None
        return plan.request()

    async def _send_share(self, charger_id: str, connector_id: int, amps: float) -> str:
        """Send one session's share; returns the send status (or why nothing was sent)."""
        station = self.registry.get(charger_id)
        if station is None:
            return "unknown charger"
        caps = capabilities_of(station)
        connector = station.connectors.get(connector_id)
        cfg = self.settings.smart_charging
        phases = phases_of(station, connector_id, caps, cfg.default_phases)
        control = self.control.setdefault((charger_id, connector_id), ConnectorControl())
        operator = self.operator.in_the_way(charger_id, connector_id, caps.max_profiles_installed)
        if operator is None:
            # The session's own TxProfile; or, where the connector's one slot holds the start
            # limit, the share in that TxDefaultProfile's place (same id and stack level).
            purpose = ChargingProfilePurpose.TX_DEFAULT if shares_in_default_slot(caps, cfg.start_limit_a) \
                else ChargingProfilePurpose.TX
            settings = NiagaraProfileSettings(
                enabled=True, unit=ChargingRateUnit.A, limit=amps, purpose=purpose,
                profile_id=SITE_PROFILE_ID + connector_id, stack_level=caps.max_stack_level,
                connector_id=connector_id)
        else:
            # In the operator profile's place (same id, purpose, stack level), with the lower limit.
            operator_a = (operator.limit if operator.unit == ChargingRateUnit.A
                          else operator.limit / (cfg.nominal_voltage_v * phases))
            settings = dataclasses.replace(operator, unit=ChargingRateUnit.A, limit=min(amps, operator_a))
        control.in_place_of = operator.connector_id if operator is not None else None
        try:
            plan = build_profile(settings, caps, phases, cfg.nominal_voltage_v,
                                 connector.transaction_id if connector else None, now=self.utcnow())
        except ProfileNotSupported as exc:
            control.send_status, control.send_state = str(exc), "Failed"
            return control.send_status
        return await self.write(charger_id, plan.request(), (charger_id, connector_id))

    async def _clear_site_profile(self, charger_id: str, connector_id: int) -> None:
        key = (charger_id, connector_id)
        control = self.control.setdefault(key, ConnectorControl())
        self._site_profiles.discard(key)
        station = self.registry.get(charger_id)
        operator = self.profiles.get((charger_id, control.in_place_of)) if control.in_place_of is not None else None
        if operator is not None and station is not None:
            control.in_place_of = None
            await self.operator.send(station, operator)  # the operator's limit again
            control.send_status = f"operator profile restored: {self.profiles[(charger_id, operator.connector_id)].send_status}"
            return
        try:
            answer = await self.chargers.call(charger_id,
                "ClearChargingProfile", {"id": SITE_PROFILE_ID + connector_id})
            control.send_status, control.send_state = f"cleared: {answer.get('status')}", "Cleared"
        except OperationError as exc:
            control.send_status = f"clear failed: {exc}"
        control.written_a = control.written_tx = None  # it holds no site profile now
        guard = self.guards.get(charger_id)
        if guard is not None:
            guard.drop_slot(connector_id, SITE_PROFILE_ID + connector_id)
            guard.forget()
            await self._store_held(charger_id)

    async def write(self, charger_id: str, payload: dict[str, Any], key: tuple[str, int] | None) -> str:
        """Send one SetChargingProfile through the write guard; returns the send status."""
        station = self.registry.get(charger_id)
        if station is None:
            return "unknown charger"
        guard = self._guard(charger_id, capabilities_of(station))
        now = self.clock()
        decision = guard.decide(payload, now)
        control = self.control.setdefault(key, ConnectorControl()) if key else None
        # What a session's points show; a start limit on an idle connector's slot is no session's.
        shown = control if control is not None and key is not None and (
            key[1] == 0 or control.transaction_id is not None) else None
        if not decision.write:
            if shown is not None and decision.retry_at is not None:
                shown.send_status = f"{'rejected' if decision.rejected else 'held back'}: {decision.reason}"
                shown.send_state = "Rejected" if decision.rejected else "Held back"
            return decision.reason
        if shown is not None:
            shown.send_state = "Pending"
        try:
            answer = await self.chargers.call(charger_id, "SetChargingProfile", payload)
            status = str(answer.get("status", "?"))
        except OperationError as exc:
            guard.record_write(now, payload, accepted=False)
            status = f"failed: {exc}"
        else:
            guard.record_write(now, payload, accepted=status == "Accepted")
        if shown is not None:
            shown.send_status = status
            shown.send_state = {"Accepted": "Accepted", "Rejected": "Rejected"}.get(status, "Failed")
        if control is not None and status == "Accepted":
            self._record_accepted(key, control, payload)
        self._remember_held(charger_id)  # what it holds and its budget survive a restart
        if status == "Accepted" and shown is not None:
            self.spawn(self._verify(charger_id, key[1]), f"verify profile on {charger_id}")
        self.notify(charger_id)
        return status

    def _record_accepted(self, key: Any, control: ConnectorControl, payload: dict[str, Any]) -> None:
        control.written_a, control.written_tx = written_share(payload)
        control.applied_at = self.clock()
        if control.written_tx is None:  # a TxDefault/ChargePointMax profile outlives the session
            self._site_profiles.add(key)

    async def _verify(self, charger_id: str, connector_id: int) -> None:
        """Ask the charger what it applies now (GetCompositeSchedule), where it can say."""
        station = self.registry.get(charger_id)
        if station is None:
            return
        caps = capabilities_of(station)
        if not caps.supports_action("GetCompositeSchedule") or not caps.can_get_composite_schedule(connector_id):
            return
        try:
            answer = await self.chargers.call(charger_id,
                "GetCompositeSchedule", {"connectorId": connector_id, "duration": 60,
                                         "chargingRateUnit": caps.allowed_rate_units[0]})
        except OperationError as exc:
            log.info("%s: composite schedule not available: %s", charger_id, exc)
            return
        schedule = answer.get("chargingSchedule") or {}
        periods = schedule.get("chargingSchedulePeriod") or []
        control = self.control.get((charger_id, connector_id))
        if control is not None and control.transaction_id is not None and answer.get("status") == "Accepted" \
                and periods:
            control.applied_limit = float(periods[0]["limit"])
            control.applied_unit = schedule.get("chargingRateUnit", "")
        self.notify(charger_id)


def _landed(status: str) -> bool:
    """The charger holds the value now: it accepted it, or it already had it."""
    return status in ("Accepted", "unchanged", "unknown charger") or status.startswith("change within")


def shares_in_default_slot(caps: ChargerCapabilities, start_limit_a: float | None) -> bool:
    """Whether a session's share goes in its connector's TxDefaultProfile instead of a TxProfile.

    AC wallbox 001 3.2.1: MaxChargingProfilesInstalled 1, one slot for its one connector and none
    to spare, so it cannot hold a start limit beside a session's TxProfile. A TxDefaultProfile on
    the connector (OCPP 1.6 3.13.1: it applies to that connector's transactions while no TxProfile
    overrules it) holds both in turn: the start limit while the connector is idle, the session's
    share while it charges, with the same id and stack level, so each write replaces the last
    (5.16). Only with a start limit: without one the share is the session's TxProfile, which the
    charger drops at the end of the transaction (3.13.1), so the next car is not held at it.
    """
    slots = caps.max_profiles_installed
    return (start_limit_a is not None and slots is not None and slots == caps.number_of_connectors
            and caps.accepts_purpose(ChargingProfilePurpose.TX_DEFAULT.value))
