"""Charging profiles built from smart-charging settings, adapted to what each charger accepts.

``build_profile`` turns the Niagara-style settings (Niagara OCPP driver guide, section 6.3) into
the SetChargingProfile.req payload a given charger will take, and says what it changed and why.
Whether such a payload is worth writing at all is `gateway.charging.guard.WriteGuard`'s call.
Pure code: no I/O, the clock is passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from gateway.chargers.capabilities import ChargerCapabilities
from gateway.errors import ProfileNotSupported


class ChargingRateUnit(StrEnum):
    """Niagara "Unit Type": Amperes or Watts (OCPP 1.6 ChargingRateUnitType)."""

    A = "A"
    W = "W"


class ChargingProfileKind(StrEnum):
    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class ChargingProfilePurpose(StrEnum):
    CHARGE_POINT_MAX = "ChargePointMaxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


@dataclass(frozen=True)
class NiagaraProfileSettings:
    """The smart-charging settings of a charger (connector 0) or one connector.

    Fields and defaults follow the Niagara guide, section 6.3: Enable (false), Unit Type
    (Amperes), Limit (10.00), Charging Profile (Absolute), Charging Profile Purpose (Charge Point
    Max Profile), Profile Id (100), Stack Level (0) and Send Status. ``min_charging_rate`` is the
    optional OCPP field, left out unless set. Whether to write (enabled) or clear (disabled) is
    the caller's choice: see ``build_profile`` and ``build_clear``.
    """

    enabled: bool = False
    unit: ChargingRateUnit = ChargingRateUnit.A
    limit: float = 10.0
    kind: ChargingProfileKind = ChargingProfileKind.ABSOLUTE
    purpose: ChargingProfilePurpose = ChargingProfilePurpose.CHARGE_POINT_MAX
    profile_id: int = 100
    stack_level: int = 0
    connector_id: int = 0
    send_status: str = ""
    min_charging_rate: float | None = None


@dataclass(frozen=True)
class ProfilePlan:
    """What to send, and every adaptation made on the way (for the log and the commissioning page)."""

    connector_id: int
    cs_charging_profiles: dict[str, Any]
    purpose: ChargingProfilePurpose
    unit: ChargingRateUnit
    limit: float
    paused: bool
    notes: tuple[str, ...]

    def request(self) -> dict[str, Any]:
        """The SetChargingProfile.req payload, camelCase as sent on the wire."""
        return {"connectorId": self.connector_id, "csChargingProfiles": self.cs_charging_profiles}


def build_profile(
    settings: NiagaraProfileSettings,
    caps: ChargerCapabilities,
    phases: int,
    nominal_voltage_v: float,
    transaction_id: int | None = None,
    *,
    now: datetime,
    periods: Sequence[tuple[int, float]] | None = None,
) -> ProfilePlan:
    """Build the profile for ``settings`` that this charger accepts.

    ``phases`` and ``nominal_voltage_v`` convert between W and A (P = U x I x phases) when the
    charger takes only the other unit. ``periods`` is an optional schedule of (startPeriod s,
    limit in ``settings.unit``); without it the schedule is one period at ``settings.limit``.
    """
    if phases not in (1, 2, 3) or nominal_voltage_v <= 0:
        raise ValueError(f"phases must be 1-3 and the voltage positive, not {phases} / {nominal_voltage_v}")
    if not caps.supports_action("SetChargingProfile"):
        raise ProfileNotSupported(f"{caps.vendor} {caps.model}: no SetChargingProfile")
    notes: list[str] = []
    purpose, connector_id = _choose_purpose(settings, caps, transaction_id, notes)
    unit = settings.unit
    if unit.value not in caps.allowed_rate_units:
        unit = ChargingRateUnit.W if unit is ChargingRateUnit.A else ChargingRateUnit.A
        notes.append(f"unit {settings.unit} not accepted: converted to {unit} with "
                     f"{nominal_voltage_v:g} V x {phases} phase(s)")
    convert = _converter(settings, caps, unit, nominal_voltage_v * phases, notes)
    wanted = list(periods) if periods else [(0, settings.limit)]
    schedule_periods, duration = _fit_periods(
        _merge([(start, convert(limit)) for start, limit in sorted(wanted)]), caps, notes)
    stack_level = max(0, min(settings.stack_level, caps.max_stack_level))
    if stack_level != settings.stack_level:
        notes.append(f"stack level {settings.stack_level} clamped to {stack_level}")
    schedule = _schedule(settings, caps, unit, schedule_periods, duration, phases, convert, now, notes)
    profile: dict[str, Any] = {
        "chargingProfileId": settings.profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose.value,
        "chargingProfileKind": settings.kind.value,
    }
    if settings.kind is ChargingProfileKind.RECURRING:
        profile["recurrencyKind"] = "Daily"
    if purpose is ChargingProfilePurpose.TX:
        profile["transactionId"] = transaction_id
    profile["chargingSchedule"] = schedule
    return ProfilePlan(
        connector_id=connector_id,
        cs_charging_profiles=profile,
        purpose=purpose,
        unit=unit,
        limit=schedule_periods[0][1],
        paused=all(limit == 0 for _, limit in schedule_periods),
        notes=tuple(dict.fromkeys(notes)),
    )


def _converter(settings: NiagaraProfileSettings, caps: ChargerCapabilities, unit: ChargingRateUnit,
               watts_per_amp: float, notes: list[str]) -> Callable[[float], float]:
    """A limit in ``settings.unit`` as the charger takes it: in ``unit``, a pause under its minimum."""
    def convert(value: float) -> float:
        amps = value if settings.unit is ChargingRateUnit.A else value / watts_per_amp
        if 0 < amps < caps.min_current_a:
            notes.append(f"limit {value:g} {settings.unit} is under the {caps.min_current_a:g} A minimum: "
                         "0 A (pause) instead")
            amps = 0.0
        amps = max(0.0, amps)
        # Round down: a limit is a ceiling, so never send more than asked.
        if unit is ChargingRateUnit.A:
            return math.floor(amps * 10 + 1e-9) / 10
        return float(math.floor(amps * watts_per_amp + 1e-6))
    return convert


def _fit_periods(schedule_periods: list[tuple[int, float]], caps: ChargerCapabilities,
                 notes: list[str]) -> tuple[list[tuple[int, float]], int | None]:
    """The periods the charger takes (its ChargingScheduleMaxPeriods), and the duration that ends
    the schedule where the rest was cut (None: not cut)."""
    if len(schedule_periods) <= caps.max_periods:
        return schedule_periods, None
    duration = schedule_periods[caps.max_periods][0]
    notes.append(f"{len(schedule_periods)} periods, charger takes {caps.max_periods}: "
                 f"schedule ends after {duration} s")
    return schedule_periods[: caps.max_periods], duration


def _schedule(settings: NiagaraProfileSettings, caps: ChargerCapabilities, unit: ChargingRateUnit,
              schedule_periods: list[tuple[int, float]], duration: int | None, phases: int,
              convert: Callable[[float], float], now: datetime, notes: list[str]) -> dict[str, Any]:
    """The chargingSchedule (OCPP 1.6 7.13), without the fields this charger rejects."""
    period_dicts = []
    for start, limit in schedule_periods:
        period: dict[str, Any] = {"startPeriod": start, "limit": limit}
        if "numberPhases" not in caps.rejected_schedule_fields:
            period["numberPhases"] = phases
        period_dicts.append(period)
    if "numberPhases" in caps.rejected_schedule_fields:
        notes.append("numberPhases left out: the charger rejects it")
    schedule: dict[str, Any] = {}
    if duration is not None:
        schedule["duration"] = duration
    if settings.kind is not ChargingProfileKind.RELATIVE:
        schedule["startSchedule"] = _schedule_start(settings.kind, now)
    schedule["chargingRateUnit"] = unit.value
    schedule["chargingSchedulePeriod"] = period_dicts
    if settings.min_charging_rate is not None:
        if "minChargingRate" in caps.rejected_schedule_fields:
            notes.append("minChargingRate left out: the charger rejects it")
        else:
            schedule["minChargingRate"] = convert(settings.min_charging_rate)
    return schedule


def build_clear(
    settings: NiagaraProfileSettings, caps: ChargerCapabilities, transaction_id: int | None = None
) -> dict[str, Any]:
    """The ClearChargingProfile.req payload for the profile ``build_profile`` would have written.

    The Niagara driver clears the profile when Smart Charging is disabled (guide 6.3). The purpose
    and connector are adapted the same way, so the clear hits what was actually installed.
    """
    purpose, connector_id = _choose_purpose(settings, caps, transaction_id, [])
    return {"id": settings.profile_id, "connectorId": connector_id, "chargingProfilePurpose": purpose.value}


# Nearest purpose first, when the wanted one is not accepted (OCPP 1.6 section 3.13.2).
_NEAREST = {
    ChargingProfilePurpose.CHARGE_POINT_MAX: (ChargingProfilePurpose.TX, ChargingProfilePurpose.TX_DEFAULT),
    ChargingProfilePurpose.TX_DEFAULT: (ChargingProfilePurpose.CHARGE_POINT_MAX, ChargingProfilePurpose.TX),
    ChargingProfilePurpose.TX: (ChargingProfilePurpose.TX_DEFAULT, ChargingProfilePurpose.CHARGE_POINT_MAX),
}


def _choose_purpose(
    settings: NiagaraProfileSettings, caps: ChargerCapabilities, transaction_id: int | None, notes: list[str]
) -> tuple[ChargingProfilePurpose, int]:
    """Pick the purpose and connector the charger takes, closest to what the settings ask."""
    connector_id = settings.connector_id
    single = caps.number_of_connectors == 1

    def usable(purpose: ChargingProfilePurpose) -> bool:
        if not caps.accepts_purpose(purpose.value):
            return False
        if purpose is ChargingProfilePurpose.TX:
            # A TxProfile needs a running transaction on a real connector (OCPP 1.6 section 5.16.2).
            return transaction_id is not None and (connector_id > 0 or single)
        if purpose is ChargingProfilePurpose.CHARGE_POINT_MAX:
            # ChargePointMaxProfile lives on connector 0 only; for one connector that is the same.
            return connector_id == 0 or single
        return True

    wanted = settings.purpose
    chosen = next((p for p in (wanted, *_NEAREST[wanted]) if usable(p)), None)
    if chosen is None:
        # Nothing fits (e.g. TxProfile-only charger and no transaction): TxDefaultProfile is
        # the one every SmartCharging charger must take.
        chosen = ChargingProfilePurpose.TX_DEFAULT
    if chosen is not wanted:
        why = "not accepted by the charger" if not caps.accepts_purpose(wanted.value) else "not valid here"
        notes.append(f"purpose {wanted.value} {why}: {chosen.value} instead")
    if chosen is ChargingProfilePurpose.CHARGE_POINT_MAX and connector_id != 0:
        notes.append(f"ChargePointMaxProfile sent on connector 0 instead of {connector_id}")
        connector_id = 0
    elif chosen is ChargingProfilePurpose.TX and connector_id == 0:
        notes.append("TxProfile sent on connector 1, the charger's only connector")
        connector_id = 1
    return chosen, connector_id


def _merge(periods: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Drop periods that repeat the previous limit: they cost a period slot and change nothing."""
    merged: list[tuple[int, float]] = []
    for start, limit in periods:
        if not merged or merged[-1][1] != limit:
            merged.append((start, limit))
    return merged


def _schedule_start(kind: ChargingProfileKind, now: datetime) -> str:
    """Absolute starts now; Recurring (Daily) starts at midnight UTC so periods are times of day."""
    moment = now.astimezone(UTC).replace(microsecond=0)
    if kind is ChargingProfileKind.RECURRING:
        moment = moment.replace(hour=0, minute=0, second=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
