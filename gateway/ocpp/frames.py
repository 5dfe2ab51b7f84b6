"""Reading what a charger sends before anything trusts it: OCPP-J framing with limits, no I/O.

Anyone who reaches the port can send any bytes (issue 12: one frame crashed the log summary, a
2 KB frame nested 1,000 deep crashed the decoder, one integer beyond 64 bits spoiled every
charger's batch of rows). So every check that protects the rest of the gateway runs here, on
the text, before a handler, a log summary or the store sees the payload:

- nesting depth, counted on the text before decoding (a count of brackets when that suffices);
- numbers a SQLite column cannot hold (beyond signed 64 bits, NaN, Infinity) are decoded as
  `OutOfRange` text, so the schema's "integer"/"number" check refuses them with
  TypeConstraintViolation and a free field keeps them as text;
- binary frames are refused (RFC 6455 5.6: JSON travels in text frames), and so are strings
  with half a surrogate pair ("\\ud800"), which decode to text no UTF-8 store can hold;
- the message id is recovered from a frame that cannot be decoded, so the CALLERROR can name it.

`read_frame` returns a `protocol.Call`/`CallResult`/`CallError` or a `Refusal`; `check_payload`
validates what a charger sent against the strict schema, relaxed only for the actions its quirk
names (`relaxed_schema_actions`); `check_connector` bounds the connector ids; `check_call` is both,
for a plain call.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from gateway.chargers.capabilities import schema_relaxations
from gateway.errors import OcppError
from gateway.model.station import Station
from gateway.ocpp import fastcheck, protocol
from gateway.ocpp.logbudget import clip
from gateway.ocpp.protocol import OutOfRange
from gateway.settings import OcppSettings

# The deepest OCPP 1.6 frame is 6 levels (StopTransaction transactionData, SetChargingProfile
# chargingSchedulePeriod); 20 leaves room for vendor DataTransfer data sent as JSON.
MAX_DEPTH = 20
DEEPEST_CALL = 6  # levels of the deepest CALL a charger sends, with its envelope (StopTransaction)
# The id answered when none can be read (the frame is not even an array). Other OCPP stacks also
# answer such a frame with a CALLERROR (EVerest libocpp#1052); "-1" matches no call of the charger.
NO_ID = "-1"
# OCPP 1.6 numbers connectors from 1 (0: the charge point as a whole); the schema bounds neither
# end. Each connector id a charger names becomes live state and BMS points, so a peer must not
# invent thousands of them. Real chargers have a handful; 100 leaves room for parking controllers.
MAX_CONNECTOR_ID = 100
_INT64 = (-(2**63), 2**63 - 1)
_ID_LIMIT = 36  # OCPP-J 4.1.4: the unique id is at most 36 characters
_ANSWER_KEPT_MAX = 4096  # characters of an answer `RecentAnswers` keeps for a re-send
_HEAD = re.compile(r'\s*\[\s*"?(\d+)"?\s*,\s*"((?:[^"\\]|\\.){1,' + str(_ID_LIMIT) + '})"')
# "\ud800" alone decodes to a str that no UTF-8 text (the log, SQLite, a BMS string) can hold.
_LONE_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
                             r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')  # deleted by `_structure`
_DEPTH_STEP = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]


def _parse_int(text: str) -> int | OutOfRange:
    if len(text) < 19:  # fewer than 19 digits always fits in 64 bits
        return int(text)
    if len(text) > 20:  # also keeps int() away from its 4,300-digit limit
        return OutOfRange(text)
    value = int(text)
    return value if _INT64[0] <= value <= _INT64[1] else OutOfRange(text)


def _parse_float(text: str) -> float | OutOfRange:
    value = float(text)
    return value if math.isfinite(value) else OutOfRange(text)


_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float, parse_constant=OutOfRange)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A frame that cannot be handled: why, and the CALLERROR due when the frame was a CALL.

    An answer that cannot be read (message type 3 or 4) is never answered: a CALLERROR answers
    only a CALL (OCPP-J 4.2.3; EVerest libocpp#995). `unique_id` is what could be read of the message id.
    """

    code: str
    description: str
    unique_id: str
    answerable: bool = True

    def reply(self) -> str | None:
        """The CALLERROR text to send, or None when nothing may be sent."""
        if not self.answerable:
            return None
        return protocol.dump_error(self.unique_id, self.code, self.description)


def read_frame(message: str | bytes, max_depth: int = MAX_DEPTH) -> protocol.Frame | Refusal:
    """Decode one websocket message into a frame, or the refusal to answer it with."""
    if isinstance(message, bytes):
        text = message.decode("utf-8", "replace")
        return _refuse(text, "binary frame: OCPP-J messages are text frames")
    if "\\u" in message and _LONE_SURROGATE.search(message):
        return _refuse(message, "a \\u escape of half a UTF-16 surrogate pair: no character (RFC 8259 8.2)")
    # A clean CALL, decoded and checked at once. It fits a 1.6 schema, so it is no deeper than
    # the deepest charger-sent call: the depth check is for what goes on to the decoder (msgspec
    # refuses a frame nested 250,000 deep without harm; it was half of reading a wide frame).
    checked = fastcheck.read_call(message) if max_depth >= DEEPEST_CALL else None
    if checked is not None:
        return checked
    if _too_deep(message, max_depth):
        return _refuse(message, f"nested deeper than {max_depth} levels")
    try:
        msg = _DECODER.decode(message)
    except (ValueError, RecursionError) as exc:
        return _refuse(message, f"not JSON: {exc}")
    try:
        return protocol.frame_of(msg)
    except OcppError as exc:
        return _refuse(message, exc.description)


def check_call(call: protocol.Call, relaxed: bool = False, max_connector_id: int = MAX_CONNECTOR_ID) -> str | None:
    """Validate a CALL's payload: None when clean, a warning when only the relaxed schema passes.

    Raises OcppError with the 1.6 code (NotImplemented for an action without a schema).
    """
    warning = protocol.validate(call.action, call.payload, relaxed=relaxed)
    check_connector(call.payload, max_connector_id)
    return warning


def check_payload(station: Station, action: str, payload: dict[str, Any], settings: OcppSettings,
                  response: bool = False) -> str | None:
    """A charger's payload (a call, or the answer to ours) against the strict schema, relaxed only
    for an action this charger's quirk names, or for every action when the operator turned
    `ocpp.validate_schemas` off. Types and required fields are checked either way."""
    relaxed = not settings.validate_schemas
    try:
        return protocol.validate(action, payload, response=response, relaxed=relaxed)
    except OcppError as exc:
        boot = payload if action == "BootNotification" and not response else None
        if relaxed or exc.code == "NotImplemented" or action not in schema_relaxations(station, boot):
            raise
    return protocol.validate(action, payload, response=response, relaxed=True)


def check_connector(payload: dict[str, Any], max_connector_id: int) -> None:
    """Refuse a connectorId outside 0..max_connector_id (PropertyConstraintViolation)."""
    connector = payload.get("connectorId")
    if isinstance(connector, int) and not 0 <= connector <= max_connector_id:
        raise OcppError("PropertyConstraintViolation",
                        f"connectorId {connector} is outside 0..{max_connector_id}")


class RecentAnswers:
    """The last few answers sent on one connection, by message id.

    OCPP-J 4.1.4: a message id is unique per connection. The same frame under a known id is a
    re-send (the charger missed our answer): it gets the first answer again, not a second
    effect. A different frame under a used id is handled as new (and noted by the caller).

    Only the last `size` (4) are kept: a charger has one CALL outstanding at a time (OCPP-J
    4.1.1), so what it re-sends is its last unanswered frame, and 4 leaves room for a charger
    that re-sends after sending a few more. Keeping 32 cost 9-11 KiB per charger once full, about
    a quarter of a charger's memory at 10,000 chargers (docs/benchmarks.md "Issue 17"). A plain
    dict (insertion order, first key evicted) is smaller than an OrderedDict.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._by_id: dict[str, tuple[int, str]] = {}  # id -> (frame hash, answer), oldest first

    def lookup(self, uid: str, message: str | bytes) -> tuple[str, str | None]:
        """("new", None), ("resent", the answer sent before) or ("reused", None)."""
        seen = self._by_id.get(uid)
        if seen is None:
            return "new", None
        return ("resent", seen[1]) if seen[0] == hash(message) else ("reused", None)

    def remember(self, uid: str, message: str | bytes, answer: str) -> None:
        if len(answer) > _ANSWER_KEPT_MAX:  # an id far beyond 36 characters: not worth the memory
            return
        self._by_id.pop(uid, None)  # a reused id moves to the newest place
        self._by_id[uid] = (hash(message), answer)
        if len(self._by_id) > self.size:
            del self._by_id[next(iter(self._by_id))]


def _too_deep(text: str, limit: int) -> bool:
    """Whether brackets nest deeper than `limit` outside strings (where the decoder would recurse).

    Cheap for honest frames (a count of brackets). Otherwise the brackets outside strings are
    taken (`_structure`, byte operations in C); a wide frame empties when its innermost pairs
    are removed a few times (a MeterValues of 999 sampled values: about 0.07 ms), else their
    running depth is summed in C (a 2 KB frame nested 1,000 deep: about 0.1 ms). Cutting strings
    with a regex and removing pairs one level a pass took 0.7-1.6 ms for either. Up to
    a bracket that does not close what is open, the running depth is the decoder's; past it
    the decoder has already refused the frame.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = quick = _structure(text)
    for _ in range(limit // 2):  # innermost pairs, one or two levels a pass: empty means shallow
        quick = quick.replace(b"{}", b"").replace(b"[]", b"")
        if not quick:
            return False
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > limit


def _structure(text: str) -> bytes:
    """The brackets of `text` that are outside JSON strings, as bytes.

    Escaped backslashes, then escaped quotes are dropped (left to right, as JSON reads them),
    then every byte but brackets and quotes (UTF-8 continuation bytes are never ASCII); "" joins
    two strings with nothing between them, and what is left between quotes is inside a string.
    Where the frame stops being JSON this may differ from a parser, but the decoder stops there.
    """
    data = text.encode("utf-8", "surrogatepass")
    if b"\\" in data:
        data = data.replace(b"\\\\", b"")
    if b"\\" in data:
        data = data.replace(b'\\"', b"")
    return b"".join(data.translate(None, _NOT_STRUCTURE).replace(b'""', b"").split(b'"')[::2])


def _refuse(text: str, description: str) -> Refusal:
    head = _HEAD.match(text)
    if head is None:
        return Refusal("FormationViolation", description, NO_ID)
    kind, uid = int(head.group(1)), head.group(2)
    answerable = kind not in (protocol.CALLRESULT, protocol.CALLERROR)
    return Refusal("FormationViolation", description, uid, answerable)


def excerpt(message: str | bytes, limit: int) -> str:
    """The start of a frame as it may be logged, with its raw size when it was cut."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return clip(text, limit, len(message) if isinstance(message, bytes) else None)
