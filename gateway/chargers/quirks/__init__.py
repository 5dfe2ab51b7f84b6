"""Charger quirks as data: one TOML file per charger model, matched on its BootNotification.

Each file names what a charger does differently from what its configuration keys say (or says
nothing about), one flag per behaviour, with the manual section as a comment. This module is the
only place that looks at vendor and model strings; everything else asks ``ChargerCapabilities``.

File layout (all sections and keys optional except ``name``)::

    name = "myenergi-zappi"            # how operators and logs refer to it
    manual = "003_b29675710aab7b80"    # the source document in shared/seeds
    [match]                            # regular expressions, anchored at the start (a prefix works)
    vendor = "(?i)^myenergi"           # BootNotification chargePointVendor
    model = "(?i)^zappi"               # chargePointModel
    firmware = "^5"                    # firmwareVersion; a profile with it wins over one without
    [smart_charging]  accepted_purposes, allowed_rate_units ("A"/"W"), max_stack_level,
                      max_periods, max_profiles_installed, min_current_a, max_current_a,
                      profile_writes_per_hour, rejected_schedule_fields,
                      composite_schedule_connector_zero
    [protocol]        unsupported_actions, unlisted_feature_profiles, relaxed_schema_actions,
                      get_configuration_max_keys, send_local_list_max_length,
                      local_auth_list_max_length
    [configuration]   recommended = { Key = "value" }  (ChangeConfiguration worth sending)

A file without ``[match]`` is never chosen from a boot; an operator assigns it by name.
Unknown keys are an error, so a typo cannot silently switch a quirk off.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gateway.errors import QuirkError

BUNDLED_DIR = Path(__file__).parent

PURPOSES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")
FEATURE_PROFILES = ("Core", "FirmwareManagement", "LocalAuthListManagement", "Reservation",
                    "SmartCharging", "RemoteTrigger")
RATE_UNITS = ("A", "W")


@dataclass(frozen=True)
class Quirk:
    """What one charger model needs; ``None`` means "nothing special, ask the charger"."""

    name: str
    manual: str = ""
    vendor: re.Pattern[str] | None = None
    model: re.Pattern[str] | None = None
    firmware: re.Pattern[str] | None = None
    # smart charging
    accepted_purposes: tuple[str, ...] | None = None
    allowed_rate_units: tuple[str, ...] | None = None
    max_stack_level: int | None = None
    max_periods: int | None = None
    max_profiles_installed: int | None = None
    min_current_a: float | None = None
    max_current_a: float | None = None
    profile_writes_per_hour: int | None = None
    rejected_schedule_fields: tuple[str, ...] = ()
    composite_schedule_connector_zero: bool = True
    # protocol
    unsupported_actions: tuple[str, ...] = ()
    # Feature profiles the manual documents as supported although the charger's own
    # SupportedFeatureProfiles key leaves them out (EVlink 8.1 omits RemoteTrigger).
    unlisted_feature_profiles: tuple[str, ...] = ()
    relaxed_schema_actions: tuple[str, ...] = ()
    get_configuration_max_keys: int | None = None
    send_local_list_max_length: int | None = None
    local_auth_list_max_length: int | None = None
    # configuration
    recommended_configuration: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def matchable(self) -> bool:
        """Whether a BootNotification can select this quirk (it has a vendor or model pattern)."""
        return self.vendor is not None or self.model is not None

    def matches(self, vendor: str, model: str, firmware: str | None) -> bool:
        """True when every pattern the quirk has matches the boot fields."""
        if not self.matchable:
            return False
        if self.vendor is not None and not self.vendor.match(vendor or ""):
            return False
        if self.model is not None and not self.model.match(model or ""):
            return False
        return self.firmware is None or (firmware is not None and bool(self.firmware.match(firmware)))


class QuirkSet:
    """The quirks known to the gateway; picks the one that fits a charger."""

    def __init__(self, quirks: list[Quirk] | tuple[Quirk, ...] = ()) -> None:
        names = [q.name for q in quirks]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise QuirkError(f"quirk names used twice: {sorted(duplicates)}")
        self._quirks = tuple(quirks)

    def __iter__(self) -> Iterator[Quirk]:
        return iter(self._quirks)

    def __len__(self) -> int:
        return len(self._quirks)

    def by_name(self, name: str) -> Quirk | None:
        """The quirk an operator assigned by name (also those without ``[match]``)."""
        return next((q for q in self._quirks if q.name == name), None)

    def match(self, vendor: str, model: str, firmware: str | None = None) -> Quirk | None:
        """The quirk for a BootNotification; one with a firmware pattern beats one without."""
        found = [q for q in self._quirks if q.matches(vendor, model, firmware)]
        found.sort(key=lambda q: q.firmware is None)
        return found[0] if found else None


_SECTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "match": {"vendor": str, "model": str, "firmware": str},
    "smart_charging": {
        "accepted_purposes": list,
        "allowed_rate_units": list,
        "max_stack_level": int,
        "max_periods": int,
        "max_profiles_installed": int,
        "min_current_a": (int, float),
        "max_current_a": (int, float),
        "profile_writes_per_hour": int,
        "rejected_schedule_fields": list,
        "composite_schedule_connector_zero": bool,
    },
    "protocol": {
        "unsupported_actions": list,
        "unlisted_feature_profiles": list,
        "relaxed_schema_actions": list,
        "get_configuration_max_keys": int,
        "send_local_list_max_length": int,
        "local_auth_list_max_length": int,
    },
    "configuration": {"recommended": dict},
}


def parse_quirk(data: Mapping[str, Any], source: str = "<quirk>") -> Quirk:
    """Check one parsed TOML document and turn it into a ``Quirk``."""
    unknown = set(data) - set(_SECTIONS) - {"name", "manual"}
    if unknown:
        raise QuirkError(f"{source}: unknown top-level keys {sorted(unknown)}")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise QuirkError(f"{source}: 'name' is required")
    values: dict[str, Any] = {"name": data["name"], "manual": str(data.get("manual", ""))}
    for section, spec in _SECTIONS.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise QuirkError(f"{source}: [{section}] must be a table")
        for key, value in table.items():
            if key not in spec:
                raise QuirkError(f"{source}: unknown key {section}.{key}")
            if isinstance(value, bool) and spec[key] is not bool or not isinstance(value, spec[key]):
                raise QuirkError(f"{source}: {section}.{key} has the wrong type")
            values.update(_convert(section, key, value, source))
    _check_words(values, source)
    return Quirk(**values)


def _convert(section: str, key: str, value: Any, source: str) -> dict[str, Any]:
    if section == "match":
        try:
            return {key: re.compile(value)}
        except re.error as exc:
            raise QuirkError(f"{source}: match.{key} is not a regular expression: {exc}") from exc
    if section == "configuration":
        return {"recommended_configuration": MappingProxyType({str(k): str(v) for k, v in value.items()})}
    if isinstance(value, list):
        return {key: tuple(str(v) for v in value)}
    if key.endswith("_a"):
        return {key: float(value)}
    return {key: value}


def _check_words(values: Mapping[str, Any], source: str) -> None:
    for key, allowed in (("accepted_purposes", PURPOSES), ("allowed_rate_units", RATE_UNITS),
                         ("unlisted_feature_profiles", FEATURE_PROFILES)):
        bad = set(values.get(key) or ()) - set(allowed)
        if bad:
            raise QuirkError(f"{source}: {key} has unknown values {sorted(bad)}; use {allowed}")


def load_quirks(directory: Path | str | None = None) -> QuirkSet:
    """Read every ``*.toml`` in ``directory`` (the bundled quirks when None), sorted by file name."""
    folder = Path(directory) if directory is not None else BUNDLED_DIR
    quirks = []
    for path in sorted(folder.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise QuirkError(f"{path.name}: {exc}") from exc
        quirks.append(parse_quirk(data, path.name))
    return QuirkSet(quirks)


@lru_cache(maxsize=1)
def bundled_quirks() -> QuirkSet:
    """The quirks shipped with the gateway, read once."""
    return load_quirks()
