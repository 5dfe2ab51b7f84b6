"""Errors the gateway raises, in one place so callers catch by meaning.

    GatewayError
    ├── ConfigError              a setting is missing or has a bad value
    ├── OcppError                an OCPP-J error with a 1.6 error code (answered as CALLERROR)
    │   └── (code attribute: FormationViolation, NotImplemented, ...)
    └── OperationError           an operator action could not be carried out
        ├── ChargerUnavailable   offline, not accepted, or the feature profile is not supported
        ├── ChargerTimeout       no answer within the response timeout
        └── ChargerCallError     the charger answered with a CALLERROR
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """A configuration file or option is invalid."""


class OcppError(GatewayError):
    """An error that becomes an OCPP CALLERROR; `code` is an OCPP 1.6 error code (spec 4.2.3)."""

    def __init__(self, code: str, description: str, details: dict | None = None) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details or {}


class OperationError(GatewayError):
    """An operator action failed; the message is meant for the operator."""


class ChargerUnavailable(OperationError):
    """The charger cannot take the call now (offline, not accepted, feature not supported)."""


class ChargerTimeout(OperationError):
    """The charger did not answer within the response timeout."""


class ChargerCallError(OperationError):
    """The charger answered with a CALLERROR."""

    def __init__(self, code: str, description: str, details: dict | None = None) -> None:
        super().__init__(f"charger answered CALLERROR {code}: {description}")
        self.code = code
        self.description = description
        self.details = details or {}
