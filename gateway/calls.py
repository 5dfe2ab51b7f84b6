"""How an operator call reaches a charger: the checks before sending, and the result's shape.

Shared by `gateway.operations` and `gateway.configuration` so every action is refused, sent
and answered the same way: unknown, offline, not accepted or missing its feature profile is a
`ChargerUnavailable` before anything is sent; a payload the OCPP schema refuses is a
`ValueError`; the answer comes back as `{"action", "charger_id", "status", "answer", ...}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway import protocol
from gateway.charging_control import capabilities_of
from gateway.errors import ChargerUnavailable, OcppError
from gateway.station import Station
from gateway.timestamps import iso_z, parse_timestamp

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.session import Session

# OCPP 1.6 section 3 (feature profiles) and 5: the feature profile each central-system call belongs to.
FEATURE_PROFILE = {
    "ChangeAvailability": "Core", "ChangeConfiguration": "Core", "ClearCache": "Core",
    "DataTransfer": "Core", "GetConfiguration": "Core", "RemoteStartTransaction": "Core",
    "RemoteStopTransaction": "Core", "Reset": "Core", "UnlockConnector": "Core",
    "GetDiagnostics": "FirmwareManagement", "UpdateFirmware": "FirmwareManagement",
    "GetLocalListVersion": "LocalAuthListManagement", "SendLocalList": "LocalAuthListManagement",
    "CancelReservation": "Reservation", "ReserveNow": "Reservation",
    "ClearChargingProfile": "SmartCharging", "GetCompositeSchedule": "SmartCharging",
    "SetChargingProfile": "SmartCharging",
    "TriggerMessage": "RemoteTrigger",
}
PROFILES = ("Core", "FirmwareManagement", "LocalAuthListManagement", "Reservation",
            "SmartCharging", "RemoteTrigger")
# Spellings seen in the field for a profile name: the AC wallbox manual (seeds/001, key
# SupportedFeatureProfiles) lists "LocalAuthicationListManagement".
_PROFILE_ALIASES = {
    "localauthicationlistmanagement": "LocalAuthListManagement",
    "localauthenticationlistmanagement": "LocalAuthListManagement",
    "localauthlistmanagement": "LocalAuthListManagement",
}


def supported_profiles(station: Station) -> set[str] | None:
    """The profiles a charger declares, or None while its configuration is not known."""
    raw = station.config_value("SupportedFeatureProfiles")
    if raw is None:
        return None
    known = {p.lower(): p for p in PROFILES} | _PROFILE_ALIASES
    # EVlink 8.1 writes "Firmware Management" with a space: compare without spaces.
    names = (item.strip() for item in raw.split(",") if item.strip())
    return {known.get(name.replace(" ", "").lower(), name) for name in names}


def check_profile(station: Station, action: str) -> None:
    """Refuse an action the charger's manual rules out (its quirk), or whose feature profile it
    says it lacks (unknown: allowed)."""
    caps = capabilities_of(station)
    if action in caps.unsupported_actions:
        raise ChargerUnavailable(
            f"{station.charger_id} does not support {action}: its manual says so (quirk {caps.quirk_name})")
    profile = FEATURE_PROFILE[action]
    profiles = supported_profiles(station)
    if profiles is not None:
        profiles |= set(caps.feature_profiles or ())  # with the profiles a quirk adds (EVlink RemoteTrigger)
    # Core is mandatory (spec section 3); a charger that forgets to list it still does it.
    if profile != "Core" and profiles is not None and profile not in profiles:
        raise ChargerUnavailable(
            f"{station.charger_id} does not support {action}: feature profile {profile} is not in "
            f"its SupportedFeatureProfiles ({station.config_value('SupportedFeatureProfiles')})")


# OCPP 1.6 4.2 (BootNotification): while Pending, the central system may retrieve information or change the
# configuration; transactions, reservations and profiles wait until the charger is accepted.
ALLOWED_WHEN_PENDING = frozenset({
    "GetConfiguration", "ChangeConfiguration", "TriggerMessage", "DataTransfer",
    "GetLocalListVersion", "SendLocalList", "Reset",
})


def session_for_action(gw: Gateway, charger_id: str, action: str) -> Session:
    """The session that may take `action` now, or ChargerUnavailable saying why not."""
    if gw.registry.get(charger_id) is None:
        raise ChargerUnavailable(f"{charger_id} is unknown: it never connected and is not added")
    session = gw.session_for(charger_id)
    station = session.station
    # A charger that reconnects without a new boot keeps its device registration's answer.
    if (station.boot_status != "Accepted" and gw.boot_response(station) != "Accepted"
            and action not in ALLOWED_WHEN_PENDING):
        raise ChargerUnavailable(
            f"{charger_id} is not accepted (registration {gw.boot_response(station)}): {action} "
            f"waits until it is; allowed now: {', '.join(sorted(ALLOWED_WHEN_PENDING))}")
    check_profile(station, action)
    return session


def validate(action: str, payload: dict[str, Any]) -> None:
    """Check a payload against the strict 1.6 schema before anything is sent."""
    try:
        protocol.validate(action, payload)
    except OcppError as exc:
        raise ValueError(f"invalid {action}: {exc.description}") from None


async def call(gw: Gateway, charger_id: str, action: str, payload: dict[str, Any],
               **derived: Any) -> dict[str, Any]:
    """Validate, check the charger can take it, send, and shape the result."""
    validate(action, payload)
    session = session_for_action(gw, charger_id, action)
    answer = await session.call(action, payload)
    return result(action, charger_id, answer, **derived)


def result(action: str, charger_id: str, answer: dict[str, Any], **derived: Any) -> dict[str, Any]:
    """The one result shape every operation returns (JSON-ready)."""
    return {"action": action, "charger_id": charger_id, "status": answer.get("status"),
            "answer": answer, **derived}


def ocpp_time(text: str | None) -> str | None:
    """An operator's date-time (ISO 8601, UTC when no zone is given) in OCPP form."""
    if text is None:
        return None
    ts = parse_timestamp(text)
    if ts is None:
        raise ValueError(f"not a date-time: {text!r} (use ISO 8601, e.g. 2026-11-21T10:00:00Z)")
    return iso_z(ts)


def station_of(gw: Gateway, charger_id: str) -> Station:
    """The charger's live model entry (it exists once the charger connected or was added)."""
    station = gw.registry.get(charger_id)
    if station is None:
        raise ChargerUnavailable(f"{charger_id} is unknown: it never connected and is not added")
    return station
