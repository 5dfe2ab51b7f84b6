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
    # Meter values (issue 12): a reading's text, signed meter data (OCMF), sampled values in one
    # message, and what each charger may add to the meter-value rows an hour (an hour's worth may
    # come at once, e.g. a queue sent after a network outage). Beyond: a CALLERROR.
    meter_value_max_chars: int = 100
    signed_meter_value_max_chars: int = 8192
    max_sampled_values_per_message: int = 1000
    meter_budget_bytes_per_hour: int = 2097152
    # StopTransactions for a transaction the gateway does not know, stored as orphan rows per
    # charger an hour (an hour's worth at once). Past it they are answered (OCPP 1.6 6.49: the
    # charger may then delete them) but not stored, and counted in one line a minute. A stop of
    # a known transaction is always stored.
    orphan_stops_per_hour: int = 60
    # Freeze long-lived objects out of the garbage collector this often (0: Python's default
    # collector); see gateway/gc_policy.py for the measured pauses this avoids.
    gc_freeze_interval_s: float = 2.0
    # A charger that sent no StatusNotification this long after connecting or booting is asked
    # for one (TriggerMessage): many reconnect without BootNotification or StatusNotification.
    status_trigger_after_s: float = 3.0


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
    # Under load, the least time between two group commits (each costs an fsync): messages that
    # arrive meanwhile share the next commit. A quiet site's message is committed at once.
    commit_interval_s: float = 0.005


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
    # A password for the web pages' login, besides the token (at least 12 characters).
    password: str = ""


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
    coalesce_s: float = 0.1  # BMS limit writes closer than this are one change (the last wins)
    # Per phase, left free by the shares while a connector is idle: a car that arrives starts from
    # it, and the running sessions are not all rewritten. 0: the shares take the whole limit.
    newcomer_reserve_a: float = 0.0
    # While a site limit is in force, a TxDefaultProfile at this current on connector 0 of every
    # charger that has room for it: a new session takes it until its share arrives, instead of
    # the charger's maximum. 0 (default): it waits for its share; None: off.
    start_limit_a: float | None = 0.0


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
        """Refuse values that would only fail later, with one message that names every setting."""
        problems = [f"{name} {problem}" for name, value in self.values().items()
                    if (problem := check_value(name, value)) is not None]
        if 0 < len(self.admin.password) < 12:
            problems.append("admin.password must be at least 12 characters")
        if self.ocpp.ssl_enabled and not (self.ocpp.ssl_certfile and self.ocpp.ssl_keyfile):
            problems.append("ocpp.ssl_enabled needs ocpp.ssl_certfile and ocpp.ssl_keyfile")
        for name in ("max_nesting_depth", "max_connector_id", "log_line_max_chars", "log_budget_bytes_per_minute",
                     "meter_value_max_chars", "signed_meter_value_max_chars", "max_sampled_values_per_message",
                     "meter_budget_bytes_per_hour", "orphan_stops_per_hour"):
            if getattr(self.ocpp, name) < 1:
                problems.append(f"ocpp.{name} must be at least 1")
        if self.ocpp.require_client_certificate and not (self.ocpp.ssl_enabled and self.ocpp.ssl_cafile):
            problems.append("ocpp.require_client_certificate needs ocpp.ssl_enabled and ocpp.ssl_cafile")
        if problems:
            raise ConfigError("; ".join(problems))
        return self

    def values(self) -> dict[str, Any]:
        """Every setting as {"section.key": value}."""
        return {f"{s.name}.{f.name}": getattr(getattr(self, s.name), f.name)
                for s in dataclasses.fields(self) for f in dataclasses.fields(getattr(self, s.name))}

    def field_type(self, dotted: str) -> str:
        section_name, _, key = dotted.partition(".")
        section = getattr(self, section_name)
        return next(str(f.type) for f in dataclasses.fields(section) if f.name == key)


# Allowed values and ranges, checked at start and for every live change (gateway/operator/live.py).
CHOICES: dict[str, tuple[str, ...]] = {
    "registration.guest_response": REGISTRATION_STATUSES,
    "authorize.policy": AUTHORIZE_POLICIES,
    "modbus.word_order": ("big", "little"),
    "logging.level": ("DEBUG", "INFO", "WARNING", "ERROR", "debug", "info", "warning", "error"),
}
RANGES: dict[str, tuple[float, float]] = {
    "ocpp.port": (0, 65535), "admin.port": (0, 65535), "bacnet.port": (0, 65535),
    "modbus.port": (0, 65535),
    # BootNotification.conf interval: a non-negative integer (OCPP 1.6 6.4); 0 would make a
    # charger pick its own, so the gateway asks for at least 1 s.
    "ocpp.heartbeat_interval_s": (1, 86400),
    "registration.guest_reconnect_interval_s": (1, 86400),
    "ocpp.response_timeout_s": (0.1, 3600), "ocpp.offline_after_heartbeats": (1, 1000),
    "ocpp.max_message_bytes": (1024, 2**31), "ocpp.max_connections": (1, 10**7),
    "ocpp.gc_freeze_interval_s": (0, 86400), "database.log_flush_interval_s": (0.01, 60),
    "database.commit_interval_s": (0, 0.1),
    "database.general_log_retention_days": (0, 36500), "database.general_log_max_rows": (0, 10**10),
    "database.meter_sample_retention_days": (0, 36500), "bacnet.device_id": (0, 4194302),
    "bacnet.bbmd_ttl_s": (1, 65535), "bacnet.vendor_id": (0, 65535),
    "bacnet.write_wait_s": (0, 60), "modbus.write_wait_s": (0, 60),
    "smart_charging.nominal_voltage_v": (50, 1000), "smart_charging.default_phases": (1, 3),
    "smart_charging.site_power_limit_kw": (0, 100000), "smart_charging.site_current_limit_a": (0, 100000),
    "smart_charging.safe_power_limit_kw": (0, 100000), "smart_charging.setpoint_timeout_s": (0, 10**7),
    "smart_charging.settle_s": (0, 3600), "smart_charging.coalesce_s": (0, 60),
    "smart_charging.newcomer_reserve_a": (0, 1000),
    "smart_charging.start_limit_a": (0, 1000),
    "smart_charging.profile_writes_per_hour": (1, 100000),
    "modbus.bacnet_priority": (1, 16), "ocpp.status_trigger_after_s": (0, 86400),
}


def check_value(dotted: str, value: Any) -> str | None:
    """Why `value` is not allowed for setting `dotted`, or None when it is."""
    choices = CHOICES.get(dotted)
    if choices and value not in choices:
        return f"must be one of {', '.join(choices)}, not {value!r}"
    low_high = RANGES.get(dotted)
    if low_high and value is not None and not low_high[0] <= value <= low_high[1]:
        return f"must be between {low_high[0]:g} and {low_high[1]:g}, not {value!r}"
    return None


def coerce(dotted: str, type_text: str, value: Any) -> Any:
    """`value` (from TOML or a `--set` word) as the setting's type, or ConfigError naming it."""
    optional = "None" in type_text
    if optional and value in (None, "", "none"):
        return None
    kind = type_text.replace("| None", "").strip()
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"  # from a web form or `settings set`
        raise ConfigError(f"{dotted} must be true or false, not {value!r}")
    if kind in ("int", "float"):
        if isinstance(value, str):
            try:
                value = float(value) if kind == "float" else int(value)
            except ValueError:
                raise ConfigError(f"{dotted} must be a number, not {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{dotted} must be a number, not {value!r}")
        if kind == "int" and value != int(value):
            raise ConfigError(f"{dotted} must be a whole number, not {value!r}")
        return int(value) if kind == "int" else float(value)
    if kind.startswith("list"):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{dotted} must be a list of text, not {value!r}")
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # `--set bacnet.device_name=4711` means the text
    if not isinstance(value, str):
        raise ConfigError(f"{dotted} must be text, not {value!r}")
    return value


def _apply(settings: Settings, values: dict[str, Any], unknown: list[str]) -> None:
    """Set `values` ({"section.key": value}); unknown names are collected, bad values refused."""
    for dotted, value in values.items():
        section_name, _, key = dotted.partition(".")
        section = getattr(settings, section_name, None)
        if not dataclasses.is_dataclass(section) or key not in {f.name for f in dataclasses.fields(section)}:
            unknown.append(dotted)
            continue
        setattr(section, key, coerce(dotted, settings.field_type(dotted), value))


def load_settings(path: str | Path | None = None, overrides: dict[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file, then `section.key=value` overrides from the CLI."""
    settings = Settings()
    unknown: list[str] = []
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        flat: dict[str, Any] = {}
        for section_name, values in data.items():
            if not isinstance(values, dict):
                unknown.append(section_name)
                continue
            flat.update({f"{section_name}.{k}": v for k, v in values.items()})
        _apply(settings, flat, unknown)
    parsed: dict[str, Any] = {}
    for dotted, raw in (overrides or {}).items():
        if "." not in dotted.strip("."):
            raise ConfigError(f"override {dotted!r} must look like section.key")
        try:
            parsed[dotted] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            parsed[dotted] = raw  # a bare word is a string (a number setting then says so)
    _apply(settings, parsed, unknown)
    if unknown:
        raise ConfigError(f"unknown setting{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}"
                          " (docs/configuration.md lists every setting)")
    return settings.validate()


def settings_reference() -> list[tuple[str, str, Any]]:
    """Every setting as (section.key, type, default): the source of docs/configuration.md."""
    rows = []
    for section_field in dataclasses.fields(Settings):
        section = section_field.default_factory()  # type: ignore[misc]
        for f in dataclasses.fields(section):
            rows.append((f"{section_field.name}.{f.name}", str(f.type), getattr(section, f.name)))
    return rows
