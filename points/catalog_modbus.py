"""The Modbus face of the catalog: which string points, meter values and configuration keys
have registers, and how big (read by points.modbus.layout and the register-map export)."""

# Registers of each string point in the Modbus map, 2 ASCII characters per register; a string
# point not listed here is not served over Modbus (free text such as StatusNotification info or
# the last disconnect reason does not fit a fixed register map). Lengths follow the OCPP 1.6
# field sizes where they are short (CiString20 idTag and vendor/model, CiString25 serial,
# CiString50 firmware) and 16 characters for result texts ("Accepted", "Rejected", "Pending").
MODBUS_STRING_REGISTERS: dict[str, int] = {
    "Vendor": 10, "Model": 10, "Serial": 13, "Firmware": 25, "LastHeartbeat": 10,
    "Reset-Result": 8, "ClearCache-Result": 8,
    "VendorErrorCode": 8, "Availability-Result": 8, "IdTag": 10,
    "Unlock-Result": 8, "RemoteStart": 10, "RemoteStart-Result": 8, "RemoteStop-Result": 8,
    "SC-SendStatus": 8,
    "ICCID": 10, "IMSI": 8, "MeterType": 13, "MeterSerial": 13, "LastUpdate": 10,
}
# Meter values with registers, at the default location (Outlet): entry i sits at the meter area
# + 2i of every connector area. "u32" entries are the UINT32 Wh counter of the energy register
# before them. Append only: the position is the address.
MODBUS_METERS: tuple[tuple[str, str, str], ...] = (
    ("Power.Active.Import", "", ""), ("Energy.Active.Import.Register", "", ""),
    ("Energy.Active.Import.Register", "", "u32"),
    ("Current.Import", "L1", ""), ("Current.Import", "L2", ""), ("Current.Import", "L3", ""),
    ("Voltage", "L1-N", ""), ("Voltage", "L2-N", ""), ("Voltage", "L3-N", ""),
    ("Voltage", "L1", ""), ("Voltage", "L2", ""), ("Voltage", "L3", ""),
    ("Power.Active.Import", "L1", ""), ("Power.Active.Import", "L2", ""),
    ("Power.Active.Import", "L3", ""), ("Current.Import", "", ""), ("Voltage", "", ""),
    ("Current.Offered", "", ""), ("Power.Offered", "", ""), ("SoC", "", ""), ("Temperature", "", ""),
    ("Frequency", "", ""), ("Energy.Active.Export.Register", "", ""),
    ("Energy.Active.Export.Register", "", "u32"), ("Power.Active.Export", "", ""),
    ("Power.Factor", "", ""),
)
# OCPP 1.6 chapter 9: type and accessibility of each standard configuration key. Modbus serves
# integer keys as UINT32 and boolean keys as 0/1 (written back as "true"/"false"); CSL keys are
# text and not served over Modbus. "RW" keys are holding registers, "R" keys input registers.
_KEYS_BY_TYPE: dict[tuple[str, str], str] = {
    ("boolean", "RW"): (
        "AllowOfflineTxForUnknownId AuthorizationCacheEnabled AuthorizeRemoteTxRequests "
        "LocalAuthorizeOffline LocalPreAuthorize StopTransactionOnEVSideDisconnect "
        "StopTransactionOnInvalidId UnlockConnectorOnEVSideDisconnect LocalAuthListEnabled"
    ),
    ("integer", "RW"): (
        "BlinkRepeat ClockAlignedDataInterval ConnectionTimeOut HeartbeatInterval LightIntensity "
        "MaxEnergyOnInvalidId MeterValueSampleInterval MinimumStatusDuration ResetRetries "
        "TransactionMessageAttempts TransactionMessageRetryInterval WebSocketPingInterval"
    ),
    ("CSL", "RW"): (
        "ConnectorPhaseRotation MeterValuesAlignedData MeterValuesSampledData StopTxnAlignedData "
        "StopTxnSampledData"
    ),
    ("integer", "R"): (
        "ConnectorPhaseRotationMaxLength GetConfigurationMaxKeys MeterValuesAlignedDataMaxLength "
        "MeterValuesSampledDataMaxLength NumberOfConnectors StopTxnAlignedDataMaxLength "
        "StopTxnSampledDataMaxLength SupportedFeatureProfilesMaxLength LocalAuthListMaxLength "
        "SendLocalListMaxLength ChargeProfileMaxStackLevel ChargingScheduleMaxPeriods "
        "MaxChargingProfilesInstalled"
    ),
    ("CSL", "R"): (
        "SupportedFeatureProfiles ChargingScheduleAllowedChargingRateUnit"
    ),
    ("boolean", "R"): (
        "ReserveConnectorZeroSupported ConnectorSwitch3to1PhaseSupported"
    ),
}
STANDARD_CONFIG_TYPES: dict[str, tuple[str, str]] = {
    key: kind for kind, keys in _KEYS_BY_TYPE.items() for key in keys.split()}
