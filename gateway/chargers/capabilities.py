"""What one charger can do, in one record that smart charging, operations and points ask.

Built from the OCPP 1.6 configuration keys (read with GetConfiguration after boot) and the quirk
profile matched on the BootNotification. The charger's keys are the authority; a quirk only
narrows them (a lower limit, fewer units) or fills in what no key reports (accepted purposes,
write budget), with one exception: a feature profile the manual documents as supported but the
charger's SupportedFeatureProfiles omits (``unlisted_feature_profiles``). A missing or unreadable key is never fatal: it gets the safe default listed in
``DEFAULTS`` and is named in ``defaults_used`` so commissioning can show it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from gateway.chargers.quirks import PURPOSES, Quirk, QuirkSet, bundled_quirks
from gateway.model.station import Station

# OCPP 1.6 section 3 (feature profiles) and 5/6: the central-system calls each profile brings.
PROFILE_ACTIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "Core": (
        "ChangeAvailability", "ChangeConfiguration", "ClearCache", "DataTransfer", "GetConfiguration",
        "RemoteStartTransaction", "RemoteStopTransaction", "Reset", "UnlockConnector",
    ),
    "FirmwareManagement": ("GetDiagnostics", "UpdateFirmware"),
    "LocalAuthListManagement": ("GetLocalListVersion", "SendLocalList"),
    "Reservation": ("ReserveNow", "CancelReservation"),
    "SmartCharging": ("SetChargingProfile", "ClearChargingProfile", "GetCompositeSchedule"),
    "RemoteTrigger": ("TriggerMessage",),
})

# Safe defaults for missing keys, and why they are safe.
DEFAULTS: Mapping[str, object] = MappingProxyType({
    # Unknown: every profile is tried; a charger that lacks one answers the call NotSupported.
    # Refusing to smart-charge because a key is missing was fatal in evcc#3891.
    "SupportedFeatureProfiles": None,
    # Amperes: the unit every charger in shared/seeds accepts (EVlink 4.1 accepts nothing else).
    "ChargingScheduleAllowedChargingRateUnit": ("A",),
    # Stack level 0 is valid on every charger (evcc#4957: some accept only 0).
    "ChargeProfileMaxStackLevel": 0,
    # One period is all a constant limit needs.
    "ChargingScheduleMaxPeriods": 1,
    "MaxChargingProfilesInstalled": None,
    # One key per GetConfiguration always works; some chargers answer at most 4 (evcc#15869).
    "GetConfigurationMaxKeys": 1,
    "SendLocalListMaxLength": 1,
    "LocalAuthListMaxLength": None,
    # OCPP 1.6 section 9.1.14 default measurand.
    "MeterValuesSampledData": ("Energy.Active.Import.Register",),
    "NumberOfConnectors": 1,
})
DEFAULT_MIN_CURRENT_A = 6.0  # IEC 61851-1: the lowest pilot current a car must follow
DEFAULT_MAX_CURRENT_A = 32.0  # common AC maximum; the charger's own maximum still applies

_THREE_PHASE_ROTATIONS = {"RST", "RTS", "SRT", "STR", "TRS", "TSR"}
_LEADING_INT = re.compile(r"^\s*(\d+)")


@dataclass(frozen=True)
class ChargerCapabilities:
    """One charger's abilities and limits; ask it, never the vendor name."""

    vendor: str = ""
    model: str = ""
    firmware: str | None = None
    quirk_name: str | None = None
    feature_profiles: frozenset[str] | None = None
    allowed_rate_units: tuple[str, ...] = ("A",)
    max_stack_level: int = 0
    max_periods: int = 1
    max_profiles_installed: int | None = None
    accepted_purposes: tuple[str, ...] = PURPOSES
    rejected_schedule_fields: frozenset[str] = frozenset()
    profile_writes_per_hour: int | None = None
    get_configuration_max_keys: int = 1
    send_local_list_max_length: int = 1
    local_auth_list_max_length: int | None = None
    meter_values_sampled_data: tuple[str, ...] = ("Energy.Active.Import.Register",)
    number_of_connectors: int = 1
    phase_rotation: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    min_current_a: float = DEFAULT_MIN_CURRENT_A
    max_current_a: float = DEFAULT_MAX_CURRENT_A
    composite_schedule_connector_zero: bool = True
    unsupported_actions: frozenset[str] = frozenset()
    relaxed_schema_actions: frozenset[str] = frozenset()
    recommended_configuration: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    defaults_used: tuple[str, ...] = ()

    @classmethod
    def from_configuration(
        cls,
        keys: Mapping[str, str | None],
        vendor: str,
        model: str,
        firmware: str | None = None,
        quirks: QuirkSet | Quirk | None = None,
    ) -> ChargerCapabilities:
        """Combine configuration keys (any case, values as the charger sent them) with a quirk.

        ``quirks`` is a set to match on vendor/model/firmware (the bundled set when None), or one
        quirk an operator assigned to this charger.
        """
        if isinstance(quirks, Quirk):
            quirk: Quirk | None = quirks
        else:
            quirk = (quirks if quirks is not None else bundled_quirks()).match(vendor, model, firmware)
        reader = _KeyReader(keys)
        q = quirk or Quirk(name="")
        units = reader.rate_units("ChargingScheduleAllowedChargingRateUnit")
        if q.allowed_rate_units is not None:
            units = tuple(u for u in units or () if u in q.allowed_rate_units) or q.allowed_rate_units
        sampled = reader.csl("MeterValuesSampledData")
        profiles = reader.feature_profiles("SupportedFeatureProfiles")
        if profiles is not None:
            # The one widening a quirk may do: a profile the manual documents but the key omits.
            profiles |= frozenset(q.unlisted_feature_profiles)
        return cls(
            vendor=vendor,
            model=model,
            firmware=firmware,
            quirk_name=quirk.name if quirk else None,
            feature_profiles=profiles,
            allowed_rate_units=units or reader.default("ChargingScheduleAllowedChargingRateUnit"),
            max_stack_level=reader.limit("ChargeProfileMaxStackLevel", q.max_stack_level),
            max_periods=max(1, reader.limit("ChargingScheduleMaxPeriods", q.max_periods)),
            max_profiles_installed=reader.limit("MaxChargingProfilesInstalled", q.max_profiles_installed),
            accepted_purposes=q.accepted_purposes or PURPOSES,
            rejected_schedule_fields=frozenset(q.rejected_schedule_fields),
            profile_writes_per_hour=q.profile_writes_per_hour,
            get_configuration_max_keys=max(1, reader.limit("GetConfigurationMaxKeys", q.get_configuration_max_keys)),
            send_local_list_max_length=max(1, reader.limit("SendLocalListMaxLength", q.send_local_list_max_length)),
            local_auth_list_max_length=reader.limit("LocalAuthListMaxLength", q.local_auth_list_max_length),
            meter_values_sampled_data=sampled or reader.default("MeterValuesSampledData"),
            number_of_connectors=max(1, reader.limit("NumberOfConnectors", None)),
            phase_rotation=MappingProxyType(reader.phase_rotation("ConnectorPhaseRotation")),
            min_current_a=q.min_current_a if q.min_current_a is not None else DEFAULT_MIN_CURRENT_A,
            max_current_a=q.max_current_a if q.max_current_a is not None else DEFAULT_MAX_CURRENT_A,
            composite_schedule_connector_zero=q.composite_schedule_connector_zero,
            unsupported_actions=frozenset(q.unsupported_actions),
            relaxed_schema_actions=frozenset(q.relaxed_schema_actions),
            recommended_configuration=q.recommended_configuration,
            defaults_used=tuple(reader.defaults_used),
        )

    def supports_profile(self, profile: str) -> bool:
        """Whether a feature profile is reported; an unreported key counts as supported (try it)."""
        if self.feature_profiles is None:
            return True
        return profile in self.feature_profiles

    def supports_action(self, action: str) -> bool:
        """Whether sending this central-system call is worth it (profile reported, no quirk against it)."""
        if action in self.unsupported_actions:
            return False
        profile = next((p for p, actions in PROFILE_ACTIONS.items() if action in actions), None)
        return profile is None or self.supports_profile(profile)

    def accepts_purpose(self, purpose: str) -> bool:
        return purpose in self.accepted_purposes

    def can_get_composite_schedule(self, connector_id: int) -> bool:
        """EVlink answers GetCompositeSchedule only for connectorId > 0 (EVlink guide 4.1)."""
        if not self.supports_action("GetCompositeSchedule"):
            return False
        return connector_id > 0 or self.composite_schedule_connector_zero

    def has_measurand(self, measurand: str) -> bool:
        """Whether MeterValuesSampledData lists a measurand, with or without a phase suffix."""
        return any(m == measurand or m.startswith(measurand + ".") for m in self.meter_values_sampled_data)

    def phases_hint(self, connector_id: int) -> int | None:
        """Phases wired to a connector, if ConnectorPhaseRotation tells (NotApplicable = 1 phase)."""
        rotation = self.phase_rotation.get(connector_id, self.phase_rotation.get(0))
        if rotation in _THREE_PHASE_ROTATIONS:
            return 3
        if rotation == "NotApplicable":
            return 1
        return None


class _KeyReader:
    """Reads configuration values tolerantly and remembers which keys fell back to defaults."""

    def __init__(self, keys: Mapping[str, str | None]) -> None:
        self._keys = {k.lower(): str(v) for k, v in keys.items() if v is not None and str(v).strip()}
        self.defaults_used: list[str] = []

    def default(self, key: str):  # returns the type of DEFAULTS[key]
        if key not in self.defaults_used:
            self.defaults_used.append(key)
        return DEFAULTS[key]

    def limit(self, key: str, quirk: int | None):
        """The lower of the charger's value and the quirk's; the default when neither is known."""
        known = [v for v in (self.integer(key), quirk) if v is not None]
        return min(known) if known else self.default(key)

    def integer(self, key: str) -> int | None:
        # The AC wallbox manual shows values such as "10S"; take the leading digits.
        found = _LEADING_INT.match(self._keys.get(key.lower(), ""))
        return int(found.group(1)) if found else None

    def csl(self, key: str) -> tuple[str, ...]:
        return tuple(i.strip() for i in self._keys.get(key.lower(), "").split(",") if i.strip())

    def rate_units(self, key: str) -> tuple[str, ...]:
        names = {"current": "A", "a": "A", "power": "W", "w": "W"}
        units: list[str] = []
        for item in self.csl(key):
            unit = names.get(item.lower())
            if unit and unit not in units:
                units.append(unit)
        return tuple(units)

    def feature_profiles(self, key: str) -> frozenset[str] | None:
        if key.lower() not in self._keys:
            self.default(key)
            return None
        found = set()
        for item in self.csl(key):
            word = item.replace(" ", "").lower()
            if word.startswith("localauth"):
                # The AC wallbox manual (3.2.1) reports "LocalAuthicationListManagement".
                found.add("LocalAuthListManagement")
            else:
                found.update(p for p in PROFILE_ACTIONS if p.lower() == word)
        return frozenset(found)

    def phase_rotation(self, key: str) -> dict[int, str]:
        rotation: dict[int, str] = {}
        for item in self.csl(key):
            connector, dot, value = item.partition(".")
            if dot and connector.isdigit():
                rotation[int(connector)] = value.strip()
            else:
                rotation.setdefault(0, item)  # a bare value speaks for the whole charger
        return rotation


def capabilities_of(station: Station) -> ChargerCapabilities:
    """What this charger can do, from its configuration keys and its quirk profile.

    Asked for every charger on every smart-charging pass (200 chargers: 200 asks a pass): the
    answer, immutable, is kept per configuration and identity and made again when either changes.
    """
    boot = station.boot
    return _capabilities(tuple((k, v.value) for k, v in station.config.items()), boot.vendor, boot.model,
                         boot.firmware_version or None, station.quirk_name)


@lru_cache(maxsize=4096)
def _capabilities(keys: tuple[tuple[str, str | None], ...], vendor: str, model: str, firmware: str | None,
                  quirk_name: str | None) -> ChargerCapabilities:
    # A quirk an operator assigned by name (the AC wallbox's has no [match]) wins over matching.
    assigned = bundled_quirks().by_name(quirk_name) if quirk_name else None
    return ChargerCapabilities.from_configuration(dict(keys), vendor, model, firmware, quirks=assigned)


def schema_relaxations(station: Station, boot: Mapping[str, Any] | None = None) -> frozenset[str]:
    """The actions whose harmless schema deviations this charger's quirk tolerates.

    A BootNotification is judged on the vendor, model and firmware it carries: the station's
    are not known yet (EVlink 6.3.3.2 note 1: the over-long serials come in the first boot).
    """
    if boot is None:
        return capabilities_of(station).relaxed_schema_actions
    vendor, model, firmware = (boot.get(k) for k in ("chargePointVendor", "chargePointModel", "firmwareVersion"))
    assigned = bundled_quirks().by_name(station.quirk_name) if station.quirk_name else None
    caps = ChargerCapabilities.from_configuration(
        {}, vendor if isinstance(vendor, str) else "", model if isinstance(model, str) else "",
        firmware if isinstance(firmware, str) else None, quirks=assigned)
    return caps.relaxed_schema_actions
