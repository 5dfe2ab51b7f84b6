"""Every error the gateway raises on purpose, in one place so callers catch by meaning.

    GatewayError
    ├── ConfigError              a setting is missing or has a bad value
    │   ├── QuirkError           a quirk file cannot be used (bad TOML, unknown key, wrong type)
    │   └── LayoutError          Modbus fields do not fit their block (a map change needs a new version)
    ├── OcppError                an OCPP-J error with a 1.6 error code (answered as CALLERROR)
    │   └── (code attribute: FormationViolation, NotImplemented, ...)
    ├── OperationError           an operator action could not be carried out
    │   ├── ChargerUnavailable   offline, not accepted, or the feature profile is not supported
    │   ├── ChargerTimeout       no answer within the response timeout
    │   └── ChargerCallError     the charger answered with a CALLERROR
    ├── ProfileNotSupported      the charger takes no charging profiles (no SmartCharging, or a quirk)
    ├── PointWriteError          a BMS write that is not applied
    │   ├── WriteRefused         refused by the point table (code: a BACnet error / Modbus exception)
    │   ├── ModbusWriteError     answered to the Modbus client with an exception code
    │   └── EncodeError          a value that does not fit its register type (exception 03)
    └── CliError                 a message for the command-line user (exit code 1)

QuirkError, LayoutError and EncodeError are also ValueErrors (bad data). OcppError and
ChargerCallError keep a CALLERROR's fields the same way (`CallErrorFields`). A bad argument to a
function (our bug or an operator's input, checked before anything is sent) is the built-in
ValueError or TypeError; the admin API answers those with 400.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """A configuration file or option is invalid."""


class QuirkError(ConfigError, ValueError):
    """A quirk file that cannot be used (bad TOML, unknown key, wrong type)."""


class LayoutError(ConfigError, ValueError):
    """The fields do not fit their block: a map change that needs a bigger block (new version)."""


class CallErrorFields(Exception):
    """The fields of an OCPP-J CALLERROR (spec 4.2.3): `code` (an OCPP 1.6 error code),
    `description` and `details`; kept by the errors below that stand for one."""

    def __init__(self, message: str, code: str, description: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.description = description
        self.details = details or {}


class OcppError(CallErrorFields, GatewayError):
    """An error that becomes an OCPP CALLERROR; `code` is an OCPP 1.6 error code (spec 4.2.3)."""

    def __init__(self, code: str, description: str, details: dict | None = None) -> None:
        super().__init__(f"{code}: {description}", code, description, details)


class OperationError(GatewayError):
    """An operator action failed; the message is meant for the operator."""


class ChargerUnavailable(OperationError):
    """The charger cannot take the call now (offline, not accepted, feature not supported)."""


class ChargerTimeout(OperationError):
    """The charger did not answer within the response timeout."""


class ChargerCallError(CallErrorFields, OperationError):
    """The charger answered with a CALLERROR."""

    def __init__(self, code: str, description: str, details: dict | None = None) -> None:
        super().__init__(f"charger answered CALLERROR {code}: {description}", code, description, details)


class ProfileNotSupported(GatewayError):
    """The charger does not take charging profiles at all (no SmartCharging, or a quirk says so)."""


class PointWriteError(GatewayError):
    """A write from a BMS that is not applied."""


class WriteRefused(PointWriteError):
    """A BMS write that cannot be applied; `code` maps to a BACnet error / Modbus exception.

    Codes: write-access-denied, value-out-of-range, invalid-value, charger-offline, rejected.
    """

    def __init__(self, reason: str, code: str = "rejected", outcome: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        # The word the result point shows (at most 16 characters, points.catalog.RESULT_TEXT_MAX);
        # the reason is logged.
        self.outcome = outcome or REFUSAL_OUTCOMES.get(code, "Refused")


# The result point's word for each refusal code (a Modbus result register holds 16 characters).
REFUSAL_OUTCOMES = {"write-access-denied": "Refused: denied", "value-out-of-range": "Refused: range",
                    "invalid-value": "Refused: value", "charger-offline": "Refused: offline",
                    "rejected": "Refused"}


class ModbusWriteError(PointWriteError):
    """A client write answered with a Modbus exception instead of being applied.

    02 illegal data address: nothing writable there, or a multi-register value written in part;
    03 illegal data value: out of range, not a state code, NaN; 04 server device failure: the
    charger is offline or refused the command within `modbus.write_wait_s` (Modbus Application
    Protocol 1.1b3, section 7).
    """

    ADDRESS, VALUE, DEVICE = 2, 3, 4

    def __init__(self, code: int, why: str) -> None:
        super().__init__(why)
        self.code = code


class EncodeError(PointWriteError, ValueError):
    """A value that cannot be represented in its register type (answered as exception 03)."""


class CliError(GatewayError):
    """A message for the user; printed without a traceback, exit code 1."""
