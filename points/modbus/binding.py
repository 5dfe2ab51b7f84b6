"""Types the Modbus server and its write path share, kept apart so neither imports the other."""

from __future__ import annotations

from points.modbus.registers import Scope

Area = tuple[Scope, int | None, int | None]  # (scope, slot, connector_id): one block area to render
