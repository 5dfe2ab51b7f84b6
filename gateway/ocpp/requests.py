"""How an operator call reaches a charger: the checks before sending, and the result's shape.

`ChargerRequests` is the one request helper of operator calls, shared by `gateway.operator.actions`
and `gateway.chargers.configuration` so every action is refused, sent and answered the same way: unknown, offline, not accepted or missing its feature profile is a
`ChargerUnavailable` before anything is sent; a payload the OCPP schema refuses is a
`ValueError`; the answer comes back as `{"action", "charger_id", "status", "answer", ...}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.chargers.capabilities import PROFILE_ACTIONS, capabilities_of
from gateway.errors import ChargerUnavailable, OcppError
from gateway.model.station import Station
from gateway.model.timestamps import iso_z, parse_timestamp
from gateway.ocpp import protocol

if TYPE_CHECKING:
    from gateway.model.station import Registry
    from gateway.ocpp.connections import Connections
    from gateway.ocpp.session import ChargerSession

# The feature profile of each central-system call (one table: capabilities.PROFILE_ACTIONS).
FEATURE_PROFILE = {action: profile for profile, actions in PROFILE_ACTIONS.items() for action in actions}


def check_profile(station: Station, action: str) -> None:
    """Refuse an action the charger cannot take: its SupportedFeatureProfiles lack the profile
    (unknown: allowed), or its quirk profile says it does not implement it (EVlink: no local list)."""
    caps = capabilities_of(station)
    profile = FEATURE_PROFILE[action]
    if action in caps.unsupported_actions:
        raise ChargerUnavailable(
            f"{station.charger_id} does not support {action} (charger profile {caps.quirk_name})")
    # Core is mandatory (spec section 3); a charger that forgets to list it still does it.
    if profile != "Core" and not caps.supports_profile(profile):
        raise ChargerUnavailable(
            f"{station.charger_id} does not support {action}: feature profile {profile} is not in "
            f"its SupportedFeatureProfiles ({station.config_value('SupportedFeatureProfiles')})")


def validate(action: str, payload: dict[str, Any]) -> None:
    """Check a payload against the strict 1.6 schema before anything is sent."""
    try:
        protocol.validate(action, payload)
    except OcppError as exc:
        raise ValueError(f"invalid {action}: {exc.description}") from None


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


class ChargerRequests:
    """Operator calls to chargers: refused before sending when the charger cannot take them."""

    def __init__(self, registry: Registry, connections: Connections) -> None:
        self.registry = registry
        self.connections = connections

    def session_for_action(self, charger_id: str, action: str) -> ChargerSession:
        """The session that may take `action` now, or ChargerUnavailable saying why not."""
        if self.registry.get(charger_id) is None:
            raise ChargerUnavailable(f"{charger_id} is unknown: it never connected and is not added")
        session = self.connections.session_for(charger_id)
        session.check_may_send(action)  # the registration rule (gateway/model/registration.py)
        check_profile(session.station, action)
        return session

    async def call(self, charger_id: str, action: str, payload: dict[str, Any],
                   **derived: Any) -> dict[str, Any]:
        """Validate, check the charger can take it, send, and shape the result."""
        validate(action, payload)
        session = self.session_for_action(charger_id, action)
        answer = await session.call(action, payload)
        return result(action, charger_id, answer, **derived)

    def station_of(self, charger_id: str) -> Station:
        """The charger's live model entry (it exists once the charger connected or was added)."""
        station = self.registry.get(charger_id)
        if station is None:
            raise ChargerUnavailable(f"{charger_id} is unknown: it never connected and is not added")
        return station
