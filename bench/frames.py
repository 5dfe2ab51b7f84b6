"""Pre-serialized OCPP 1.6-J frames for the load generator.

Why templates: serializing a 1 KB MeterValues with json.dumps per message would make
the generator cost a sizeable share of what the server costs. Each template is built
once with json.dumps (so it is valid JSON by construction) and then only has the
uniqueId, timestamp and a few values spliced in with %-formatting.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

# Placeholders survive json.dumps unchanged and are turned into %(name)s slots.
_SLOTS = ("uid", "ts", "wh")


def _template(action: str, payload: dict[str, object]) -> str:
    """Return a CALL frame template with %(uid)s, %(ts)s and %(wh)s slots."""
    text = json.dumps([2, "@@uid@@", action, payload], separators=(",", ":"))
    text = text.replace("%", "%%")
    for slot in _SLOTS:
        text = text.replace(f"@@{slot}@@", f"%({slot})s")
    return text


class Clock:
    """ISO-8601 UTC timestamp cached per second: charger clocks tick in seconds anyway."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._text


def boot_notification(charger_id: str) -> str:
    return _template(
        "BootNotification",
        {
            "chargePointVendor": "BenchVendor",
            "chargePointModel": "LoadGen-1",
            "chargePointSerialNumber": charger_id,
            "firmwareVersion": "1.0.0",
        },
    )


def status_notification(connector_id: int, status: str) -> str:
    return _template(
        "StatusNotification",
        {"connectorId": connector_id, "errorCode": "NoError", "status": status, "timestamp": "@@ts@@"},
    )


def authorize(id_tag: str) -> str:
    return _template("Authorize", {"idTag": id_tag})


def start_transaction(id_tag: str) -> str:
    return _template(
        "StartTransaction", {"connectorId": 1, "idTag": id_tag, "meterStart": 0, "timestamp": "@@ts@@"}
    )


def stop_transaction(transaction_id: int) -> str:
    return _template(
        "StopTransaction",
        {"transactionId": transaction_id, "meterStop": "@@wh@@", "timestamp": "@@ts@@", "reason": "Local"},
    ).replace('"%(wh)s"', "%(wh)s")  # meterStop is an integer, not a string


# An 11 kW three-phase session: 16 A per phase at 230 V. The eight measurands are the
# ones the brief and the performance notes use (1,056 bytes in the notes' generator).
_SAMPLES: tuple[tuple[str, str | None, str, str], ...] = (
    ("Energy.Active.Import.Register", None, "Wh", "@@wh@@"),
    ("Power.Active.Import", None, "W", "11040"),
    ("Current.Import", "L1", "A", "16.0"),
    ("Current.Import", "L2", "A", "16.0"),
    ("Current.Import", "L3", "A", "16.0"),
    ("Voltage", "L1-N", "V", "230.1"),
    ("Voltage", "L2-N", "V", "229.8"),
    ("Voltage", "L3-N", "V", "230.4"),
)


def meter_values(transaction_id: int | None) -> str:
    """MeterValues with 8 sampled values on connector 1."""
    sampled = []
    for measurand, phase, unit, value in _SAMPLES:
        sample: dict[str, str] = {
            "value": value,
            "context": "Sample.Periodic",
            "format": "Raw",
            "measurand": measurand,
            "location": "Outlet",
            "unit": unit,
        }
        if phase is not None:
            sample["phase"] = phase
        sampled.append(sample)
    payload: dict[str, object] = {"connectorId": 1}
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    payload["meterValue"] = [{"timestamp": "@@ts@@", "sampledValue": sampled}]
    return _template("MeterValues", payload)


# The configuration of the simulated charger: the keys OCPP 1.6 section 9.1 requires of
# every charger, with plausible values (key: (value, readonly)). An empty answer instead
# makes a central system that reads configuration after boot (the gateway does) fall back
# to batched and one-key reads: 50 GetConfiguration per charger, which no real charger
# causes, and the boot storm would measure that.
CHARGER_CONFIGURATION: dict[str, tuple[str, bool]] = {
    "AuthorizeRemoteTxRequests": ("true", False),
    "ClockAlignedDataInterval": ("0", False),
    "ConnectionTimeOut": ("60", False),
    "ConnectorPhaseRotation": ("0.RST,1.RST", False),
    "GetConfigurationMaxKeys": ("50", True),
    "HeartbeatInterval": ("300", False),
    "LocalAuthorizeOffline": ("true", False),
    "LocalPreAuthorize": ("false", False),
    "MeterValuesAlignedData": ("Energy.Active.Import.Register", False),
    "MeterValuesSampledData": (
        "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage",
        False,
    ),
    "MeterValueSampleInterval": ("10", False),
    "NumberOfConnectors": ("1", True),
    "ResetRetries": ("3", False),
    "StopTransactionOnEVSideDisconnect": ("true", False),
    "StopTransactionOnInvalidId": ("true", False),
    "StopTxnAlignedData": ("", False),
    "StopTxnSampledData": ("", False),
    "SupportedFeatureProfiles": ("Core,SmartCharging", True),
    "TransactionMessageAttempts": ("3", False),
    "TransactionMessageRetryInterval": ("60", False),
    "UnlockConnectorOnEVSideDisconnect": ("true", False),
    "WebSocketPingInterval": ("0", False),
}


def get_configuration_answer(keys: list[str] | None) -> str:
    """GetConfiguration.conf: the requested keys we have, the others as unknownKey."""
    wanted = list(CHARGER_CONFIGURATION) if not keys else keys
    known = [
        {"key": k, "readonly": CHARGER_CONFIGURATION[k][1], "value": CHARGER_CONFIGURATION[k][0]}
        for k in wanted
        if k in CHARGER_CONFIGURATION
    ]
    answer: dict[str, object] = {"configurationKey": known}
    unknown = [k for k in wanted if k not in CHARGER_CONFIGURATION]
    if unknown:
        answer["unknownKey"] = unknown
    return json.dumps(answer, separators=(",", ":"))


# Answers to other calls a central system may send after boot: the smallest payload the
# OCPP 1.6 schemas accept, so the gateway's follow-ups do not stall.
SERVER_CALL_ANSWERS: dict[str, str] = {
    "ChangeConfiguration": '{"status":"Rejected"}',
    "TriggerMessage": '{"status":"Rejected"}',
    "ChangeAvailability": '{"status":"Accepted"}',
    "SetChargingProfile": '{"status":"Rejected"}',
    "ClearChargingProfile": '{"status":"Unknown"}',
    "GetCompositeSchedule": '{"status":"Rejected"}',
    "RemoteStartTransaction": '{"status":"Rejected"}',
    "RemoteStopTransaction": '{"status":"Rejected"}',
    "Reset": '{"status":"Rejected"}',
    "ClearCache": '{"status":"Rejected"}',
    "UnlockConnector": '{"status":"NotSupported"}',
    "GetLocalListVersion": '{"listVersion":0}',
    "DataTransfer": '{"status":"UnknownVendorId"}',
}
