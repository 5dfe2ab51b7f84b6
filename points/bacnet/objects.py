"""The BACnet object classes the device serves: bacpypes3 local objects with our write path
and COV criteria (notes 1.1, 1.3).

Every object overrides `write_property`, so a BMS write reaches the point table first (through
`BacnetServer.on_write`) and is refused with a BACnet error when it cannot be applied.
"""

from __future__ import annotations

import math
from typing import Any

from bacpypes3.errors import ExecutionError
from bacpypes3.local.analog import AnalogInputObject, AnalogValueObject
from bacpypes3.local.binary import BinaryInputObject, BinaryValueObject
from bacpypes3.local.cmd import Commandable
from bacpypes3.local.cov import COVIncrementCriteria, GenericCriteria, monitor_filter
from bacpypes3.local.multistate import MultiStateInputObject, MultiStateValueObject
from bacpypes3.local.object import Object as LocalObject
from bacpypes3.object import CharacterStringValueObject as _CharacterStringValueObject


class _Served:
    """Mixin for every served object: network writes go to the gateway, never straight in."""

    # Set after creation: `_gw_point` (Point), `_gw_server` (BacnetServer), and what `_push` last
    # pushed (`_gw_pushed`, `_gw_reliable`). Not annotated,
    # because bacpypes3's object metaclass evaluates class annotations as BACnet properties.

    async def write_property(self, attr: Any, value: Any, index: int | None = None,
                             priority: int | None = None) -> None:
        name = attr if isinstance(attr, str) else self._property_identifier_class(attr).attr  # type: ignore[attr-defined]
        if name != "presentValue":
            raise ExecutionError("property", "writeAccessDenied")
        await self._gw_server.on_write(self, value, priority)


class DeviceView:
    """The two things a COV notification needs of the application: the device and the sender.

    bacpypes3 0.0.110 (local/cov.py, COVDetection.send_cov_notifications) looks for the device
    object by scanning every object of the application, for every notification: 28 ms per
    notification with 32,000 objects (300 chargers), which capped the gateway near 300
    MeterValues/s with 100 subscriptions (docs/benchmarks.md, "BMS side and smart charging").
    """

    def __init__(self, app: Any) -> None:
        device = app.device_object
        self.objectIdentifier = {device.objectIdentifier: device}
        self.cov_notification = app.cov_notification


def _fast_cov(criteria: type) -> type:
    """`criteria` sending through a `DeviceView`, so a notification no longer costs O(objects)."""

    class FastCriteria(criteria):  # type: ignore[valid-type, misc]
        def send_cov_notifications(self, subscription: Any = None) -> None:
            obj, app = self.obj, self.obj._app
            obj._app = obj._gw_server.device_view  # synchronous: nothing else runs meanwhile
            try:
                super().send_cov_notifications(subscription)
            finally:
                obj._app = app

    FastCriteria.__name__ = f"Fast{criteria.__name__}"
    return FastCriteria


class _NotAvailableAwareIncrement(COVIncrementCriteria):
    """COV increment criteria that report a change to or from NaN ("not available").

    bacpypes3 0.0.110 (local/cov.py) compares the new value with the last reported one plus or
    minus the increment; with NaN on either side that is never true, so a point that was not
    available when a BMS subscribed would never report its first value.
    """

    @monitor_filter("presentValue")
    def present_value_filter(self, old_value: Any, new_value: Any) -> bool:
        before = old_value if self.previously_reported_value is None else self.previously_reported_value
        if _is_nan(before) or _is_nan(new_value):
            self.previously_reported_value = before
            return _is_nan(before) != _is_nan(new_value)
        return bool(super().present_value_filter(old_value, new_value))


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


_FAST_INCREMENT, _FAST_GENERIC = _fast_cov(_NotAvailableAwareIncrement), _fast_cov(GenericCriteria)


class AI(_Served, AnalogInputObject):
    _cov_criteria = _FAST_INCREMENT


class AV(_Served, AnalogValueObject):
    _cov_criteria = _FAST_INCREMENT


class AVCommandable(_Served, Commandable, AnalogValueObject):
    _cov_criteria = _FAST_INCREMENT


class BI(_Served, BinaryInputObject):
    _cov_criteria = _FAST_GENERIC


class BV(_Served, BinaryValueObject):
    _cov_criteria = _FAST_GENERIC


class MSI(_Served, MultiStateInputObject):
    _cov_criteria = _FAST_GENERIC  # bacpypes3's default (COVIncrement) breaks SubscribeCOV (notes 1.3)


class MSV(_Served, MultiStateValueObject):
    _cov_criteria = _FAST_GENERIC


class MSVCommandable(_Served, Commandable, MultiStateValueObject):
    _cov_criteria = _FAST_GENERIC


class CSV(_Served, LocalObject, _CharacterStringValueObject):
    _cov_criteria = _FAST_GENERIC  # plain CSV objects offer no COV otherwise (notes 1.3)


CLASSES: dict[tuple[str, bool], type] = {
    ("analog-input", False): AI, ("analog-value", False): AV, ("analog-value", True): AVCommandable,
    ("binary-input", False): BI, ("binary-value", False): BV,
    ("multi-state-input", False): MSI, ("multi-state-value", False): MSV,
    ("multi-state-value", True): MSVCommandable, ("characterstring-value", False): CSV,
}
