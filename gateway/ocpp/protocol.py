"""OCPP-J 1.6 framing and schema validation, with no I/O (bytes in, decisions out).

Why not the ocpp library's router: measured on this machine (shared/notes/performance.md) it
spends ~1 ms per MeterValues in jsonschema and name conversion, which caps a 2-core gateway at a
few hundred messages per second. Here each payload is validated once, by a validator compiled with
fastjsonschema from the schemas that ship inside the ocpp package (~30 µs).

Tolerance (design rule "strict in what you send, tolerant in what you accept, per charger and
per action"): every payload is checked against the strict schema. Only for an action the
charger's quirk names (`relaxed_schema_actions`) may it fail on length limits, vendor enum
values, date formats or extra fields and still pass the relaxed schema, accepted with a warning.
Types and required fields are never relaxed. Anything else becomes a CALLERROR with the 1.6 code.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema
import orjson

from gateway.errors import OcppError

CALL, CALLRESULT, CALLERROR = 2, 3, 4

# Central-system-initiated actions (spec section 5).
CENTRAL_ACTIONS = frozenset({
    "CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache",
    "ClearChargingProfile", "DataTransfer", "GetCompositeSchedule", "GetConfiguration",
    "GetDiagnostics", "GetLocalListVersion", "RemoteStartTransaction", "RemoteStopTransaction",
    "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile", "TriggerMessage",
    "UnlockConnector", "UpdateFirmware",
})

# Fields whose values real chargers bend without harm: dropped from the relaxed schema's enums.
_TOLERATED_ENUM_FIELDS = frozenset({
    "unit", "measurand", "context", "format", "location", "phase", "errorCode", "reason",
})


class OutOfRange(str):
    """A number no SQLite column holds (beyond signed 64 bits, NaN, Infinity), kept as the text
    that was sent: the schema's integer/number check refuses it, a free field keeps it as text."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Call:
    unique_id: str
    action: str
    payload: dict[str, Any]
    checked: bool = False  # the payload already passed its strict schema (gateway.ocpp.fastcheck)


@dataclass(frozen=True, slots=True)
class CallResult:
    unique_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallError:
    unique_id: str
    code: str
    description: str
    details: dict[str, Any]


Frame = Call | CallResult | CallError


def frame_of(msg: Any) -> Frame:
    """The frame a decoded OCPP-J message holds (spec 4.1.3); raise OcppError(FormationViolation).

    Decoding with limits is `gateway.ocpp.frames.read_frame`; this only checks the shape.
    """
    if not isinstance(msg, list) or len(msg) < 3 or not isinstance(msg[1], str):
        raise OcppError("FormationViolation", "not an OCPP-J message array")
    kind, uid = msg[0], msg[1]
    if kind == CALL and len(msg) == 4 and isinstance(msg[2], str) and isinstance(msg[3], dict):
        return Call(uid, msg[2], msg[3])
    if kind == CALLRESULT and len(msg) == 3 and isinstance(msg[2], dict):
        return CallResult(uid, msg[2])
    if kind == CALLERROR and len(msg) >= 4:
        details = msg[4] if len(msg) > 4 and isinstance(msg[4], dict) else {}
        return CallError(uid, str(msg[2]), str(msg[3]), details)
    raise OcppError("FormationViolation", f"bad message type or shape: {str(msg)[:80]}")


def dumps(value: Any) -> str:
    """Compact JSON text: orjson (several times faster than `json`), and `json` for what orjson
    refuses (an integer beyond 64 bits, a lone surrogate: escaped, not an error)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


def dump_call(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    return dumps([CALL, unique_id, action, payload])


def dump_result(unique_id: str, payload: dict[str, Any]) -> str:
    return dumps([CALLRESULT, unique_id, payload])


def dump_error(unique_id: str, code: str, description: str, details: dict | None = None) -> str:
    return dumps([CALLERROR, unique_id, code, description[:255], details or {}])


@cache
def _schema(name: str) -> dict[str, Any]:
    text = resources.files("ocpp.v16").joinpath("schemas", f"{name}.json").read_text("utf-8")
    return json.loads(text)


def request_schema(action: str) -> dict[str, Any]:
    """The OCPP 1.6 JSON schema of an action's request (FileNotFoundError for no such action)."""
    return _schema(action)


def _relax(node: Any, key: str | None = None) -> Any:
    """A copy of a schema without length limits, formats and tolerated enums."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("maxLength", "format"):
                continue
            if k == "additionalProperties" and v is False:
                continue
            if k == "enum" and key in _TOLERATED_ENUM_FIELDS:
                continue
            out[k] = _relax(v, k if k not in ("properties", "items") else key)
        return out
    if isinstance(node, list):
        return [_relax(v, key) for v in node]
    return node


def schema_exists(action: str) -> bool:
    """Whether OCPP 1.6 has this action (a schema for its request)."""
    return resources.files("ocpp.v16").joinpath("schemas", f"{action}.json").is_file()


def _bare_schema(name: str) -> dict[str, Any]:
    return {k: v for k, v in _schema(name).items() if k != "$schema"}


@cache
def _strict_validator(name: str) -> Any:
    """Compiled on first use: every payload is checked against it."""
    return fastjsonschema.compile(_bare_schema(name))


@cache
def _relaxed_validator(name: str) -> Any:
    """Compiled only when a quirk relaxes this action and a payload fails the strict schema:
    most actions never need it, and compiling it cost a first connection's loop time."""
    return fastjsonschema.compile(_relax(copy.deepcopy(_bare_schema(name))))


def _error_code(exc: fastjsonschema.JsonSchemaValueException) -> str:
    rule = exc.rule or ""
    if rule == "required":
        return "OccurenceConstraintViolation"  # sic: the 1.6 spelling (spec 4.2.3)
    if rule == "type":
        return "TypeConstraintViolation"
    return "PropertyConstraintViolation"


def _describe(exc: fastjsonschema.JsonSchemaValueException) -> str:
    # A number decoded as text because no 64-bit column holds it (gateway.ocpp.frames.OutOfRange).
    if exc.rule == "type" and isinstance(exc.value, OutOfRange):
        return f"{exc.name} = {exc.value[:40]} is beyond a signed 64-bit integer or not finite"
    return exc.message


def validate(action: str, payload: dict[str, Any], *, response: bool = False,
             relaxed: bool = False) -> str | None:
    """Validate a payload: None when clean; with `relaxed`, a warning when only relaxed rules pass.

    Strict unless the caller relaxes it for this action (a charger's quirk names the actions
    whose harmless deviations it is known to send). Raise OcppError with the 1.6 error code.
    """
    name = f"{action}Response" if response else action
    try:
        strict = _strict_validator(name)
    except FileNotFoundError:
        raise OcppError("NotImplemented", f"unknown action {action}") from None
    try:
        strict(payload)
        return None
    except fastjsonschema.JsonSchemaValueException as strict_exc:
        if not relaxed:
            raise OcppError(_error_code(strict_exc), _describe(strict_exc)) from None
        try:
            _relaxed_validator(name)(payload)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise OcppError(_error_code(exc), _describe(exc)) from None
        return strict_exc.message
