"""Table values as register values and back: the conversions a 16-bit register map needs.

A configuration key is text in the table (OCPP 1.6 GetConfiguration) and a number or flag in a
register; an energy point is kWh in the table and also a Wh counter in a register.
"""

from __future__ import annotations

from points.modbus.codec import RegType
from points.modbus.registers import Register


def modbus_value(reg: Register, value: object) -> object:
    """The value a register encodes for a table value (None: not available)."""
    if value is None:
        return None
    if reg.spec is not None and reg.spec.kind == "config":
        text = str(value).strip().lower()
        if reg.reg_type is RegType.BOOL16:
            return {"true": True, "false": False}.get(text)
        try:
            return int(text)
        except ValueError:
            return None  # a charger that answers "300s": not available rather than wrong
    if reg.counter:
        return float(value) * 1000.0  # type: ignore[arg-type]
    return value


def table_value(reg: Register, value: object) -> object:
    """What the table's writer expects for a value a client wrote to a register."""
    if reg.spec is not None and reg.spec.kind == "config":
        return ("true" if value else "false") if reg.reg_type is RegType.BOOL16 else str(int(value))  # type: ignore[call-overload]
    if reg.reg_type is RegType.BOOL16 and reg.spec is not None and reg.spec.states:
        return int(bool(value))
    return value
