"""The operator's own smart-charging settings per charger or connector (Niagara guide 6.3).

Persisted, sent when enabled and a property changes, cleared when disabled, sent again after a
charger reboots. Writes go through the controller's one write path (its write guard).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from gateway.chargers.capabilities import capabilities_of
from gateway.charging.guard import WriteGuard
from gateway.charging.inputs import phases_of
from gateway.charging.link import ChargerLink
from gateway.charging.profiles import (
    ChargingProfileKind,
    ChargingProfilePurpose,
    ChargingRateUnit,
    NiagaraProfileSettings,
    ProfileNotSupported,
    build_clear,
    build_profile,
)
from gateway.errors import OperationError
from gateway.history.store import HistoryStore
from gateway.model.station import Registry, Station
from gateway.settings import Settings

log = logging.getLogger(__name__)
PROFILE_SCOPE = "smart_charging"
Write = Callable[[str, dict[str, Any], Any], Awaitable[str]]


class ProfileWriter(Protocol):
    """What the operator's profiles need of the smart-charging controller (`ChargingController`)."""

    history: HistoryStore
    registry: Registry
    settings: Settings
    chargers: ChargerLink
    guards: dict[str, WriteGuard]

    def notify(self, charger_id: str | None) -> None:
        """Tell the points and web pages that this charger's smart-charging values changed."""

    def utcnow(self) -> datetime:
        """Now, from the controller's clock."""

    async def write(self, charger_id: str, payload: dict[str, Any], key: tuple[str, int] | None) -> str:
        """Send one SetChargingProfile through the write guard; the send status."""


class OperatorProfiles:
    """The Niagara 6.3 settings of every charger and connector, and sending them."""

    def __init__(self, controller: ProfileWriter) -> None:
        self.ctl = controller
        self.controller = controller
        self.settings: dict[tuple[str, int], NiagaraProfileSettings] = {}

    async def load(self) -> None:
        for key, text in (await self.controller.history.kv_get(PROFILE_SCOPE)).items():
            charger_id, _, connector = key.rpartition("/")
            try:
                self.settings[(charger_id, int(connector))] = settings_from_json(text)
            except (ValueError, TypeError, KeyError):
                log.warning("ignoring unreadable smart-charging settings for %s", key)

    def get(self, charger_id: str, connector_id: int) -> NiagaraProfileSettings:
        found = self.settings.get((charger_id, connector_id))
        return found if found is not None else NiagaraProfileSettings(connector_id=connector_id)

    def enabled(self, charger_id: str) -> list[NiagaraProfileSettings]:
        return [s for (c, _n), s in self.settings.items() if c == charger_id and s.enabled]

    async def configure(self, charger_id: str, connector_id: int, **changes: Any) -> NiagaraProfileSettings:
        key = (charger_id, connector_id)
        current = self.settings.get(key, NiagaraProfileSettings(connector_id=connector_id))
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
        self.settings[key] = updated
        self.ctl.notify(charger_id)
        await self.controller.history.kv_put(PROFILE_SCOPE, {f"{charger_id}/{connector_id}": settings_to_json(updated)})
        station = self.controller.registry.get(charger_id)
        if station is not None and self.controller.chargers.is_connected(charger_id):
            if updated.enabled:
                await self.send(station, updated)
            elif current.enabled:
                await self.clear(station, current)
        return self.settings[key]

    async def send(self, station: Station, settings: NiagaraProfileSettings) -> None:
        key = (station.charger_id, settings.connector_id)
        caps = capabilities_of(station)
        connector = station.connectors.get(settings.connector_id)
        sc = self.controller.settings.smart_charging
        try:
            plan = build_profile(settings, caps, phases_of(station, settings.connector_id, caps, sc.default_phases),
                                 sc.nominal_voltage_v, connector.transaction_id if connector else None,
                                 now=self.ctl.utcnow())
        except ProfileNotSupported as exc:
            status = f"not supported: {exc}"
        else:
            status = await self.ctl.write(station.charger_id, plan.request(), None)
        self._status(key, settings, status)

    async def clear(self, station: Station, settings: NiagaraProfileSettings) -> None:
        key = (station.charger_id, settings.connector_id)
        payload = build_clear(settings, capabilities_of(station))
        try:
            answer = await self.controller.chargers.call(station.charger_id, "ClearChargingProfile", payload)
            status = f"cleared: {answer.get('status')}"
        except OperationError as exc:
            status = f"clear failed: {exc}"
        guard = self.ctl.guards.get(station.charger_id)
        if guard is not None:
            guard.drop_slot(payload["connectorId"], settings.profile_id)
        self._status(key, settings, status)

    def _status(self, key: tuple[str, int], settings: NiagaraProfileSettings, status: str) -> None:
        self.settings[key] = dataclasses.replace(self.settings.get(key, settings), send_status=status)
        self.ctl.notify(key[0])

    def in_the_way(self, charger_id: str, connector_id: int, max_installed: int | None) -> NiagaraProfileSettings | None:
        """The operator's profile that leaves no room for a site profile, if there is one.

        AC wallbox 001 3.2.1: MaxChargingProfilesInstalled 1, so a site profile next to an enabled
        Niagara profile would be rejected and the charger would keep the operator's limit.
        """
        enabled = self.enabled(charger_id)
        if max_installed is None or len(enabled) < max_installed:
            return None
        return next((s for s in enabled if s.connector_id in (0, connector_id)), None)


def settings_dict(s: NiagaraProfileSettings) -> dict[str, Any]:
    return {k: (v.value if hasattr(v, "value") else v) for k, v in dataclasses.asdict(s).items()}


def settings_to_json(s: NiagaraProfileSettings) -> str:
    return json.dumps(settings_dict(s))


def settings_from_json(text: str) -> NiagaraProfileSettings:
    data = json.loads(text)
    return NiagaraProfileSettings(
        enabled=bool(data["enabled"]), unit=ChargingRateUnit(data["unit"]), limit=float(data["limit"]),
        kind=ChargingProfileKind(data["kind"]), purpose=ChargingProfilePurpose(data["purpose"]),
        profile_id=int(data["profile_id"]), stack_level=int(data["stack_level"]),
        connector_id=int(data["connector_id"]), send_status=data.get("send_status", ""),
        min_charging_rate=data.get("min_charging_rate"))
