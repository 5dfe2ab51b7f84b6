"""A cached `inspect.getattr_static` for bacpypes3 0.0.110 (measured, not guessed).

bacpypes3 calls `inspect.getattr_static(self, attr)` in `Sequence.__init__` for every unset
property of every new object, and in `local.object.Object.__getattribute__`/`__setattr__` on
every property access, only to learn whether the class defines that name as a property. On
Python 3.11 each call walks the MRO through `inspect._shadowed_dict`: a restart with 500 chargers
(45,000 objects) spent most of its 31 s there (cProfile: 12.6 M `_shadowed_dict` calls for
16,000 objects). This lookup gives the same answers for bacpypes3's plain classes (no metaclass
`__dict__` tricks), with the class part cached per (class, name).
"""

from __future__ import annotations

import inspect
from typing import Any

_MISSING = object()
_class_attrs: dict[tuple[type, str], Any] = {}


def _class_attr(cls: type, attr: str) -> Any:
    key = (cls, attr)
    try:
        return _class_attrs[key]
    except KeyError:
        pass
    value = _MISSING
    for base in cls.__mro__:
        if attr in base.__dict__:
            value = base.__dict__[attr]
            break
    _class_attrs[key] = value
    return value


def getattr_static(obj: Any, attr: str, *default: Any) -> Any:
    """`inspect.getattr_static` for instances: data descriptors first, then the instance
    dictionary, then other class attributes."""
    found = _class_attr(type(obj), attr)
    if found is not _MISSING and (hasattr(type(found), "__set__") or hasattr(type(found), "__delete__")):
        return found
    try:
        instance_dict = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        instance_dict = {}
    if attr in instance_dict:
        return instance_dict[attr]
    if found is not _MISSING:
        return found
    if default:
        return default[0]
    raise AttributeError(attr)


class _Inspect:
    """The `inspect` module, with the cached `getattr_static`."""

    getattr_static = staticmethod(getattr_static)

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)


def install() -> None:
    """Point the two bacpypes3 modules that look properties up on every access at the cache."""
    import bacpypes3.constructeddata
    import bacpypes3.local.object

    bacpypes3.constructeddata.inspect = _Inspect()  # type: ignore[assignment]
    bacpypes3.local.object.inspect = _Inspect()  # type: ignore[assignment]
