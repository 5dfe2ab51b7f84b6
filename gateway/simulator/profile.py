"""Charger profiles as data: one TOML file per manual, loaded into dataclasses.

Why data: the simulator must behave like each charger's manual says, and the gateway's quirk
handling is tested against it. Every vendor difference lives in `profiles/*.toml` (each flag
with a comment citing the manual section); no code outside this loader asks which vendor it is.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

PROFILE_NAMES = ("smappee", "acwallbox", "zappi", "evlink", "generic")

# OCPP 1.6 CiString25Type: chargeBoxSerialNumber / chargePointSerialNumber (BootNotification.req).
BOOT_SERIAL_SCHEMA_MAX = 25


@dataclass(frozen=True)
class KeySpec:
    """One configuration key as a manual lists it: default, access and accepted values."""

    name: str
    value: str | None
    type: str = "string"  # int | float | bool | string | csl
    readonly: bool = False
    min: float | None = None
    max: float | None = None
    also: tuple[float, ...] = ()  # values allowed outside [min, max], e.g. 0 = disabled
    allowed: tuple[str, ...] = ()  # allowed values (for csl: allowed items)
    max_items: int | None = None  # csl
    max_length: int | None = None  # characters
    out_of_range_value: str | None = None  # charger silently stores this instead of rejecting
    reboot_required: bool = False


@dataclass(frozen=True)
class BootInfo:
    """BootNotification.req fields."""

    charge_point_vendor: str
    charge_point_model: str
    charge_point_serial_number: str | None = None
    charge_box_serial_number: str | None = None
    firmware_version: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    meter_type: str | None = None
    meter_serial_number: str | None = None

    def payload(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class SmartChargingSpec:
    """What SetChargingProfile accepts (spec section 3.13 plus the manual's limits)."""

    purposes: tuple[str, ...] = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")
    rate_units: tuple[str, ...] = ("A", "W")
    max_stack_level: int = 10
    max_periods: int = 24
    max_installed: int = 20
    min_current_a: float = 6.0  # IEC 61851 PWM minimum: below it the EV cannot charge
    writes_per_hour: int | None = None
    max_slots: int | None = None
    single_tx_default: bool = False  # a new TxDefaultProfile replaces any existing one
    skip_unchanged_writes: bool = False
    reject_min_charging_rate: bool = False
    reject_number_phases: bool = False
    composite_schedule_connector_zero: bool = True
    clear_unknown_status: str = "Unknown"
    # Real firmware rejects a TxProfile whose transactionId it does not know (any more), every time.
    reject_unknown_transaction: bool = False


@dataclass(frozen=True)
class Firmware:
    """Behaviours of real charge-point stacks that the manuals do not mention (shared notes on
    real firmware); each is off by default so a profile reads as its manual, and tests and the
    site-limit soak benchmark switch them on (`[firmware]` in a profile file, or `with_firmware`).
    """

    ramp_s: float = 0.0  # a car takes this long to ramp from 0 A to the charger's maximum
    meter_while_offline: bool = False  # keeps sampling (queued) while the central system is away
    clock_aligned_outside_tx: bool = False  # Current.Import 0 on the clock, with no transaction
    boot_on_reconnect: bool = True  # False: a mere reconnect sends no BootNotification or status
    status_after_triggered_boot: bool = False  # many stacks send none after a triggered boot
    # SetChargingProfile is answered this long after it arrived: the charger stores (and applies)
    # the profile first (a flash write), so a central system that goes away meanwhile never
    # reads the answer to a profile the charger applies.
    profile_answer_s: float = 0.0


@dataclass(frozen=True)
class Quirks:
    """Named behaviours that differ from the plain OCPP 1.6 reading; defaults are the spec's."""

    boot_pending_waits_for_accepted: bool = False
    boot_serial_truncate_key: str | None = None
    trigger_relays_last_message: bool = False
    trigger_meter_values_only_in_transaction: bool = False
    get_configuration_over_max: str = "truncate"  # truncate | callerror
    # all | limit: a request without keys answers every key, or only GetConfigurationMaxKeys of
    # them (seen in the field, evcc#15869; no manual here says which, so "all" by default).
    get_configuration_unkeyed: str = "all"
    availability_waits_for_unplug: bool = False
    availability_notifies_connector_zero: bool = False
    hard_reset_loses_transaction: bool = False
    remote_stop_status_key: str | None = None
    heartbeat_min_effective_s: int = 0
    authorization_key: str | None = None  # configuration key holding the HTTP Basic password
    reconnect_on_authorization_key_change: bool = False
    # OCPP 1.6 security whitepaper (profile 1): AuthorizationKey is written hex-encoded and the
    # charger sends the decoded bytes as its Basic-auth password (chargers built on the whitepaper).
    authorization_key_hex_decoded: bool = False
    authorize_remote_tx_key: str = "AuthorizeRemoteTxRequests"
    heartbeat_interval_key: str = "HeartbeatInterval"
    meter_interval_key: str = "MeterValueSampleInterval"
    measurands_key: str = "MeterValuesSampledData"
    local_list_tag_max_length: int = 20
    vendor_error_codes: tuple[str, ...] = ()
    firmware_statuses: tuple[str, ...] = ("Downloading", "Downloaded", "Installing", "Installed")
    diagnostics_statuses: tuple[str, ...] = ("Uploading", "Uploaded")
    data_transfer_vendor_id: str | None = None


@dataclass(frozen=True)
class ChargerProfile:
    """Everything the simulator needs to imitate one charger model."""

    name: str
    manual: str
    boot: BootInfo
    connectors: int
    phases: int
    max_current_a: float
    voltage_v: float
    feature_profiles: tuple[str, ...]
    actions: tuple[str, ...]  # central-system-initiated actions answered; others get NotImplemented
    trigger_messages: tuple[str, ...]
    keys: dict[str, KeySpec]
    smart_charging: SmartChargingSpec
    quirks: Quirks
    notes: tuple[str, ...] = field(default=())
    firmware: Firmware = field(default_factory=Firmware)

    def supports(self, action: str) -> bool:
        return action in self.actions


def _key(name: str, raw: Any) -> KeySpec:
    if not isinstance(raw, dict):
        raw = {"value": raw}
    data = dict(raw)
    value = data.pop("value", None)
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif value is not None:
        value = str(value)
    for name_ in ("also", "allowed"):
        if name_ in data:
            data[name_] = tuple(data[name_])
    if "out_of_range_value" in data:
        data["out_of_range_value"] = str(data["out_of_range_value"])
    return KeySpec(name=name, value=value, **data)


def _tupled(data: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


def parse_profile(data: dict[str, Any]) -> ChargerProfile:
    """Build a profile from the parsed TOML document."""
    charger = data["charger"]
    features = data.get("features", {})
    return ChargerProfile(
        name=charger["name"],
        manual=charger.get("manual", ""),
        boot=BootInfo(**data["boot"]),
        connectors=int(charger.get("connectors", 1)),
        phases=int(charger.get("phases", 3)),
        max_current_a=float(charger.get("max_current_a", 32)),
        voltage_v=float(charger.get("voltage_v", 230)),
        feature_profiles=tuple(features.get("profiles", ())),
        actions=tuple(features.get("actions", ())),
        trigger_messages=tuple(features.get("trigger_messages", ())),
        keys={name: _key(name, raw) for name, raw in data.get("keys", {}).items()},
        smart_charging=SmartChargingSpec(**_tupled(data.get("smart_charging", {}))),
        quirks=Quirks(**_tupled(data.get("quirks", {}))),
        notes=tuple(charger.get("notes", ())),
        firmware=Firmware(**data.get("firmware", {})),
    )


def with_firmware(profile: ChargerProfile, reject_unknown_transaction: bool | None = None,
                  **behaviours: Any) -> ChargerProfile:
    """The same charger with real-firmware behaviours switched on (see `Firmware`)."""
    smart = profile.smart_charging
    if reject_unknown_transaction is not None:
        smart = dataclasses.replace(smart, reject_unknown_transaction=reject_unknown_transaction)
    return dataclasses.replace(profile, smart_charging=smart,
                               firmware=dataclasses.replace(profile.firmware, **behaviours))


def load_profile(name_or_path: str | Path) -> ChargerProfile:
    """Load a shipped profile by name (``zappi``) or any TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        if str(name_or_path) not in PROFILE_NAMES:
            raise ValueError(f"unknown charger profile {name_or_path!r}; choose one of {PROFILE_NAMES}")
        text = resources.files("gateway.simulator").joinpath("profiles").joinpath(f"{name_or_path}.toml").read_text("utf-8")
    return parse_profile(tomllib.loads(text))
