"""What the allocator is told about one charging session, read from the live model (no I/O).

The point of this module is "settle before you measure": a car ramps up over seconds after a
limit is raised, and chargers send clock-aligned `Current.Import 0` sampled just before a
transaction starts, so a reading counts against an offer only if it was taken after that offer
was applied plus a settle time, and never before the transaction started. Without this the
allocator cut a session to "measured + 2 A" after every raise (issue 13 item 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.chargers.capabilities import ChargerCapabilities
from gateway.charging.allocator import SessionDemand
from gateway.model.station import Station

# Outcome of the last site-profile write of a connector (the SC-SendState point's states).
SEND_STATES = ("Accepted", "Rejected", "Held back", "Pending", "Failed", "Cleared")


@dataclass
class ConnectorControl:
    """What the gateway last wanted, and what the charger answered, for one connector's session."""

    transaction_id: int | None = None  # the session this share belongs to
    requested_a: float | None = None
    # The share the charger accepted last, for which transaction, and when (gateway clock): what
    # it still applies while a newer value is held back, and the start of the settle time.
    written_a: float | None = None
    written_tx: int | None = None
    applied_at: float | None = None
    # The last settled measurement and the offer it was measured under: kept while a newer offer
    # settles, so a cap the allocator made (a car drawing less) is not lifted meanwhile.
    measured_a: float | None = None
    measured_under_a: float | None = None
    # The connector of the operator profile the share was sent in place of (no room for both).
    in_place_of: int | None = None
    allocation_reason: str = ""
    send_status: str = ""
    send_state: str | None = None  # one of SEND_STATES; None: nothing sent for this session
    applied_limit: float | None = None  # from GetCompositeSchedule
    applied_unit: str = ""

    def lowers_to(self, amps: float, start_a: float | None = None) -> bool:
        """Whether `amps` is a cut of what the charger applies for this session. While no share of
        this transaction was accepted it applies the start limit it holds (`start_a`), or, without
        one, its maximum: then any value is a cut."""
        held = self.written_a if self.written_tx in (None, self.transaction_id) else None
        held = held if held is not None else start_a
        return held is None or amps < held

    def end_session(self) -> None:
        """The session ended or was found gone: it holds no share any more (issue 13 item 3).

        A profile without a transaction (the connector's TxDefaultProfile where its one slot
        carries the share, or an operator profile the share went in place of) stays on the
        charger: the next session starts at it, so what it holds is kept."""
        if self.written_tx is not None:
            self.written_a = self.written_tx = self.applied_at = None
        self.transaction_id = self.requested_a = None
        self.applied_limit = self.send_state = None
        self.measured_a = self.measured_under_a = None
        self.applied_unit, self.allocation_reason = "", "no session"


def counted_current(station: Station, connector_id: int, session_start: float | None,
                    applied_at: float | None, settle_s: float) -> float | None:
    """The highest phase current measured since the offer settled, or None when no reading counts.

    Reading timestamps are the charger's clock; `applied_at` is the gateway's, so it is moved by
    the charger's known clock skew. `session_start` is the charger's StartTransaction time.
    """
    if applied_at is None:
        return None
    skew = station.clock_skew_s or 0.0
    settled = applied_at + settle_s + skew
    values = [r.value for k, r in station.meters.items()
              if k.connector_id == connector_id and k.measurand == "Current.Import"
              and r.timestamp >= settled and (session_start is None or r.timestamp > session_start)]
    return max(values) if values else None


def phases_of(station: Station, connector_id: int, caps: ChargerCapabilities, default: int) -> int:
    """Phases in use: from per-phase currents in meter values, else the charger's keys, else the setting."""
    drawing = {k.phase for k, r in station.meters.items()
               if k.connector_id == connector_id and k.measurand == "Current.Import"
               and k.phase in ("L1", "L2", "L3") and r.value > 1.0}
    if drawing:
        return 3 if len(drawing) >= 2 else 1
    return caps.phases_hint(connector_id) or default


def written_share(payload: dict[str, Any]) -> tuple[float | None, int | None]:
    """The limit in amperes (None in watts) and the transaction of a profile the charger accepted."""
    profile = payload["csChargingProfiles"]
    schedule = profile["chargingSchedule"]
    periods = schedule.get("chargingSchedulePeriod") or []
    amps = float(periods[0]["limit"]) if schedule.get("chargingRateUnit") == "A" and periods else None
    return amps, profile.get("transactionId")


def session_input(key: str, station: Station, connector_id: int, caps: ChargerCapabilities,
                  control: ConnectorControl, device: dict[str, Any], *, default_phases: int,
                  settle_s: float, pinned: bool, start_a: float | None = None) -> SessionDemand:
    """One allocator session for a connector with an active transaction.

    The offer is what the charger accepted for this transaction; a measurement counts only once
    that offer settled, and is then compared with that offer (kept until the next one settles).
    While the charger cannot take a new value (write budget used up, or offline) the session is
    pinned at what the charger still applies: the accepted share, else the start limit the
    charger holds (`start_a`), else its maximum (zappi charges at 32 A without a profile).
    """
    connector = station.connectors[connector_id]
    tx = connector.transaction_id
    accepted = control.written_a if control.written_tx in (None, tx) else None
    applies = accepted if accepted is not None else start_a if start_a is not None else caps.max_current_a
    fixed = applies if pinned else None
    measured = counted_current(station, connector_id, connector.session_start,
                               control.applied_at if accepted is not None else None, settle_s)
    if measured is not None:
        control.measured_a, control.measured_under_a = measured, accepted
    return SessionDemand(
        key, phases=phases_of(station, connector_id, caps, default_phases),
        min_a=caps.min_current_a, max_a=caps.max_current_a,
        priority=int(device.get("priority") or 0), weight=float(device.get("weight") or 1.0),
        measured_a=control.measured_a, offered_a=control.measured_under_a, fixed_a=fixed)
