"""BACnet objects made from a prototype hold exactly what the bacpypes3 constructor would give
them (points/bacnet/factory.py), so a restart can make ~49,000 of them cheaply (issue 17)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from points.bacnet import device  # noqa: F401  (installs the cached property look-up first)
from points.bacnet.factory import ObjectFactory, register
from points.bacnet.objects import AI, BI, CSV, MSI, MSVCommandable

CASES = [
    (AI, "analog-input", {"units": "watts", "covIncrement": 100.0}, 7200.0),
    (AI, "analog-input", {"units": "watts", "covIncrement": 100.0}, float("nan")),  # not available
    (MSI, "multi-state-input", {"numberOfStates": 3, "stateText": ["A", "B", "C"]}, 2),
    (CSV, "characterstring-value", {}, "Accepted"),
    (BI, "binary-input", {"polarity": "normal", "inactiveText": "Offline", "activeText": "Online"}, "active"),
    (MSVCommandable, "multi-state-value", {"numberOfStates": 2, "stateText": ["A", "B"]}, 1),
]


def _varying(object_type: str, instance: int, value: Any, commandable: bool) -> dict[str, Any]:
    varying = {"objectIdentifier": (object_type, instance), "objectName": f"CP{instance}-X",
               "description": f"CP{instance} x", "presentValue": value,
               "reliability": "noFaultDetected" if instance % 2 else "unreliableOther"}
    if commandable:
        varying["relinquishDefault"] = 2
    return varying


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b and getattr(a, "__dict__", None) == getattr(b, "__dict__", None)


@pytest.mark.parametrize(("cls", "object_type", "extra", "value"), CASES)
async def test_a_copied_object_holds_what_the_constructor_gives(cls, object_type, extra, value):
    factory = ObjectFactory()
    fixed = {"eventState": "normal", "outOfService": False, **extra}
    kind = factory.kind(fixed)
    commandable = cls is MSVCommandable
    factory.make(cls, kind, fixed, _varying(object_type, 1, value, commandable))  # the prototype
    copied = factory.make(cls, kind, fixed, _varying(object_type, 2, value, commandable), _gw_x=1)
    built = cls(**fixed, **_varying(object_type, 2, value, commandable))
    assert (factory.copied, factory.constructed) == (1, 1)
    assert copied.__dict__.pop("_gw_x") == 1
    assert copied.__dict__.keys() == built.__dict__.keys()
    for name, expected in built.__dict__.items():
        got = copied.__dict__[name]
        if name == "priorityArray" and expected is not None:
            assert got._obj is copied and list(got) == list(expected)
        elif name != "_property_monitors":
            assert _same(got, expected), name
    assert str(copied.statusFlags) == str(built.statusFlags)
    assert copied._property_monitors is not factory.make(
        cls, kind, fixed, _varying(object_type, 3, value, commandable))._property_monitors


async def test_a_copied_commandable_object_recalculates_its_own_present_value():
    from bacpypes3.basetypes import PriorityValue
    factory = ObjectFactory()
    fixed = {"eventState": "normal", "outOfService": False, "numberOfStates": 2, "stateText": ["A", "B"]}
    kind = factory.kind(fixed)
    first = factory.make(MSVCommandable, kind, fixed, _varying("multi-state-value", 1, 1, True))
    second = factory.make(MSVCommandable, kind, fixed, _varying("multi-state-value", 3, 1, True))
    second.priorityArray[7] = PriorityValue(unsigned=2)
    assert (second.presentValue, first.presentValue) == (2, 1)
    assert first.priorityArray[7].null is not None  # the prototype's array is not shared


async def test_register_indexes_objects_and_refuses_a_taken_name():
    class App:  # the two indexes of a bacpypes3 Application that add_object fills
        def __init__(self) -> None:
            self.objectName: dict[Any, Any] = {}
            self.objectIdentifier: dict[Any, Any] = {}
    factory, app = ObjectFactory(), App()
    fixed = {"eventState": "normal", "outOfService": False}
    kind = factory.kind(fixed)
    objects = [factory.make(CSV, kind, fixed, _varying("characterstring-value", i, "x", False)) for i in (1, 2)]
    twin = factory.make(CSV, kind, fixed, {**_varying("characterstring-value", 3, "x", False), "objectName": "CP1-X"})
    assert register(app, [*objects, twin]) == [twin]
    assert {str(n) for n in app.objectName} == {"CP1-X", "CP2-X"} and objects[0]._app is app
