"""The point catalog: every point the gateway exposes, once, as data (specs in points.spec words).

Kept apart from `points.table` (which numbers, names and tracks points) so the catalog reads as
the data it is. Offsets in these tables are addresses: append new specs, never reorder, never
reuse an offset (a test pins them). Values come from `points.sources`; the Modbus face (string
lengths, meter registers, configuration-key types) is `points.catalog_modbus`. Every name the
catalog had before its split is importable from here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from gateway.chargers.standard_keys import STANDARD_CONFIG_KEYS
from gateway.model.station import CONNECTOR_STATUSES, ERROR_CODES
from points.catalog_modbus import MODBUS_STRING_REGISTERS
from points.sources import (
    control_value,
    ended_with_session,
    iso_second,
    of_connector,
    of_station,
    result_text,
    serial_of,
    session_duration_s,
    session_energy_kwh,
    site_value,
    smart_state,
    smart_value,
    state_number,
    writes_value,
)
from points.spec import (
    AVAILABILITY_STATES,
    CONFIG_PREFIX,
    COV_INCREMENTS,
    LIMIT_SOURCE_STATES,
    MEASURANDS,
    PHASES,
    REGISTRATION_STATES,
    RESET_STATES,
    RESULT_TEXT_MAX,
    SC_KIND_STATES,
    SC_PURPOSE_STATES,
    SC_SEND_STATES,
    SC_UNIT_STATES,
    UNITS,
    Ctx,
    PointSpec,
    meter_unit,
    to_unit,
)

# The catalog's own tables, and the words of points.spec its readers name it by.
__all__ = [
    "CHARGER_SPECS", "CONNECTOR_SPECS", "MEASURANDS", "MODBUS_STRING_REGISTERS", "PHASES", "RESULT_TEXT_MAX",
    "SITE_SPECS", "STANDARD_CONFIG_KEYS", "UNITS", "PointSpec", "config_result_spec", "config_spec", "meter_spec",
]


@functools.cache  # one spec per measurand/phase/location: every MeterValues asks again
def meter_spec(measurand: str, phase: str, location: str) -> PointSpec:
    """The spec of a meter point (offset is the subject index, computed by the table)."""
    unit = meter_unit(measurand)

    def source(c: Ctx) -> float | None:
        st = c.station
        if st is None:
            return None
        reading = st.reading(c.point.connector_id, measurand, phase, location)
        if reading is None:
            return None
        if flow and ended_with_session(c.connector, reading.timestamp):
            return 0.0
        return round(float(to_unit(reading.value, reading.unit, unit)), 4)
    flow = measurand.startswith(("Power.Active", "Current.Import", "Current.Export"))
    text = " ".join(x for x in (measurand, phase, f"at {location}") if x)
    return PointSpec(measurand, "meter", 0, "analog-input", "float32", unit, source=source,
                     description=f"MeterValues {text}", cov_increment=COV_INCREMENTS.get(unit, 1.0),
                     ocpp_source=f"MeterValues:{measurand}" + (f":{phase}" if phase else "")
                     + f":{location}")


# One spec per key serves every charger (200 wallboxes with the same ~40 keys: 40 specs, not
# 8,000); keys are bounded by their offsets (points.identity.CONFIG_MAX).
@functools.cache
def config_spec(key: str, writable: bool) -> PointSpec:
    def source(c: Ctx) -> str:
        entry = c.station.config.get(key) if c.station is not None else None
        return "" if entry is None or entry.value is None else str(entry.value)
    return PointSpec(key, "config", 0, "characterstring-value", "string", writable=writable,
                     on_write="change_configuration" if writable else "", source=source,
                     description=f"Configuration key {key}" + ("" if writable else " (read-only)"),
                     ocpp_source=f"GetConfiguration:{key}")


@functools.cache
def config_result_spec(key: str) -> PointSpec:
    return PointSpec(key, "config_result", 0, "characterstring-value", "string",
                     source=lambda c: c.state.results.get((c.point.charger_id, None, CONFIG_PREFIX + key), ""),
                     stale_when_offline=False, description=f"Answer to the last write of {key}",
                     ocpp_source="ChangeConfiguration.conf:status")


def _boot_text(key: str, offset: int, ocpp_field: str, read: Callable[[Any], Any],
               description: str = "") -> PointSpec:
    """A BootNotification field as a charger text point (Niagara 6 device properties); it keeps
    its last value while the charger is offline (the field changes only with a new boot)."""
    return PointSpec(key, "charger", offset, "characterstring-value", "string", stale_when_offline=False,
                     source=of_station(read), description=description or ocpp_field,
                     ocpp_source=f"BootNotification:{ocpp_field}")


def _cmd(key: str, offset: int, bacnet_type: str, on_write: str, description: str,
         states: tuple[str, ...] = (), value: Any = False, kind: str = "connector",
         outlets_only: bool = True) -> tuple[PointSpec, PointSpec]:
    """A command point (write = action; reads its idle value) and its result point."""
    modbus = "uint16" if not bacnet_type.startswith("character") else "string"
    return (
        PointSpec(key, kind, offset, bacnet_type, modbus, writable=True, on_write=on_write,
                  states=states, source=lambda c: value, stale_when_offline=False,
                  description=description, outlets_only=outlets_only, ocpp_source=on_write),
        PointSpec(f"{key}-Result", kind, offset + 1, "characterstring-value", "string",
                  source=result_text, stale_when_offline=False, result_of=key,
                  description=f"Outcome of the last {key} command", outlets_only=outlets_only),
    )


SITE_SPECS: tuple[PointSpec, ...] = (
    PointSpec("PowerLimit", "site", 1, "analog-value", "float32", "kW", writable=True,
              commandable=True, on_write="site_power_limit", min_value=0.0, max_value=10000.0,
              source=lambda c: c.state.site.power_limit_kw, cov_increment=0.5,
              relinquish_default=lambda c: c.state.site.default_power_kw,
              description="Site power limit for all chargers (EMS)", ocpp_source="site"),
    PointSpec("CurrentLimit", "site", 2, "analog-value", "float32", "A", writable=True,
              commandable=True, on_write="site_current_limit", min_value=0.0, max_value=10000.0,
              source=lambda c: c.state.site.current_limit_a, cov_increment=0.5,
              relinquish_default=lambda c: c.state.site.default_current_a,
              description="Site current limit per phase for all chargers (EMS)", ocpp_source="site"),
    PointSpec("PowerLimit-InForce", "site", 3, "analog-input", "float32", "kW",
              source=lambda c: site_value(c, "in_force_power_kw"), cov_increment=0.5,
              description="Site power limit applied now (BMS, manual, config or fallback)"),
    PointSpec("CurrentLimit-InForce", "site", 4, "analog-input", "float32", "A",
              source=lambda c: site_value(c, "in_force_current_a"), cov_increment=0.5,
              description="Site current limit per phase applied now"),
    PointSpec("Limit-Reason", "site", 5, "characterstring-value", "string",
              source=lambda c: site_value(c, "reason"),
              description="Why that limit applies: bms, manual, config, fallback: ..., no limit"),
    PointSpec("Limit-Source", "site", 6, "multi-state-input", "uint16", states=LIMIT_SOURCE_STATES,
              source=lambda c: state_number(LIMIT_SOURCE_STATES, site_value(c, "source") or "none"),
              description="Who set the limit in force: none, bms, manual, config, safe, last bms"),
    PointSpec("BMS-WatchdogExpired", "site", 7, "binary-input", "uint16", states=("Normal", "Expired"),
              source=lambda c: bool(site_value(c, "watchdog_expired")),
              description="The BMS did not refresh its limit in time: the safe or last BMS value applies"),
    # No silent limits (issue 14 item 8): added chargers a protocol cannot show (points.capacity).
    PointSpec("Chargers-NotOnBACnet", "site", 50, "analog-input", "uint16", cov_increment=1.0,
              source=lambda c: float(c.state.not_exposed.get("bacnet", 0)),
              description="Added chargers without BACnet objects (slot beyond one device's capacity)"),
    PointSpec("Chargers-NotOnModbus", "site", 51, "analog-input", "uint16", cov_increment=1.0,
              source=lambda c: float(c.state.not_exposed.get("modbus", 0)),
              description="Added chargers without Modbus registers (slot beyond the map or unit ids)"),
)

CHARGER_SPECS: tuple[PointSpec, ...] = (
    PointSpec("Online", "charger", 0, "binary-input", "uint16", source=of_station(lambda s: s.online),
              states=("Offline", "Online"),
              stale_when_offline=False, description="Charger connected and answering",
              ocpp_source="websocket"),
    PointSpec("Registration", "charger", 1, "multi-state-value", "uint16", writable=True,
              on_write="registration", states=REGISTRATION_STATES, stale_when_offline=False,
              source=of_station(lambda s: state_number(REGISTRATION_STATES, s.registration)),
              description="BootNotification answer this charger gets",
              ocpp_source="BootNotification.conf:status"),
    _boot_text("Vendor", 2, "chargePointVendor", lambda s: s.boot.vendor),
    _boot_text("Model", 3, "chargePointModel", lambda s: s.boot.model),
    _boot_text("Serial", 4, "chargePointSerialNumber", serial_of),
    _boot_text("Firmware", 5, "firmwareVersion", lambda s: s.boot.firmware_version),
    # dynamic: the model publishes no event for a Heartbeat, so the servers refresh it.
    PointSpec("LastHeartbeat", "charger", 6, "characterstring-value", "string", dynamic=True,
              stale_when_offline=False, source=of_station(lambda s: iso_second(s.last_heartbeat)),
              description="Time of the last Heartbeat (UTC)", ocpp_source="Heartbeat"),
    PointSpec("Reconnects", "charger", 7, "analog-input", "uint32", stale_when_offline=False,
              source=of_station(lambda s: float(s.reconnects)), cov_increment=1.0,
              description="Reconnections since the gateway started", ocpp_source="websocket"),
    PointSpec("LastDisconnect", "charger", 8, "characterstring-value", "string",
              stale_when_offline=False,
              source=of_station(lambda s: f"{iso_second(s.last_disconnect_at)} {s.last_disconnect}".strip()),
              description="Time and reason of the last disconnection", ocpp_source="websocket"),
    # The Modbus charger block of map version 1 is full: these two are BACnet only.
    PointSpec("SC-Writes", "charger", 9, "analog-input", "", stale_when_offline=False,
              source=lambda c: writes_value(c, "last_hour"),
              description="Charging-profile writes in the last hour (flash-wear guard)"),
    PointSpec("SC-WriteBudget", "charger", 10, "analog-input", "", stale_when_offline=False,
              source=lambda c: writes_value(c, "budget_per_hour"),
              description="Charging-profile writes allowed per hour for this charger"),
    *_cmd("Reset", 20, "multi-state-value", "reset", "Write Soft or Hard to reset the charger",
          RESET_STATES, 1, "charger", False),
    *_cmd("ClearCache", 22, "binary-value", "clear_cache",
          "Write active to clear the authorization cache", ("Idle", "Clear"), False, "charger", False),
    # Niagara guide 6 device properties still missing (issue 14 item 12): BootNotification fields.
    _boot_text("ICCID", 30, "iccid", lambda s: s.boot.iccid, "ICCID of the modem's SIM card"),
    _boot_text("IMSI", 31, "imsi", lambda s: s.boot.imsi, "IMSI of the modem's SIM card"),
    _boot_text("MeterType", 32, "meterType", lambda s: s.boot.meter_type, "Type of the main electrical meter"),
    _boot_text("MeterSerial", 33, "meterSerialNumber", lambda s: s.boot.meter_serial,
               "Serial number of the main electrical meter"),
)

CONNECTOR_SPECS: tuple[PointSpec, ...] = (
    PointSpec("Status", "connector", 0, "multi-state-input", "uint16", states=CONNECTOR_STATUSES,
              source=of_connector(lambda c: state_number(CONNECTOR_STATUSES, c.status)),
              description="StatusNotification status (Niagara appendix 2)",
              ocpp_source="StatusNotification:status"),
    PointSpec("ErrorCode", "connector", 1, "multi-state-input", "uint16", states=ERROR_CODES,
              source=of_connector(lambda c: state_number(ERROR_CODES, c.error_code)),
              description="StatusNotification errorCode (Niagara appendix 1)",
              ocpp_source="StatusNotification:errorCode"),
    PointSpec("Info", "connector", 2, "characterstring-value", "string",
              source=of_connector(lambda c: c.info), description="StatusNotification info",
              ocpp_source="StatusNotification:info"),
    PointSpec("VendorErrorCode", "connector", 3, "characterstring-value", "string",
              source=of_connector(lambda c: c.vendor_error_code),
              description="StatusNotification vendorErrorCode",
              ocpp_source="StatusNotification:vendorErrorCode"),
    PointSpec("Availability", "connector", 4, "multi-state-value", "uint16", writable=True,
              commandable=True, on_write="availability", states=AVAILABILITY_STATES,
              source=of_connector(lambda c: state_number(AVAILABILITY_STATES, c.availability)),
              relinquish_default=lambda c: 1, stale_when_offline=False,
              description="Enable (Operative) or disable (Inoperative); connector 0 = whole charger",
              ocpp_source="ChangeAvailability"),
    PointSpec("Availability-Result", "connector", 5, "characterstring-value", "string",
              source=result_text, result_of="Availability", stale_when_offline=False,
              description="Answer to the last availability change"),
    PointSpec("TransactionId", "connector", 6, "analog-input", "uint32", cov_increment=1.0,
              source=of_connector(lambda c: float(c.transaction_id or 0)),
              description="Active transaction id (0: none)", ocpp_source="StartTransaction.conf:transactionId"),
    PointSpec("IdTag", "connector", 7, "characterstring-value", "string",
              source=of_connector(lambda c: c.id_tag if c.transaction_id is not None else ""),
              description="idTag of the active transaction", ocpp_source="StartTransaction:idTag"),
    PointSpec("SessionEnergy", "connector", 8, "analog-input", "float32", "kWh",
              source=session_energy_kwh, cov_increment=0.01,
              description="Energy of the active transaction", ocpp_source="MeterValues-meterStart"),
    PointSpec("SessionDuration", "connector", 9, "analog-input", "uint32", "s",
              source=session_duration_s, cov_increment=60.0, dynamic=True,
              description="Duration of the active transaction", ocpp_source="StartTransaction:timestamp"),
    *_cmd("Unlock", 20, "binary-value", "unlock", "Write active to unlock the connector", ("Idle", "Unlock")),
    *_cmd("RemoteStart", 22, "characterstring-value", "remote_start",
          "Write an idTag to start a transaction on this connector", value=""),
    *_cmd("RemoteStop", 24, "binary-value", "remote_stop",
          "Write active to stop the active transaction", ("Idle", "Stop")),
    PointSpec("SC-Enable", "connector", 40, "binary-value", "uint16", writable=True,
              on_write="smart_setting", source=smart_value("enabled"), stale_when_offline=False,
              states=("Disabled", "Enabled"),
              description="Smart charging on (Niagara 6.3 Enable)", ocpp_source="SetChargingProfile"),
    PointSpec("SC-Unit", "connector", 41, "multi-state-value", "uint16", writable=True,
              on_write="smart_setting", states=SC_UNIT_STATES, stale_when_offline=False,
              source=smart_state("unit", SC_UNIT_STATES),
              description="chargingRateUnit: A (current) or W (power)", ocpp_source="chargingRateUnit"),
    PointSpec("SC-Limit", "connector", 42, "analog-value", "float32", writable=True,
              on_write="smart_setting", min_value=0.0, max_value=1_000_000.0, cov_increment=0.1,
              source=smart_value("limit"), stale_when_offline=False,
              description="Limit in the unit of SC-Unit", ocpp_source="chargingSchedulePeriod:limit"),
    PointSpec("SC-Kind", "connector", 43, "multi-state-value", "uint16", writable=True,
              on_write="smart_setting", states=SC_KIND_STATES, stale_when_offline=False,
              source=smart_state("kind", SC_KIND_STATES), description="chargingProfileKind",
              ocpp_source="chargingProfileKind"),
    PointSpec("SC-Purpose", "connector", 44, "multi-state-value", "uint16", writable=True,
              on_write="smart_setting", states=SC_PURPOSE_STATES, stale_when_offline=False,
              source=smart_state("purpose", SC_PURPOSE_STATES), description="chargingProfilePurpose",
              ocpp_source="chargingProfilePurpose"),
    PointSpec("SC-ProfileId", "connector", 45, "analog-value", "uint32", writable=True,
              on_write="smart_setting", min_value=1.0, max_value=2_147_483_647.0,
              source=lambda c: float(c.smart().profile_id), stale_when_offline=False,
              description="chargingProfileId", ocpp_source="chargingProfileId"),
    PointSpec("SC-StackLevel", "connector", 46, "analog-value", "uint16", writable=True,
              on_write="smart_setting", min_value=0.0, max_value=100.0,
              source=lambda c: float(c.smart().stack_level), stale_when_offline=False,
              description="stackLevel", ocpp_source="stackLevel"),
    PointSpec("SC-SendStatus", "connector", 47, "characterstring-value", "string",
              source=smart_value("send_status"), stale_when_offline=False,
              description="Outcome of the last profile write", ocpp_source="SetChargingProfile.conf:status"),
    PointSpec("SC-Requested", "connector", 48, "analog-input", "float32", "A", outlets_only=True,
              source=lambda c: control_value(c, "requested_a"), stale_when_offline=False, cov_increment=0.1,
              description="Share of the site limit the gateway asks for (0 = paused)"),
    PointSpec("SC-Applied", "connector", 49, "analog-input", "float32", outlets_only=True,
              source=lambda c: control_value(c, "applied_limit"), stale_when_offline=False, cov_increment=0.1,
              description="Limit the charger reports it applies (GetCompositeSchedule)",
              ocpp_source="GetCompositeSchedule.conf"),
    PointSpec("SC-SendState", "connector", 50, "multi-state-input", "uint16", outlets_only=True,
              states=SC_SEND_STATES, stale_when_offline=False,
              source=lambda c: state_number(SC_SEND_STATES, control_value(c, "send_state") or "Not available"),
              description="Last site-profile write: Accepted, Rejected, Held back, Pending, ...",
              ocpp_source="SetChargingProfile.conf:status"),
    # Niagara guide 6.2 per-connector Last Update (issue 14 item 12).
    PointSpec("LastUpdate", "connector", 30, "characterstring-value", "string",
              source=of_connector(lambda c: iso_second(c.last_update)),
              description="Time of the connector's last StatusNotification or transaction change (UTC)",
              ocpp_source="StatusNotification"),
)
