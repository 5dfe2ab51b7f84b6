"""A fast path for a CALL that passes the strict schema: decoded and checked in one go by msgspec.

Profiled at thousands of MeterValues a second (docs/benchmarks.md), decoding a frame with `json`
and checking it with the fastjsonschema validator took about a quarter of the event loop's time.
msgspec does both in C, from a type built here out of the same OCPP 1.6 JSON schema (the ones
shipped in the `ocpp` package), several times faster.

It is only ever a shortcut, never a second opinion: a frame it accepts is one the strict schema
accepts, with the same payload `frames.read_frame` would decode. Anything it does not accept
(an error, a schema keyword it does not translate, an action it has no type for) goes the full
way through `frames.read_frame` and `frames.check_payload`, which word every CALLERROR. To keep
that promise the types are built only from schemas whose objects are all closed
(`additionalProperties: false`), so every number in an accepted payload sits in a typed field,
bounded to what the full path decodes as a number (signed 64 bits; finite).
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

import msgspec
from fastjsonschema.draft04 import CodeGeneratorDraft04

from gateway.ocpp import protocol

_INT = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_FLOAT = Annotated[float, msgspec.Meta(ge=-1.7976931348623157e308, le=1.7976931348623157e308)]
# The exact expression fastjsonschema checks "format": "date-time" with (anchored, so search = match).
_DATE_TIME = CodeGeneratorDraft04.FORMAT_REGEXS["date-time"]
_IGNORED = frozenset({"$schema", "title", "description", "id"})
_ENVELOPE = msgspec.json.Decoder(tuple[Literal[2], str, str, msgspec.Raw])
_PLAIN = msgspec.json.Decoder()


class _Untranslatable(Exception):
    """A schema this module cannot express exactly: no fast path for that action."""


def _type(node: dict[str, Any], name: str) -> Any:
    """The msgspec type that accepts exactly what `node` (a draft-04 schema) accepts, or raise."""
    kind = node.get("type")
    known = {"type", "additionalProperties"} | _IGNORED
    if kind == "object":
        if node.get("additionalProperties", True) is not False:
            raise _Untranslatable(f"{name}: an open object")
        required = set(node.get("required", []))
        fields = []
        for key, sub in node.get("properties", {}).items():
            if not key.isidentifier():
                raise _Untranslatable(f"{name}: property {key!r}")
            sub_type = _type(sub, f"{name}.{key}")
            fields.append((key, sub_type) if key in required else (key, sub_type | msgspec.UnsetType, msgspec.UNSET))
        if not required <= set(node.get("properties", {})):
            raise _Untranslatable(f"{name}: a required property without a schema")
        _check_keys(node, known | {"properties", "required"}, name)
        return msgspec.defstruct(name.replace(".", "_"), fields, kw_only=True, forbid_unknown_fields=True)
    if kind == "array":
        _check_keys(node, known | {"items", "minItems"}, name)
        items = _type(node["items"], f"{name}.item")
        return Annotated[list[items], msgspec.Meta(min_length=node.get("minItems", 0))]  # type: ignore[valid-type]
    if kind == "string":
        _check_keys(node, known | {"enum", "maxLength", "format"}, name)
        if "enum" in node:
            if "maxLength" in node or "format" in node or not all(isinstance(v, str) for v in node["enum"]):
                raise _Untranslatable(f"{name}: an enum with other rules")
            return Literal[tuple(node["enum"])]
        if node.get("format", "date-time") != "date-time":
            raise _Untranslatable(f"{name}: format {node['format']}")
        meta = {}
        if "maxLength" in node:
            meta["max_length"] = node["maxLength"]
        if "format" in node:
            meta["pattern"] = _DATE_TIME
        return Annotated[str, msgspec.Meta(**meta)] if meta else str
    if kind == "integer":
        _check_keys(node, known, name)
        return _INT
    if kind == "number":
        _check_keys(node, known, name)
        return _INT | _FLOAT
    if kind == "boolean":
        _check_keys(node, known, name)
        return bool
    raise _Untranslatable(f"{name}: type {kind!r}")


def _check_keys(node: dict[str, Any], allowed: set[str], name: str) -> None:
    extra = set(node) - allowed
    if extra:
        raise _Untranslatable(f"{name}: {sorted(extra)}")


# What a charger sends (OCPP 1.6 section 4): the only actions a fast path is built for, so an
# action name a peer invents never reaches the file system nor grows the cache.
CHARGER_ACTIONS = frozenset({
    "Authorize", "BootNotification", "DataTransfer", "DiagnosticsStatusNotification",
    "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StartTransaction",
    "StatusNotification", "StopTransaction",
})


def checker(action: str) -> msgspec.json.Decoder | None:
    """The decoder that checks `action`'s request against its strict schema, or None."""
    return _checker(action) if action in CHARGER_ACTIONS else None


@cache
def _checker(action: str) -> msgspec.json.Decoder | None:
    try:
        return msgspec.json.Decoder(_type(protocol.request_schema(action), action))
    except _Untranslatable:
        return None


def read_call(message: str) -> protocol.Call | None:
    """The CALL in `message` if it passes its action's strict schema; None means "take the full
    way" (also for every frame that is not a clean CALL)."""
    try:
        _kind, uid, action, raw = _ENVELOPE.decode(message)
        check = checker(action)
        if check is None:
            return None
        check.decode(raw)
        return protocol.Call(uid, action, _PLAIN.decode(raw), checked=True)
    except (msgspec.DecodeError, RecursionError):  # read_frame bounds the depth first
        return None
