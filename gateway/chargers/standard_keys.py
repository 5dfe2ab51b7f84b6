"""The standard OCPP 1.6 configuration keys (spec 9.1-9.4; Niagara guide Appendix 3).

OCPP 1.6 key names are case-insensitive (spec 9: "Key names are case-insensitive"... as the
CiString type of GetConfiguration.key says: case-insensitive string), and chargers spell them
their way: EVlink reports `HeartBeatInterval` and `meterValueSampleInterval`. A key is matched
to its standard spelling here, so it gets the standard point and register (issue 14 item 10);
the charger's own spelling is kept for the calls sent to it.
"""

from __future__ import annotations

# OCPP 1.6 section 9.1: Core keys a charger is required to have.
REQUIRED_CORE_KEYS = (
    "AuthorizeRemoteTxRequests", "ClockAlignedDataInterval", "ConnectionTimeOut",
    "ConnectorPhaseRotation", "GetConfigurationMaxKeys", "HeartbeatInterval",
    "LocalAuthorizeOffline", "LocalPreAuthorize", "MeterValuesAlignedData",
    "MeterValuesSampledData", "MeterValueSampleInterval", "NumberOfConnectors", "ResetRetries",
    "StopTransactionOnEVSideDisconnect", "StopTransactionOnInvalidId", "StopTxnAlignedData",
    "StopTxnSampledData", "SupportedFeatureProfiles", "TransactionMessageAttempts",
    "TransactionMessageRetryInterval", "UnlockConnectorOnEVSideDisconnect",
)
# Every standard 1.6 key, required ones first.
STANDARD_KEYS = REQUIRED_CORE_KEYS + (
    # Core, optional
    "AllowOfflineTxForUnknownId", "AuthorizationCacheEnabled", "BlinkRepeat",
    "ConnectorPhaseRotationMaxLength", "LightIntensity", "MaxEnergyOnInvalidId",
    "MeterValuesAlignedDataMaxLength", "MeterValuesSampledDataMaxLength", "MinimumStatusDuration",
    "StopTxnAlignedDataMaxLength", "StopTxnSampledDataMaxLength",
    "SupportedFeatureProfilesMaxLength", "WebSocketPingInterval",
    # Local Auth List Management (9.2)
    "LocalAuthListEnabled", "LocalAuthListMaxLength", "SendLocalListMaxLength",
    # Reservation (9.3)
    "ReserveConnectorZeroSupported",
    # Smart Charging (9.4)
    "ChargeProfileMaxStackLevel", "ChargingScheduleAllowedChargingRateUnit",
    "ChargingScheduleMaxPeriods", "ConnectorSwitch3to1PhaseSupported",
    "MaxChargingProfilesInstalled",
)
_BY_LOWER = {key.lower(): key for key in STANDARD_KEYS}


def standard_key(name: str) -> str | None:
    """The standard spelling of a configuration key, or None for a vendor key."""
    return _BY_LOWER.get(name.lower())


def same_key(a: str, b: str) -> bool:
    """Two spellings of one key (OCPP key names are case-insensitive)."""
    return a.lower() == b.lower()
