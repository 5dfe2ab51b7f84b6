"""Settings with defaults, loaded from a TOML file and overridable from the command line.

The defaults follow the Niagara driver's "Network Configuration" (guide section 5.5): guest
chargers get Pending with a 120 s reconnection interval, a closed websocket is a fault, and the
response timeout is 10 s. Nothing here needs a file: `Settings()` is a working gateway.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError

REGISTRATION_STATUSES = ("Accepted", "Pending", "Rejected")
AUTHORIZE_POLICIES = ("all", "none", "all_except_blacklist", "none_except_whitelist")


@dataclass
class OcppSettings:
    """The websocket endpoint chargers connect to (Niagara "Host Address", "Enable SSL")."""

    host: str = "0.0.0.0"
    port: int = 8887
    ssl_enabled: bool = False
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    # Security profile 3: the CA that signs the chargers' client certificates, and whether one is
    # required; its common name or a subject alternative name must be the charger id.
    ssl_cafile: str = ""
    require_client_certificate: bool = False
    # Security profile 1 (HTTP Basic, user = charger id). On: every charger sends a password, its
    # own key or else the site password below. Off: chargers without a key connect without one.
    require_password: bool = True
    # The site password for chargers without their own key; empty: made on first start in the
    # data directory (file charger-password, 0600) when require_password is on.
    default_password: str = ""
    response_timeout_s: float = 10.0
    heartbeat_interval_s: int = 300
    websocket_lost_connection_fault: bool = True
    # Without a closed-socket signal, a charger is offline after this many heartbeat intervals.
    offline_after_heartbeats: float = 2.5
    ping_interval_s: float | None = 20.0
    ping_timeout_s: float | None = 20.0
    max_message_bytes: int = 262144
    max_connections: int = 20000
    # Many chargers offer no Sec-WebSocket-Protocol (notes: Grizzl-E); refusing them helps nobody.
    require_subprotocol: bool = False
    # Strict OCPP 1.6 schemas, relaxed per action by a charger's quirk; false relaxes every
    # action of every charger (types and required fields are still checked).
    validate_schemas: bool = True
    # Deeper frames are refused before decoding (the deepest 1.6 message has 6 levels).
    max_nesting_depth: int = 20
    # A connectorId beyond this is refused: each one becomes live state and BMS points.
    max_connector_id: int = 100
    # General-log text per message is cut here (the raw size is noted), and each charger may
    # write this much general-log text a minute; lines beyond are counted, not kept.
    # Transaction lines are always kept.
    log_line_max_chars: int = 1000
    log_budget_bytes_per_minute: int = 65536
    # Freeze long-lived objects out of the garbage collector this often (0: Python's default
    # collector); see gateway/gc_policy.py for the measured pauses this avoids.
    gc_freeze_interval_s: float = 10.0
    # A charger that sent no StatusNotification this long after connecting or booting is asked
    # for one (TriggerMessage): many reconnect without BootNotification or StatusNotification.
    status_trigger_after_s: float = 10.0


@dataclass
class RegistrationSettings:
    """How chargers not in the device database are answered (Niagara 5.5)."""

    guest_response: str = "Pending"
    guest_reconnect_interval_s: int = 120
    # The discovery list keeps at most this many guests; the longest unseen is dropped first.
    max_guests: int = 1000


@dataclass
class AuthorizeSettings:
    """Niagara 5.4 authorize types: all, none, all except blacklist, none except whitelist."""

    policy: str = "all"


@dataclass
class DatabaseSettings:
    path: str = "data/gateway.sqlite"
    general_log_retention_days: float = 90.0
    general_log_max_rows: int = 2_000_000
    log_flush_interval_s: float = 0.5
    meter_sample_retention_days: float = 400.0


@dataclass
class LoggingSettings:
    level: str = "INFO"
    # Niagara 5.1 "Filter System Logs By Name": only this charger's debug lines; empty = all.
    filter_charger: str = ""


@dataclass
class AdminSettings:
    """The local HTTP API the CLI talks to; loopback by default, as it can command chargers."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8888
    # Empty: a random token made on first start in the data directory (file admin-token, 0600).
    token: str = ""
    # Host names (beyond IP addresses and localhost) the admin API answers to; a name not listed
    # is refused, which stops DNS rebinding (docs/security.md).
    allowed_hosts: list[str] = field(default_factory=list)


@dataclass
class BacnetSettings:
    enabled: bool = True
    # Loopback by default so a first start sends nothing onto a building network.
    address: str = "127.0.0.1/8"
    port: int = 47808
    device_id: int = 88870
    device_name: str = "OCPP-BMS-Gateway"
    location: str = ""
    description: str = "OCPP 1.6-J central system to BACnet gateway"
    # "host:port" of a BBMD to register with as a foreign device (routed building networks).
    bbmd_address: str = ""
    bbmd_ttl_s: int = 900
    # 999 is not an ASHRAE-assigned vendor; a product should apply for its own (notes 1.3).
    vendor_id: int = 999
    vendor_name: str = "ocpp-bms-gateway"
    # How long a BMS write waits for the charger's answer before it is acknowledged as Pending
    # (below the 3 s APDU timeout most BMS clients use).
    write_wait_s: float = 2.0


@dataclass
class ModbusSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 5020
    word_order: str = "big"
    mirror_inputs_in_holding: bool = False
    unit_id_per_charger: bool = False
    # How long a Modbus write waits for the charger's answer before it is acknowledged; kept
    # under the 1 s many Modbus clients wait (mbpoll's default timeout).
    write_wait_s: float = 0.8
    # The BACnet priority a Modbus write commands the site limits and availability at (one
    # priority array for both protocols; writing "not available" relinquishes it).
    bacnet_priority: int = 10


@dataclass
class SmartChargingSettings:
    nominal_voltage_v: float = 230.0
    default_phases: int = 3
    site_power_limit_kw: float | None = None
    site_current_limit_a: float | None = None
    safe_power_limit_kw: float | None = None
    setpoint_timeout_s: float = 900.0  # BMS watchdog; 0 = none
    profile_writes_per_hour: int = 60
    settle_s: float = 10.0  # a reading counts against an offer only this long after it was applied
    coalesce_s: float = 0.3  # BMS limit writes closer than this are one change (the last wins)
    # While a site limit is in force, a TxDefaultProfile at this current on every charger that
    # has room for it: a new session takes it until its share arrives. None: off.
    start_limit_a: float | None = None


@dataclass
class Settings:
    ocpp: OcppSettings = field(default_factory=OcppSettings)
    registration: RegistrationSettings = field(default_factory=RegistrationSettings)
    authorize: AuthorizeSettings = field(default_factory=AuthorizeSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    bacnet: BacnetSettings = field(default_factory=BacnetSettings)
    modbus: ModbusSettings = field(default_factory=ModbusSettings)
    smart_charging: SmartChargingSettings = field(default_factory=SmartChargingSettings)

    def validate(self) -> Settings:
        """Refuse values that would only fail later, with a message that names the setting."""
        if self.registration.guest_response not in REGISTRATION_STATUSES:
            raise ConfigError(f"registration.guest_response must be one of {REGISTRATION_STATUSES}")
        if self.authorize.policy not in AUTHORIZE_POLICIES:
            raise ConfigError(f"authorize.policy must be one of {AUTHORIZE_POLICIES}")
        if self.ocpp.ssl_enabled and not (self.ocpp.ssl_certfile and self.ocpp.ssl_keyfile):
            raise ConfigError("ocpp.ssl_enabled needs ocpp.ssl_certfile and ocpp.ssl_keyfile")
        for name in ("max_nesting_depth", "max_connector_id", "log_line_max_chars", "log_budget_bytes_per_minute"):
            if getattr(self.ocpp, name) < 1:
                raise ConfigError(f"ocpp.{name} must be at least 1")
        if self.ocpp.require_client_certificate and not (self.ocpp.ssl_enabled and self.ocpp.ssl_cafile):
            raise ConfigError("ocpp.require_client_certificate needs ocpp.ssl_enabled and ocpp.ssl_cafile")
        if self.modbus.word_order not in ("big", "little"):
            raise ConfigError("modbus.word_order must be 'big' or 'little'")
        if not 1 <= self.modbus.bacnet_priority <= 16:
            raise ConfigError("modbus.bacnet_priority must be a BACnet priority 1..16")
        for name in ("port",):
            for section in (self.ocpp, self.admin, self.bacnet, self.modbus):
                value = getattr(section, name)
                if not 0 <= value <= 65535:
                    raise ConfigError(f"{type(section).__name__}.{name} out of range: {value}")
        return self


def _apply(section: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in dataclasses.fields(section)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown setting {where}.{key}")
        current = getattr(section, key)
        if isinstance(current, bool) and not isinstance(value, bool):
            raise ConfigError(f"{where}.{key} must be true or false")
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        setattr(section, key, value)


def load_settings(path: str | Path | None = None, overrides: dict[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file, then `section.key=value` overrides from the CLI."""
    settings = Settings()
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        for section_name, values in data.items():
            section = getattr(settings, section_name, None)
            if section is None or not isinstance(values, dict):
                raise ConfigError(f"unknown section [{section_name}] in {path}")
            _apply(section, values, section_name)
    for dotted, raw in (overrides or {}).items():
        section_name, _, key = dotted.partition(".")
        section = getattr(settings, section_name, None)
        if section is None or not key:
            raise ConfigError(f"override {dotted!r} must look like section.key")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word is a string
        _apply(section, {key: value}, section_name)
    return settings.validate()


def settings_reference() -> list[tuple[str, str, Any]]:
    """Every setting as (section.key, type, default): the source of docs/configuration.md."""
    rows = []
    for section_field in dataclasses.fields(Settings):
        section = section_field.default_factory()  # type: ignore[misc]
        for f in dataclasses.fields(section):
            rows.append((f"{section_field.name}.{f.name}", str(f.type), getattr(section, f.name)))
    return rows
