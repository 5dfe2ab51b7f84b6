"""The cached getattr_static answers as inspect.getattr_static does for bacpypes3 objects."""

from __future__ import annotations

import inspect

import pytest
from bacpypes3.local.analog import AnalogInputObject, AnalogValueObject
from bacpypes3.local.cmd import Commandable
from bacpypes3.local.multistate import MultiStateInputObject

from points.bacnet.speedup import getattr_static


class CommandableAV(Commandable, AnalogValueObject):
    pass


@pytest.mark.parametrize("make", [
    lambda: AnalogInputObject(objectIdentifier=("analog-input", 1), objectName="a", presentValue=1.0,
                              units="watts"),
    lambda: CommandableAV(objectIdentifier=("analog-value", 2), objectName="b", presentValue=2.0,
                          relinquishDefault=2.0, units="kilowatts"),
    lambda: MultiStateInputObject(objectIdentifier=("multi-state-input", 3), objectName="c", presentValue=1,
                                  numberOfStates=3),
])
async def test_same_answers_as_inspect_for_every_property(make):
    """bacpypes3 objects want a running loop (COV detection), as in the gateway."""
    obj = make()
    for name in [*obj._elements, "statusFlags", "propertyList", "not_a_property", "_elements"]:
        expected = inspect.getattr_static(obj, name, "MISSING")
        assert getattr_static(obj, name, "MISSING") is expected, name
