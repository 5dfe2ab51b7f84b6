"""The BACnet/IP device: serves the point table as BACnet objects under one BAC0 device.

BAC0 owns the network and the device object; the points are plain bacpypes3 local objects
(notes 1.1: 4x faster than BAC0's factory, no global state, no silent renumbering). Every
object overrides `write_property`, so a BMS write reaches `PointTable.write` first and is
refused with a BACnet error when it cannot be applied (nothing is stored in that case).
Values are pushed from the table's change listeners, so COV subscribers hear them at once.

Not imported by the gateway unless `bacnet.enabled`: `import BAC0` reads `./.env`, writes
`~/.BAC0/BAC0.log` and takes about a second (notes 1.4).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import logging
import math
from typing import TYPE_CHECKING, Any

from bacpypes3.basetypes import ObjectTypesSupported, PriorityValue, ServicesSupported
from bacpypes3.errors import ExecutionError
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.object import Object as LocalObject
from bacpypes3.primitivedata import Null

from gateway.errors import ConfigError, WriteRefused
from points.bacnet import services as bacnet_services
from points.bacnet import speedup as bacpypes_speedup
from points.bacnet.factory import ObjectFactory, register
from points.bacnet.objects import CLASSES, DeviceView
from points.catalog import UNITS, PointSpec
from points.table import Point, PointTable

bacpypes_speedup.install()

if TYPE_CHECKING:
    from gateway.settings import BacnetSettings

log = logging.getLogger(__name__)

# WriteRefused code -> (BACnet error class, error code) the BMS sees.
ERRORS = {
    "write-access-denied": ("property", "writeAccessDenied"),
    "value-out-of-range": ("property", "valueOutOfRange"),
    "invalid-value": ("property", "invalidDataType"),
    "charger-offline": ("device", "operationalProblem"),
    "rejected": ("services", "serviceRequestDenied"),
}
BUILD_CHUNK = 200  # objects created between yields (about 30 us each, points/bacnet/factory.py)
NOT_AVAILABLE_REAL = float("nan")  # present value of an analog point without a value


def _bits(cls: type, size: int, names: list[str]) -> Any:
    b = cls([0] * size)
    for n in names:
        b[getattr(cls, n)] = 1
    return b


_SERVICES = _bits(ServicesSupported, 49, [
    "readProperty", "readPropertyMultiple", "writeProperty", "writePropertyMultiple",
    "subscribeCOV", "whoIs", "whoHas", "iAm", "iHave",
    "confirmedCOVNotification", "unconfirmedCOVNotification"])
_OBJECT_TYPES = _bits(ObjectTypesSupported, 63, [
    "device", "analogInput", "analogValue", "binaryInput", "binaryValue", "multiStateInput",
    "multiStateValue", "characterstringValue", "networkPort"])
_NOT_IN_PROPERTY_LIST = {"objectIdentifier", "objectName", "objectType", "propertyList"}


def fix_device_class() -> None:
    """Correct the bacpypes3 0.0.110 device object (notes 1.3): wrong service bits, no object
    types, and a property-list naming properties the standard says it must not."""
    DeviceObject.protocolServicesSupported = property(lambda s: _SERVICES, lambda s, v: None)  # type: ignore[assignment]
    DeviceObject.protocolObjectTypesSupported = property(lambda s: _OBJECT_TYPES, lambda s, v: None)  # type: ignore[assignment]
    base = LocalObject.propertyList

    def property_list(self: Any) -> Any:
        full = base.fget(self)  # type: ignore[union-attr]
        return full.__class__([p for p in full if self._property_identifier_class(p).attr
                               not in _NOT_IN_PROPERTY_LIST])
    DeviceObject.propertyList = property(property_list, lambda s, v: None)  # type: ignore[assignment]


def _same(a: Any, b: Any) -> bool:
    """Equal, where NaN equals NaN (else every refresh would be a change of value and a COV)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def to_bacnet(point: Point, value: Any) -> Any:
    """A table value as the object's present-value; None ("not available", reliability
    unreliable-other) is NaN for analog objects, the first state, inactive or ""."""
    t = point.spec.bacnet_type
    if t.startswith("analog"):
        return NOT_AVAILABLE_REAL if value is None else float(value)
    if t.startswith("characterstring"):
        return "" if value is None else str(value)
    if value is None:
        return "inactive" if t.startswith("binary") else 1 if t.startswith("multi-state") else ""
    if t.startswith("binary"):
        return "active" if value else "inactive"
    if t.startswith("multi-state"):
        return int(value)
    return str(value)


def from_bacnet(point: Point, value: Any) -> Any:
    """A written BACnet value as the table expects it (PointSpec.coerce does the checks)."""
    t = point.spec.bacnet_type
    if t.startswith("binary"):
        return 1 if str(value) == "active" or (isinstance(value, int) and value == 1) else 0
    if t.startswith("analog"):
        return float(value)
    if t.startswith("multi-state"):
        return int(value)
    return str(value)


class BacnetServer:
    """One BAC0 device serving every point of the table; follows it as points come and go."""

    def __init__(self, settings: BacnetSettings, table: PointTable, spawn: Any) -> None:
        self.settings = settings
        self.table = table
        self.spawn = spawn
        self.bacnet: Any = None
        self.app: Any = None
        self.device_view: Any = None
        self.objects: dict[tuple[str, int], Any] = {}
        self.factory = ObjectFactory()
        self._fixed_by_spec: dict[int, tuple[PointSpec, int, dict[str, Any]]] = {}
        self._queue: list[Point] = []
        # Changed points waiting for this loop turn's push, by identity: one MeterValues tells
        # the table several times (meter points, session points) and Modbus batches the same way.
        self._changed: dict[tuple[str, int], Point] = {}
        self._push_handle: asyncio.Handle | None = None
        self._wake = asyncio.Event()
        self.port: int = settings.port

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> int:
        """Build the objects of every known point, then start the device with all of them.

        The device answers nothing until every object a BMS knew before the restart is there:
        a half-built device would answer `unknown-object` for points that exist and show a short
        object-list (docs/bacnet.md, "After a restart"). The gateway opens its OCPP port first
        and calls this after, so chargers reconnect while the objects are built.
        """
        # Imported in a worker thread (the points service starts it early): `import BAC0` takes
        # about a second (notes 1.4) that the event loop, already serving chargers, runs through.
        bac0 = await asyncio.to_thread(importlib.import_module, "BAC0")
        bac0.log_level("silence")
        cfg = self.settings
        if not cfg.address or "/" not in cfg.address:
            # Without an address BAC0 picks the LAN interface and announces itself there (notes 1.4).
            raise ConfigError("bacnet.address must be an interface address with mask, e.g. 192.168.10.5/24")
        fix_device_class()
        self.table.added.append(self._on_added)
        self.table.removed.append(self._on_removed)
        self.table.changed.append(self._on_changed)
        self._queue.extend(self.table.points())
        await self._build()  # not on the network yet: nothing is added to an application
        try:
            self.bacnet = self._start_bac0(bac0)
        except Exception as exc:  # BAC0 says "invalid address ... 47808" whatever the cause
            raise ConfigError(f"cannot start BACnet on {cfg.address} port {cfg.port}: {exc}; is another "
                              "BACnet application using this address and port?") from exc
        self.app = self.bacnet.this_application.app
        bacnet_services.install(self.app, cfg.address, cfg.port, bool(cfg.bbmd_address))
        self.device_view = DeviceView(self.app)
        dev = self.app.device_object
        dev.vendorName = cfg.vendor_name  # BAC0 hard-codes "Servisys inc." (notes 1.3)
        dev.description = cfg.description
        dev.location = cfg.location
        dev.modelName = "ocpp-bms-gateway"
        dev.applicationSoftwareVersion = _version()
        self._register(list(self.objects.values()))  # all at once, before the loop runs again
        self.spawn(self._builder(), "bacnet object builder")
        where = cfg.address.split("/")[0]
        log.info("BACnet/IP device %s %r on %s port %s with %d objects%s", cfg.device_id,
                 cfg.device_name, cfg.address, cfg.port, len(self.objects),
                 "; loopback only: set bacnet.address to the building network interface "
                 "(e.g. 192.168.10.5/24) to reach a BMS (docs/bacnet.md)"
                 if where.startswith("127.") else "")
        return self.port

    def _start_bac0(self, bac0: Any) -> Any:
        cfg = self.settings
        return bac0.start(
            ip=cfg.address, port=cfg.port, deviceId=cfg.device_id, localObjName=cfg.device_name,
            modelName="ocpp-bms-gateway", vendorId=cfg.vendor_id, vendorName=cfg.vendor_name,
            description=cfg.description, location=cfg.location, timezone="UTC",
            bbmdAddress=cfg.bbmd_address or None, bbmdTTL=cfg.bbmd_ttl_s if cfg.bbmd_address else 0,
            ping=False)

    async def stop(self) -> None:
        for listeners, fn in ((self.table.added, self._on_added), (self.table.removed, self._on_removed),
                              (self.table.changed, self._on_changed)):
            if fn in listeners:
                listeners.remove(fn)
        if self._push_handle is not None:
            self._push_handle.cancel()
            self._push_handle = None
        if self.bacnet is not None:
            await self.bacnet._disconnect()  # BAC0's only way to free the socket (notes 1.7)
            self.bacnet = None

    # --- objects -----------------------------------------------------------------------------
    def _on_added(self, points: list[Point]) -> None:
        self._queue.extend(points)
        self._wake.set()

    def _on_removed(self, points: list[Point]) -> None:
        removed = 0
        for p in points:
            obj = self.objects.pop(p.uid, None)
            if obj is not None and self.app is not None and obj._app is not None:
                self.app.delete_object(obj)
                removed += 1
        self._queue = [q for q in self._queue if self.table.has(q)]
        if removed:
            self._bump_revision()

    async def _builder(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._build()

    async def _build(self) -> None:
        """Create queued objects in chunks, so OCPP traffic keeps flowing (notes 1.6)."""
        created = 0
        while self._queue:
            queue, self._queue = self._queue, []
            for i, p in enumerate(queue):
                if i % BUILD_CHUNK == BUILD_CHUNK - 1:
                    await asyncio.sleep(0)
                if p.uid not in self.objects and self.table.has(p):
                    try:
                        self._create(p)
                        created += 1
                    except Exception:  # one bad object must not stop the others
                        log.exception("cannot create BACnet object %s %s", p.uid, p.name)
        if created:
            self._bump_revision()

    def _create(self, point: Point) -> None:
        spec = point.spec
        cls = CLASSES[(spec.bacnet_type, spec.commandable)]
        value = self.table.read(point)
        reliability = self.table.reliability(point, value)
        varying: dict[str, Any] = {
            "objectIdentifier": point.uid, "objectName": point.name,
            "description": f"{point.charger_id} {spec.description}".strip()[:200],
            "reliability": reliability,
            "presentValue": to_bacnet(point, bool(value) if spec.bacnet_type.startswith("binary") else value),
        }
        if spec.commandable and spec.relinquish_default is not None:
            varying["relinquishDefault"] = to_bacnet(point, self.table.read_default(point))
        key, fixed = self._fixed(spec)
        # `_gw_pushed` None: unknown, the first push compares with the object itself.
        obj = self.factory.make(cls, key, fixed, varying, _gw_point=point, _gw_server=self,
                                _gw_pushed=None, _gw_reliable=reliability)
        if spec.commandable:
            obj._gw_commands = [None] * 16  # what the table's priority array held when last synced
            self._sync_commands(point, obj)
        self.objects[point.uid] = obj
        if self.app is not None:  # running: a new charger's objects appear as they are made
            self._register([obj])

    def _fixed(self, spec: PointSpec) -> tuple[int, dict[str, Any]]:
        """The properties every object of this spec has (once per spec, not per object)."""
        known = self._fixed_by_spec.get(id(spec))
        if known is not None and known[0] is spec:  # the spec itself is kept: its id is not reused
            return known[1], known[2]
        fixed: dict[str, Any] = {"eventState": "normal", "outOfService": False}
        if spec.is_analog:
            fixed["units"] = UNITS[spec.units][0]
            fixed["covIncrement"] = spec.cov_increment or 1.0
            if spec.min_value is not None and spec.bacnet_type == "analog-value":
                fixed["minPresValue"], fixed["maxPresValue"] = spec.min_value, spec.max_value
        elif spec.bacnet_type.startswith("binary"):
            if spec.bacnet_type == "binary-input":
                fixed["polarity"] = "normal"
            if spec.states:
                fixed["inactiveText"], fixed["activeText"] = spec.states
        elif spec.bacnet_type.startswith("multi-state"):
            fixed["numberOfStates"] = len(spec.states)
            fixed["stateText"] = list(spec.states)
        key = self.factory.kind(fixed)
        self._fixed_by_spec[id(spec)] = (spec, key, fixed)
        return key, fixed

    def _register(self, objects: list[Any]) -> None:
        for obj in register(self.app, objects):
            point = obj._gw_point
            self.objects.pop(point.uid, None)
            log.error("cannot serve BACnet object %s %s: name or identifier taken", point.uid, point.name)

    def _bump_revision(self) -> None:
        """Tell BMS tools the object set changed (notes 3.3: database-revision)."""
        if self.app is not None:
            dev = self.app.device_object
            dev.databaseRevision = int(dev.databaseRevision) + 1

    # --- values ----------------------------------------------------------------------------
    def _on_changed(self, points: list[Point]) -> None:
        """Table listener: push each changed point once per loop turn."""
        changed = self._changed
        for p in points:
            changed[p.uid] = p
        if self._push_handle is None:
            self._push_handle = asyncio.get_running_loop().call_soon(self._push_changed)

    def _push_changed(self) -> None:
        self._push_handle = None
        changed, self._changed = self._changed, {}
        for uid, p in changed.items():
            obj = self.objects.get(uid)
            if obj is not None:  # not removed since
                self._push(p, obj)

    def _push(self, point: Point, obj: Any) -> None:
        """Bring an object up to date with the table. What was last pushed is kept in `_gw_*`
        attributes: reading a bacpypes3 property costs an `inspect.getattr_static` (about 20 us
        on Python 3.11), and a MeterValues touches about 24 objects."""
        value = self.table.read(point)
        reliability = self.table.reliability(point, value)
        if point.spec.commandable:
            # The priority array governs present-value; the table holds it for both protocols.
            default = to_bacnet(point, self.table.read_default(point))
            if obj._gw_pushed != default:
                obj._gw_pushed = default
                if obj.relinquishDefault != default:
                    obj.relinquishDefault = default
                    obj.recalculating()
            self._sync_commands(point, obj)
        else:
            new = to_bacnet(point, value)
            if not _same(obj._gw_pushed, new):
                obj._gw_pushed = new
                obj.presentValue = new
        if obj._gw_reliable != reliability:
            obj._gw_reliable = reliability
            wanted = reliability
            if str(obj.reliability) != wanted:
                old = obj.statusFlags
                obj.reliability = wanted
                # bacpypes3 does not tell COV subscribers about a status-flags change (notes 1.3).
                for fn in list(obj._property_monitors["statusFlags"]):
                    fn(old, obj.statusFlags)

    def _sync_commands(self, point: Point, obj: Any) -> None:
        """Copy the table's priority array into the object (a Modbus write commands it too)."""
        commands = self.table.priority_array(point)
        if commands == obj._gw_commands:
            return
        obj._gw_commands = commands
        for i, value in enumerate(commands):
            obj.priorityArray[i] = _priority_value(point, value)  # recalculates present-value

    # --- writes ----------------------------------------------------------------------------
    async def on_write(self, obj: Any, value: Any, priority: int | None) -> None:
        """A BMS write: checked and applied by the table before the object changes."""
        point: Point = obj._gw_point
        spec = point.spec
        try:
            if not spec.writable:
                raise WriteRefused("point is read-only", "write-access-denied")
            if spec.commandable:
                await self._write_commandable(obj, point, value, priority)
                return
            if isinstance(value, Null):
                raise WriteRefused("NULL is only for commandable points", "invalid-value")
            await self.table.write(point, from_bacnet(point, value))
        except WriteRefused as exc:
            log.info("BACnet write to %s refused: %s", point.name, exc.reason)
            raise ExecutionError(*ERRORS.get(exc.code, ERRORS["rejected"])) from None
        self._push(point, obj)

    async def _write_commandable(self, obj: Any, point: Point, value: Any, priority: int | None) -> None:
        """Command one priority of the table's array (shared with Modbus); NULL relinquishes."""
        command = None if isinstance(value, Null) else from_bacnet(point, value)
        await self.table.command(point, command, 16 if priority is None else priority)
        self._sync_commands(point, obj)


def _priority_value(point: Point, value: Any) -> PriorityValue:
    if value is None:
        return PriorityValue(null=())
    if point.spec.is_analog:
        return PriorityValue(real=float(value))
    return PriorityValue(unsigned=int(value))


def _version() -> str:
    try:
        return importlib.metadata.version("ocpp-bms-gateway")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
