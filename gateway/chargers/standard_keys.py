"""The standard OCPP 1.6 configuration keys: one table, read by the configuration read and the points.

Spec sections 9.1 (Core) to 9.4 (Smart Charging); Niagara guide Appendix 3. The order of the table
is fixed: a key's position is its point's local offset (BACnet instance and Modbus register), so a
key is only ever added at the end.

OCPP 1.6 key names are case-insensitive (spec 9: "Key names are case-insensitive"... as the
CiString type of GetConfiguration.key says: case-insensitive string), and chargers spell them
their way: EVlink reports `HeartBeatInterval` and `meterValueSampleInterval`. A key is matched
to its standard spelling here, so it gets the standard point and register (issue 14 item 10);
the charger's own spelling is kept for the calls sent to it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigKeySpec:
    key: str
    section: str  # OCPP 1.6 section: 9.1 Core, 9.2 Local Auth List, 9.3 Reservation, 9.4 Smart Charging
    required: bool  # 9.1: a Core key every charger must have


STANDARD_CONFIG_TABLE: tuple[ConfigKeySpec, ...] = (
    ConfigKeySpec("AllowOfflineTxForUnknownId", "9.1", required=False),
    ConfigKeySpec("AuthorizationCacheEnabled", "9.1", required=False),
    ConfigKeySpec("AuthorizeRemoteTxRequests", "9.1", required=True),
    ConfigKeySpec("BlinkRepeat", "9.1", required=False),
    ConfigKeySpec("ClockAlignedDataInterval", "9.1", required=True),
    ConfigKeySpec("ConnectionTimeOut", "9.1", required=True),
    ConfigKeySpec("ConnectorPhaseRotation", "9.1", required=True),
    ConfigKeySpec("ConnectorPhaseRotationMaxLength", "9.1", required=False),
    ConfigKeySpec("GetConfigurationMaxKeys", "9.1", required=True),
    ConfigKeySpec("HeartbeatInterval", "9.1", required=True),
    ConfigKeySpec("LightIntensity", "9.1", required=False),
    ConfigKeySpec("LocalAuthorizeOffline", "9.1", required=True),
    ConfigKeySpec("LocalPreAuthorize", "9.1", required=True),
    ConfigKeySpec("MaxEnergyOnInvalidId", "9.1", required=False),
    ConfigKeySpec("MeterValuesAlignedData", "9.1", required=True),
    ConfigKeySpec("MeterValuesAlignedDataMaxLength", "9.1", required=False),
    ConfigKeySpec("MeterValuesSampledData", "9.1", required=True),
    ConfigKeySpec("MeterValuesSampledDataMaxLength", "9.1", required=False),
    ConfigKeySpec("MeterValueSampleInterval", "9.1", required=True),
    ConfigKeySpec("MinimumStatusDuration", "9.1", required=False),
    ConfigKeySpec("NumberOfConnectors", "9.1", required=True),
    ConfigKeySpec("ResetRetries", "9.1", required=True),
    ConfigKeySpec("StopTransactionOnEVSideDisconnect", "9.1", required=True),
    ConfigKeySpec("StopTransactionOnInvalidId", "9.1", required=True),
    ConfigKeySpec("StopTxnAlignedData", "9.1", required=True),
    ConfigKeySpec("StopTxnAlignedDataMaxLength", "9.1", required=False),
    ConfigKeySpec("StopTxnSampledData", "9.1", required=True),
    ConfigKeySpec("StopTxnSampledDataMaxLength", "9.1", required=False),
    ConfigKeySpec("SupportedFeatureProfiles", "9.1", required=True),
    ConfigKeySpec("SupportedFeatureProfilesMaxLength", "9.1", required=False),
    ConfigKeySpec("TransactionMessageAttempts", "9.1", required=True),
    ConfigKeySpec("TransactionMessageRetryInterval", "9.1", required=True),
    ConfigKeySpec("UnlockConnectorOnEVSideDisconnect", "9.1", required=True),
    ConfigKeySpec("WebSocketPingInterval", "9.1", required=False),
    ConfigKeySpec("LocalAuthListEnabled", "9.2", required=False),
    ConfigKeySpec("LocalAuthListMaxLength", "9.2", required=False),
    ConfigKeySpec("SendLocalListMaxLength", "9.2", required=False),
    ConfigKeySpec("ReserveConnectorZeroSupported", "9.3", required=False),
    ConfigKeySpec("ChargeProfileMaxStackLevel", "9.4", required=False),
    ConfigKeySpec("ChargingScheduleAllowedChargingRateUnit", "9.4", required=False),
    ConfigKeySpec("ChargingScheduleMaxPeriods", "9.4", required=False),
    ConfigKeySpec("ConnectorSwitch3to1PhaseSupported", "9.4", required=False),
    ConfigKeySpec("MaxChargingProfilesInstalled", "9.4", required=False),
)
# In table order: the point offsets (points.catalog, points.modbus.fields).
STANDARD_CONFIG_KEYS = tuple(spec.key for spec in STANDARD_CONFIG_TABLE)
# OCPP 1.6 section 9.1: Core keys a charger is required to have.
REQUIRED_CORE_KEYS = tuple(spec.key for spec in STANDARD_CONFIG_TABLE if spec.required)
# Every standard key, required ones first: the order a batched configuration read asks them.
STANDARD_KEYS = REQUIRED_CORE_KEYS + tuple(spec.key for spec in STANDARD_CONFIG_TABLE if not spec.required)
_BY_LOWER = {key.lower(): key for key in STANDARD_KEYS}


def standard_key(name: str) -> str | None:
    """The standard spelling of a configuration key, or None for a vendor key."""
    return _BY_LOWER.get(name.lower())


def same_key(a: str, b: str) -> bool:
    """Two spellings of one key (OCPP key names are case-insensitive)."""
    return a.lower() == b.lower()
