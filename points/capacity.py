"""How many chargers each protocol can expose, and what `devices add` says past that (issue 14
item 8: chargers past slot 418 had no BACnet objects, past 64 no registers, and only the server
log said so).

BACnet: one device holds slots 1..MAX_SLOT (instance = slot x 10,000 + index, below the
4,194,303 instance limit); a larger site splits across gateways (docs/bacnet.md, "Larger
sites"). Modbus: the flat map holds MAX_FLAT_SLOT slots; unit-id addressing up to MAX_UNIT_ID.
"""

from __future__ import annotations

from typing import Any

from points.modbus.registers import MAX_FLAT_SLOT, MAX_UNIT_ID
from points.table import MAX_SLOT


def not_exposed(slot: int | None, settings: Any) -> list[str]:
    """One sentence per enabled protocol that cannot show a charger in this slot."""
    if slot is None:
        return []
    out = []
    if settings.bacnet.enabled and slot > MAX_SLOT:
        out.append(f"not on BACnet: slot {slot} is beyond the {MAX_SLOT} slots one BACnet device "
                   "holds; split the site across gateways (docs/bacnet.md, \"Larger sites\")")
    if settings.modbus.enabled:
        if slot > MAX_UNIT_ID:
            out.append(f"not on Modbus: slot {slot} is beyond the {MAX_UNIT_ID} Modbus unit ids")
        elif slot > MAX_FLAT_SLOT and not settings.modbus.unit_id_per_charger:
            out.append(f"not on Modbus: slot {slot} is beyond the {MAX_FLAT_SLOT} slots of the flat register "
                       "map; set modbus.unit_id_per_charger = true to serve it by unit id")
    return out


def counts(slots: list[int], settings: Any) -> dict[str, int]:
    """Added chargers each protocol does not expose (shown in the site points)."""
    bacnet = sum(1 for s in slots if s > MAX_SLOT) if settings.bacnet.enabled else 0
    limit = MAX_UNIT_ID if settings.modbus.unit_id_per_charger else MAX_FLAT_SLOT
    modbus = sum(1 for s in slots if s > limit) if settings.modbus.enabled else 0
    return {"bacnet": bacnet, "modbus": modbus}
