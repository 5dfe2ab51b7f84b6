"""Cheap BACnet objects: each new object is a copy of a prototype's state, not a fresh construction.

A restart with 418 chargers builds about 49,000 objects. bacpypes3 0.0.110 (pinned in setup.cfg)
constructs each one through `Sequence.__init__`, which casts every given value and visits all
~40 properties of the class one by one, then schedules a `_post_init` task per object: about
0.2 ms an object on Python 3.11 even with the cached property look-up (`speedup.py`), 10 s of
event loop for a restart (docs/benchmarks.md, "Restart").

What a constructed object holds is its instance dictionary: the properties given (already cast to
their BACnet types), None for the others, and the bookkeeping of `local.object.Object` (name,
identifier, property monitors, application). Objects of one class and one set of fixed properties
(units, state texts, COV increment, ...) differ only in their identifier, name, description,
present value and reliability. So the first object of each kind is built by the constructor and
becomes the prototype; later ones get a copy of its dictionary with their own values cast the way
the constructor casts them (`element(element.cast(value))`). `_post_init` is skipped: it only links
a notification class, and served objects have none.

Commandable objects (a priority array that points back at its object) are always constructed;
there are a few per charger.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bacpypes3.local.cmd import Commandable
from bacpypes3.primitivedata import ElementMetaclass

# Properties that differ from object to object (the others given are fixed per prototype).
VARYING = ("objectIdentifier", "objectName", "description", "presentValue", "reliability", "relinquishDefault")
# local.object.Object keeps these two behind properties, in name-mangled attributes.
_PRIVATE = {"objectName": "_Object__objectName", "objectIdentifier": "_Object__objectIdentifier"}
_SHARED_MAX = 4096  # cast values kept for reuse (reliabilities, states, short texts)


class _Prototype:
    """The state every copy starts from."""

    def __init__(self, obj: Any) -> None:
        self.state = {k: None if k in VARYING else v for k, v in obj.__dict__.items()}
        self.state.pop("_property_monitors")
        self.commandable = isinstance(obj, Commandable)


class ObjectFactory:
    """Makes served objects; one prototype per (class, fixed properties)."""

    def __init__(self) -> None:
        self._prototypes: dict[tuple[type, int], _Prototype] = {}
        self._kinds: dict[tuple[Any, ...], int] = {}
        self._shared: dict[tuple[Any, Any, Any], Any] = {}
        self.copied = self.constructed = 0

    def kind(self, fixed: dict[str, Any]) -> int:
        """A number for a set of fixed properties: equal sets get the same number."""
        signature = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in fixed.items()))
        return self._kinds.setdefault(signature, len(self._kinds))

    def make(self, cls: type, kind: int, fixed: dict[str, Any], varying: dict[str, Any], **private: Any) -> Any:
        """An object of `cls` with these properties (as for the constructor; `kind` from
        `kind(fixed)`) and these private attributes (the gateway's `_gw_*`, set without
        `__setattr__`'s checks)."""
        key = (cls, kind)
        prototype = self._prototypes.get(key)
        if prototype is None:
            obj = cls(**fixed, **varying)
            self._prototypes[key] = _Prototype(obj)
            self.constructed += 1
        else:
            self.copied += 1
            obj = self._copy(cls, prototype, varying)
        obj.__dict__.update(private)
        return obj

    def _copy(self, cls: Any, prototype: _Prototype, varying: dict[str, Any]) -> Any:
        """A new object with the prototype's state and its own varying values, cast as
        `Sequence.__init__` casts them. Lists of the prototype (state texts) are shared: nothing
        changes them in place, and BMS writes reach present-value only (`objects._Served`)."""
        state = dict(prototype.state)
        state["_property_monitors"] = defaultdict(list)
        elements = cls._elements
        for attr, value in varying.items():
            if value is not None:
                state[_PRIVATE.get(attr, attr)] = self._cast(elements[attr], value)
        obj = object.__new__(cls)
        object.__setattr__(obj, "__dict__", state)
        if prototype.commandable:
            # The priority array points back at its object (bacpypes3 local/cmd.py): a new array
            # with the prototype's (relinquished, never changed in place) entries.
            array = state["priorityArray"]
            fresh = list.__new__(type(array))
            list.extend(fresh, array)
            fresh.__dict__.update(array.__dict__, _obj=obj)
            state["priorityArray"] = fresh
            if varying.get("relinquishDefault") is None:
                state["relinquishDefault"] = state["presentValue"]  # as Commandable.__init__ does
        return obj

    def _cast(self, element: Any, value: Any) -> Any:
        """`element(element.cast(value))`, as `Sequence.__init__` makes it; small immutable values
        (reliabilities, states, short texts) are made once and shared."""
        if value.__class__ == element:
            return value
        if isinstance(value, tuple):  # an identifier: its object type cast once, not per object
            value = (self._cast(element.object_type_class, value[0]), value[1])
        elif not (isinstance(value, float) or (isinstance(value, str) and len(value) > 40)):
            key = (element, value.__class__, value)
            shared = self._shared.get(key)
            if shared is None:
                shared = _make(element, value)
                if len(self._shared) < _SHARED_MAX:
                    self._shared[key] = shared
            return shared
        return _make(element, value)


def _make(element: Any, value: Any) -> Any:
    """What `element(value)` makes; for plain atomic types without its metaclass's second cast
    (bacpypes3 primitivedata.py, `ElementMetaclass.__call__` casts a value that is not yet an
    instance, after the caller has cast it already)."""
    if type(element) is ElementMetaclass:
        return type.__call__(element, element.cast(value))
    return element(element.cast(value))


def register(app: Any, objects: list[Any]) -> list[Any]:
    """`Application.add_object` for served objects (bacpypes3 app.py): the same two indexes and
    back-reference, without its per-object property look-ups. Returns the objects refused
    because their name or identifier is taken (add_object raises for those)."""
    names, identifiers = app.objectName, app.objectIdentifier
    refused = []
    for obj in objects:
        state = obj.__dict__
        name, identifier = state[_PRIVATE["objectName"]], state[_PRIVATE["objectIdentifier"]]
        if name in names or identifier in identifiers:
            refused.append(obj)
            continue
        names[name] = identifiers[identifier] = obj
        state["_app"] = app
    return refused
