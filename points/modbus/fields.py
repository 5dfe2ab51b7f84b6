"""The point table as Modbus fields: which register each table point gets, and how values convert.

Modbus defines no point: every field here is a spec of `points.catalog` (or a meter value or a
standard configuration key the table creates per charger). What this module adds is placement,
which a 16-bit register map needs and a BACnet instance space does not: the order in which
points are packed, the meter values that get registers, and register types (a BACnet
multi-state value becomes an ENUM16 with the same 1-based codes, a binary value a BOOL16, an
energy value also a UINT32 Wh counter).

Placement lists are append-only: a new table point is placed after the listed ones
automatically; list it here when it should keep that place (test_modbus_points checks).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from points.catalog import (
    CHARGER_SPECS,
    CONNECTOR_SPECS,
    MODBUS_STRING_REGISTERS,
    SITE_SPECS,
    STANDARD_CONFIG_KEYS,
    STANDARD_CONFIG_TYPES,
    PointSpec,
    WriteRefused,
    config_spec,
    meter_spec,
)
from points.modbus.binding import Binding, PointContext, WriteError
from points.modbus.codec import RegType
from points.modbus.layout import (
    CHARGER_POINTS,
    CONFIG_AREA,
    CONNECTOR_POINTS,
    HEADER_SIZE,
    METER_AREA,
    FieldSpec,
    Scope,
)
from points.table import PointTable, point_name

if TYPE_CHECKING:
    from gateway.app import Gateway

SITE_ORDER = ("PowerLimit", "CurrentLimit", "PowerLimit-InForce", "CurrentLimit-InForce", "Limit-Source",
              "BMS-WatchdogExpired")
CHARGER_ORDER = ("Online", "Registration", "Vendor", "Model", "Serial", "Firmware", "LastHeartbeat",
                 "Reconnects", "Reset", "Reset-Result", "ClearCache", "ClearCache-Result")
CONNECTOR_ORDER = ("Status", "ErrorCode", "VendorErrorCode", "Availability", "Availability-Result",
                   "TransactionId", "IdTag", "SessionEnergy", "SessionDuration", "Unlock",
                   "Unlock-Result", "RemoteStart", "RemoteStart-Result", "RemoteStop",
                   "RemoteStop-Result", "SC-Enable", "SC-Unit", "SC-Limit", "SC-Kind", "SC-Purpose",
                   "SC-ProfileId", "SC-StackLevel", "SC-SendStatus", "SC-Requested", "SC-Applied",
                   "SC-SendState")
# Meter values with registers, at the default location (Outlet): entry i sits at METER_AREA + 2i.
# "u32" entries are the UINT32 Wh counter of the energy register before them.
MODBUS_METERS: tuple[tuple[str, str, str], ...] = (
    ("Power.Active.Import", "", ""), ("Energy.Active.Import.Register", "", ""),
    ("Energy.Active.Import.Register", "", "u32"),
    ("Current.Import", "L1", ""), ("Current.Import", "L2", ""), ("Current.Import", "L3", ""),
    ("Voltage", "L1-N", ""), ("Voltage", "L2-N", ""), ("Voltage", "L3-N", ""),
    ("Voltage", "L1", ""), ("Voltage", "L2", ""), ("Voltage", "L3", ""),
    ("Power.Active.Import", "L1", ""), ("Power.Active.Import", "L2", ""),
    ("Power.Active.Import", "L3", ""), ("Current.Import", "", ""), ("Voltage", "", ""),
    ("Current.Offered", "", ""), ("Power.Offered", "", ""), ("SoC", "", ""), ("Temperature", "", ""),
    ("Frequency", "", ""), ("Energy.Active.Export.Register", "", ""),
    ("Energy.Active.Export.Register", "", "u32"), ("Power.Active.Export", "", ""),
    ("Power.Factor", "", ""),
)
_KIND_SCOPE = {"site": Scope.SITE, "charger": Scope.CHARGER, "connector": Scope.CONNECTOR}
_REFUSAL = {"write-access-denied": WriteError.ADDRESS, "value-out-of-range": WriteError.VALUE,
            "invalid-value": WriteError.VALUE, "charger-offline": WriteError.DEVICE,
            "rejected": WriteError.DEVICE}
_CONFIG_PROTO = config_spec("x", False)
_METER_PROTO = meter_spec("Power.Active.Import", "", "Outlet")


def reg_type_of(spec: PointSpec) -> RegType | None:
    """The register type of a table spec, or None if the point is not served over Modbus."""
    if spec.bacnet_type.startswith("multi-state"):
        return RegType.ENUM16
    if spec.bacnet_type.startswith("binary"):
        return RegType.BOOL16
    if spec.modbus_type == "string":
        return RegType.STRING if MODBUS_STRING_REGISTERS.get(spec.key) else None
    if not spec.modbus_type:
        return None  # BACnet only
    return {"float32": RegType.FLOAT32, "uint32": RegType.UINT32, "uint16": RegType.UINT16,
            "int32": RegType.INT32}[spec.modbus_type]


def _codes(spec: PointSpec, reg_type: RegType) -> tuple[tuple[str, int], ...]:
    """Enum codes as BACnet numbers them: multi-state 1-based, binary inactive 0 / active 1."""
    if reg_type is RegType.BOOL16:
        return tuple((state, i) for i, state in enumerate(spec.states[:2]))
    if reg_type is RegType.ENUM16:
        return tuple((state, i + 1) for i, state in enumerate(spec.states))
    return ()


def _ordered(specs: Iterable[PointSpec], order: tuple[str, ...]) -> list[PointSpec]:
    specs = list(specs)
    rank = {key: i for i, key in enumerate(order)}
    listed = sorted((s for s in specs if s.key in rank), key=lambda s: rank[s.key])
    return listed + sorted((s for s in specs if s.key not in rank), key=lambda s: s.offset)


class TableFields:
    """Builds the bindings of the Modbus server from one running PointTable."""

    def __init__(self, table: PointTable, write_wait_s: float = 0.8) -> None:
        self.table = table
        self.write_wait_s = write_wait_s

    def bindings(self) -> list[Binding]:
        out: list[Binding] = []
        for specs, order, kind, (start, end) in (
                (SITE_SPECS, SITE_ORDER, "site", (HEADER_SIZE, 1000)),
                (CHARGER_SPECS, CHARGER_ORDER, "charger", CHARGER_POINTS),
                (CONNECTOR_SPECS, CONNECTOR_ORDER, "connector", CONNECTOR_POINTS)):
            first = True
            for spec in _ordered(specs, order):
                reg_type = reg_type_of(spec)
                if reg_type is None:
                    continue
                out.append(self._fixed(spec, reg_type, start if first else None))
                first = False
                if spec.units == "kWh":
                    out.append(self._fixed(spec, RegType.UINT32, None, counter=True))
            self._check_end(out, _KIND_SCOPE[kind], end)
        for index, key in enumerate(STANDARD_CONFIG_KEYS):
            binding = self._config(key, CONFIG_AREA[0] + 2 * index)
            if binding is not None:
                out.append(binding)
        for index, (measurand, phase, encoding) in enumerate(MODBUS_METERS):
            out.append(self._meter(measurand, phase, encoding, METER_AREA[0] + 2 * index))
        return out

    @staticmethod
    def _check_end(bindings: list[Binding], scope: Scope, end: int) -> None:
        """Sub-areas are fixed; the packed points of one scope must end before the next begins."""
        offset = 0
        for b in bindings:
            if b.spec.scope is not scope:
                continue
            offset = b.spec.offset if b.spec.offset is not None else offset
            offset += b.spec.size
        if offset > end:
            raise ValueError(f"{scope} points need registers up to {offset}; the sub-area ends at {end}")

    # --- one binding per kind of field -------------------------------------------------------
    def _fixed(self, spec: PointSpec, reg_type: RegType, offset: int | None,
               counter: bool = False) -> Binding:
        scope = _KIND_SCOPE[spec.kind]
        field = FieldSpec(
            spec.key, scope, spec.offset, reg_type, writable=spec.writable and not counter,
            length=MODBUS_STRING_REGISTERS.get(spec.key, 0) if reg_type is RegType.STRING else 0,
            encoding="u32" if counter else "",
            description=(f"{spec.description} (Wh counter)" if counter else spec.description),
            units="Wh" if counter else spec.units,
            codes=_codes(spec, reg_type),
            minimum=spec.min_value, maximum=spec.max_value, source=spec.ocpp_source, offset=offset)
        table = self.table

        def find(ctx: PointContext) -> Any:
            slot = ctx.station.slot if ctx.station is not None else 0
            return table.get(point_name(slot or 0, ctx.connector_id, spec))

        def read(ctx: PointContext) -> object:
            point = find(ctx)
            if point is None or not table.reliable(point):
                return None
            value = table.read(point)
            if counter and value is not None:
                return float(value) * 1000.0
            return value

        async def write(ctx: PointContext, value: object) -> None:
            point = find(ctx)
            if point is None:
                raise WriteError(WriteError.ADDRESS, f"{spec.key} does not exist for this block")
            await self._write(point, value)

        return Binding(field, read, None if counter or not spec.writable else write, spec.dynamic)

    def _config(self, key: str, offset: int) -> Binding | None:
        ocpp_type, access = STANDARD_CONFIG_TYPES[key]
        if ocpp_type not in ("integer", "boolean"):
            return None  # comma-separated lists are text: BACnet serves them, Modbus does not
        is_bool = ocpp_type == "boolean"
        field = FieldSpec(f"config:{key}", Scope.CHARGER, STANDARD_CONFIG_KEYS.index(key),
                          RegType.BOOL16 if is_bool else RegType.UINT32, writable=access == "RW",
                          description=f"Configuration key {key} ({ocpp_type}, OCPP 1.6 chapter 9)",
                          minimum=None if is_bool else 0, maximum=None if is_bool else 0xFFFFFFFE,
                          codes=(("false", 0), ("true", 1)) if is_bool else (),
                          source=f"GetConfiguration:{key}",
                          offset=offset)
        table = self.table

        def find(ctx: PointContext) -> Any:
            slot = ctx.station.slot if ctx.station is not None else 0
            return table.get(point_name(slot or 0, None, _CONFIG_PROTO, key))

        def read(ctx: PointContext) -> object:
            point = find(ctx)
            if point is None or not table.reliable(point):
                return None
            text = str(table.read(point) or "").strip().lower()
            if is_bool:
                return {"true": True, "false": False}.get(text)
            try:
                return int(text)
            except ValueError:
                return None  # a charger that answers "300s": not available rather than wrong

        async def write(ctx: PointContext, value: object) -> None:
            point = find(ctx)
            if point is None:
                raise WriteError(WriteError.ADDRESS, f"the charger has not reported {key}")
            await self._write(point, ("true" if value else "false") if is_bool else str(int(value)))  # type: ignore[call-overload]

        return Binding(field, read, write if access == "RW" else None)

    def _meter(self, measurand: str, phase: str, encoding: str, offset: int) -> Binding:
        spec = meter_spec(measurand, phase, "Outlet")
        counter = encoding == "u32"
        key = f"meter:{measurand}" + (f":{phase}" if phase else "")
        field = FieldSpec(key, Scope.CONNECTOR, 1000 + (offset - METER_AREA[0]) // 2,
                          RegType.UINT32 if counter else RegType.FLOAT32, encoding=encoding,
                          description=spec.description + (" (Wh counter)" if counter else ""),
                          units="Wh" if counter else spec.units, source=spec.ocpp_source, offset=offset)
        table = self.table
        subject = (measurand, phase, "Outlet")

        def read(ctx: PointContext) -> object:
            slot = ctx.station.slot if ctx.station is not None else 0
            point = table.get(point_name(slot or 0, ctx.connector_id, _METER_PROTO, subject))
            if point is None or not table.reliable(point):
                return None
            value = table.read(point)
            return float(value) * 1000.0 if counter and value is not None else value

        return Binding(field, read, None)

    async def _write(self, point: Any, value: object) -> None:
        try:
            await self.table.write(point, value, wait_s=self.write_wait_s)
        except WriteRefused as exc:
            raise WriteError(_REFUSAL.get(exc.code, WriteError.DEVICE), exc.reason) from None


def areas_of(points: Iterable[Any]) -> set[tuple[Scope, int | None, int | None]]:
    """The register areas that show these table points."""
    areas: set[tuple[Scope, int | None, int | None]] = set()
    for p in points:
        kind = p.spec.kind
        if kind == "site":
            areas.add((Scope.SITE, None, None))
        elif kind in ("connector", "meter") and p.connector_id is not None:
            areas.add((Scope.CONNECTOR, p.slot, p.connector_id))
        elif p.slot:
            areas.add((Scope.CHARGER, p.slot, None))
    return areas


def point_table(gateway: Gateway) -> PointTable:
    """The gateway's one point table, the one BACnet serves (`points.service`)."""
    from points.service import service_for
    return service_for(gateway).table
