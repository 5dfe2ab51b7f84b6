"""What a point reads: its present value, its relinquish default and how far to trust it.

`PointTable` (points/table.py) inherits these; the value sources are the catalog's specs
(`points.catalog`), read against the live model the table keeps per charger. Reliability has one
meaning on both protocols (docs/bacnet.md, docs/modbus.md, "Not available").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.model.station import Connector, MeterKey
from points.identity import Point
from points.spec import Ctx, PointState

# Reliability of a point's value (BACnet property names; Modbus shows them as valid flags).
NO_FAULT, STALE, NOT_AVAILABLE = "noFaultDetected", "communicationFailure", "unreliableOther"


class TableValues:
    """Reading points against the live model; `PointTable` sets what these use."""

    clock: Callable[[], float]
    state: PointState
    _stations: dict[str, Any]

    def read(self, point: Point) -> Any:
        return point.spec.source(self._ctx(point)) if point.spec.source else None

    def _ctx(self, point: Point) -> Ctx:
        station = self._stations.get(point.charger_id)
        connector = None
        if station is not None and point.connector_id is not None:
            # Connector 0 or an outlet not reported yet reads as a fresh connector (Niagara 6.2:
            # not every charger implements connector 0), never as a missing value.
            connector = station.connectors.get(point.connector_id) or Connector(point.connector_id)
        return Ctx(point, station, connector, self.state, self.clock())

    def read_default(self, point: Point) -> Any:
        """Relinquish default of a commandable point (what applies when no BMS commands it)."""
        fn = point.spec.relinquish_default
        return fn(self._ctx(point)) if fn is not None else self.read(point)

    def reliable(self, point: Point) -> bool:
        """A live value: read now from the charger (or held by the gateway)."""
        return self.reliability(point) == NO_FAULT

    def reliability(self, point: Point, value: Any = ...) -> str:
        """One meaning on both protocols (docs/bacnet.md, docs/modbus.md, "Not available"):

        no-fault-detected: a live value; communication-failure: the last known value, stale
        (charger offline) or kept from before a restart and not yet confirmed by the charger;
        unreliable-other: no value at all ("not available").
        """
        if (self.read(point) if value is ... else value) is None:  # callers that read pass the value
            return NOT_AVAILABLE
        if point.spec.kind == "site":
            return NO_FAULT
        station = self._stations.get(point.charger_id)
        if station is None:
            return NO_FAULT
        if point.spec.ocpp_source.startswith("BootNotification:") and station.last_boot is None:
            return STALE  # identity kept from before a restart: no BootNotification since
        if not point.spec.stale_when_offline:
            return NO_FAULT
        if not station.online or self._restored(point, station):
            return STALE
        return NO_FAULT

    def _restored(self, point: Point, station: Any) -> bool:
        """A value restored after a restart that the charger has not sent again since."""
        if point.spec.kind == "meter":
            reading = station.meters.get(MeterKey(point.connector_id or 0, *point.subject))
            return reading is not None and reading.restored and _may_have_moved(
                station.connectors.get(point.connector_id or 0))
        if point.spec.kind == "connector":
            connector = station.connectors.get(point.connector_id)
            return connector is not None and connector.restored
        return False

    def connector_confirmed(self, station: Any, connector_id: int) -> bool:
        """The Modbus valid flag: online, reported since the start, no restored reading left."""
        connector = station.connectors.get(connector_id)
        if not station.online or connector is None or connector.restored:
            return False
        return not (_may_have_moved(connector)
                    and any(r.restored for k, r in station.meters.items() if k.connector_id == connector_id))



def _may_have_moved(connector: Any) -> bool:
    """Whether a reading kept from before a restart may be out of date: unless the charger has
    confirmed the connector idle since (no transaction: no energy flows), it may."""
    return connector is None or connector.restored or connector.transaction_id is not None

