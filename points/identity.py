"""Point identities, one function each: the BACnet instance, the local index, the name.

Numbering (docs/bacnet.md): instance = slot * SLOT_STRIDE + local index; site points use slot 0.
Inside a slot: connector c (0..9) owns [c*500, c*500+500): fixed points at 0..99, standard meter
values at 100 + measurand*11 + phase, other meter values at 350 + a persisted index; charger
points at 5000..5199; configuration key k at 5200 + k and its write result at 7600 + k. Nothing
is ever renumbered. The Modbus register of a point is `points.modbus.layout.point_address`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from gateway.chargers.standard_keys import standard_key
from points.catalog import MEASURANDS, PHASES, PointSpec

SLOT_STRIDE = 10_000
CONNECTOR_STRIDE = 500
MAX_CONNECTOR = 9
METER_BASE, METER_EXTRA_BASE, METER_EXTRA_MAX = 100, 350, 150
CHARGER_BASE = 5_000
CONFIG_BASE, CONFIG_RESULT_BASE, CONFIG_MAX = 5_200, 7_600, 2_400
VENDOR_CONFIG_FIRST = 100
MAX_INSTANCE = 4_194_302  # 4,194,303 is the BACnet wildcard instance
MAX_SLOT = (MAX_INSTANCE - SLOT_STRIDE + 1) // SLOT_STRIDE  # 418


@dataclass(frozen=True)
class Point:
    """One exposed value: a spec bound to a charger (slot), connector and subject.

    `subject` is the MeterKey-like tuple (measurand, phase, location) of a meter point, the key
    name of a configuration point, or None. `subject_index` is its fixed or persisted offset.
    """

    spec: PointSpec
    charger_id: str = ""
    slot: int = 0
    connector_id: int | None = None
    subject: Any = None
    subject_index: int = 0
    # The identities below are computed once per point (cached in the instance dictionary, which
    # a frozen dataclass allows): a restart reads them for ~49,000 points several times each.

    @cached_property
    def index(self) -> int:
        return local_index(self.spec, self.connector_id, self.subject_index)

    @cached_property
    def instance(self) -> int:
        return object_instance(self.slot, self.index)

    @cached_property
    def name(self) -> str:
        return point_name(self.slot, self.connector_id, self.spec, self.subject)

    @cached_property
    def uid(self) -> tuple[str, int]:
        """(BACnet object type, instance): unique within the device."""
        return (self.spec.bacnet_type, self.instance)


def local_index(spec: PointSpec, connector_id: int | None, subject_index: int = 0) -> int:
    """Offset of a point inside its charger's block of SLOT_STRIDE instances (site: slot 0)."""
    if spec.kind == "site":
        return spec.offset
    if spec.kind == "charger":
        return CHARGER_BASE + spec.offset
    if spec.kind == "config":
        return CONFIG_BASE + subject_index
    if spec.kind == "config_result":
        return CONFIG_RESULT_BASE + subject_index
    base = (connector_id or 0) * CONNECTOR_STRIDE
    if spec.kind == "connector":
        return base + spec.offset
    if spec.kind == "meter":
        return base + subject_index
    raise ValueError(f"unknown point kind {spec.kind}")


def object_instance(slot: int, index: int) -> int:
    """The BACnet object instance of a point: slot block plus local index."""
    if not 0 <= slot <= MAX_SLOT:
        raise ValueError(f"slot {slot} is outside 0..{MAX_SLOT}")
    if not 0 <= index < SLOT_STRIDE:
        raise ValueError(f"local index {index} is outside its block")
    return slot * SLOT_STRIDE + index


_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


def safe_name(text: str) -> str:
    """A name part in the conservative set [A-Za-z0-9-] (Metasys forbids `.`, `_`, `:` ...)."""
    return _UNSAFE.sub("-", text).strip("-") or "x"


def point_name(slot: int, connector_id: int | None, spec: PointSpec, subject: Any = None) -> str:
    """Object_Name, e.g. `CP1-C1-Status`, `CP1-C1-Power-Active-Import-L2`, `CP1-Cfg-HeartbeatInterval`."""
    if spec.kind == "site":
        return f"Site-{spec.key}"
    head = f"CP{slot}"
    if spec.kind == "charger":
        return f"{head}-{spec.key}"
    if spec.kind in ("config", "config_result"):
        return f"{head}-Cfg-{_config_name_part(str(subject))}" + ("-Result" if spec.kind == "config_result" else "")
    conn = f"{head}-C{connector_id}"
    if spec.kind == "meter":
        measurand, phase, location = subject
        name = f"{conn}-{safe_name(measurand)}"
        if phase:
            name += f"-{safe_name(phase)}"
        if location != "Outlet":  # the OCPP default location needs no suffix
            name += f"-{safe_name(location)}"
        return name
    return f"{conn}-{spec.key}"


@functools.cache  # keys are bounded by their offsets (CONFIG_MAX)
def _config_name_part(subject: str) -> str:
    """The name part of a configuration key: one name whatever the charger's spelling (computed
    once per key, not once per charger)."""
    key = standard_key(subject) or subject
    part = safe_name(key)
    if part != key:  # keep names unique when two vendor keys sanitize alike
        part = f"{part}-{sum(key.encode()) % 1000}"
    return part


def standard_meter_index(measurand: str, phase: str, location: str) -> int | None:
    """Fixed offset of a standard measurand/phase at the default location, else None."""
    if location != "Outlet" or measurand not in MEASURANDS or phase not in PHASES:
        return None
    return METER_BASE + MEASURANDS.index(measurand) * len(PHASES) + PHASES.index(phase)
