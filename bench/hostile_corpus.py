"""The hostile corpus: frames nobody honest sends, by category, each with the answer it should get.

Issue 12 lists the categories: malformed JSON, wrong types and containers, huge and deeply
nested frames, unknown actions, out-of-range integers, binary frames, invalid UTF-8,
duplicate ids, CALLRESULTs for unknown ids. `expected` is what the gateway ought to answer:
a CALLERROR code, "CALLRESULT", either of two ("CALLRESULT or GenericError": accepted until
the peer's meter-value budget is spent, refused after), "no answer" (an answer is never answered), or a close code
(only invalid UTF-8, 1007, and a frame over ocpp.max_message_bytes, 1009).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

T0 = "2026-11-20T08:00:00Z"
HUGE = 200_000  # characters: under the default 256 KiB frame limit
DEEP = 1_000


@dataclass(frozen=True)
class Probe:
    category: str
    frame: str | bytes
    uid: str | None  # the id the answer should carry; None: no answer expected
    expected: str
    text_frame: bool = True  # False: send as a binary websocket frame
    closes: bool = False  # the category ends the connection (run it on its own connection)


def _call(uid: str, action: str, payload: object) -> str:
    return json.dumps([2, uid, action, payload], separators=(",", ":"))


def _meter(uid: str, meter_value: object, connector: object = 1) -> str:
    return _call(uid, "MeterValues", {"connectorId": connector, "meterValue": meter_value})


def _ts(n: int) -> str:
    """A timestamp of its own for the n-th frame."""
    return f"2026-11-{20 + n // 86400 % 8}T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"


def probe(category: str, n: int) -> Probe:
    """The n-th frame of a category (ids are unique per n)."""
    uid = f"h{n}"
    sample = [{"value": "1"}]
    make = {
        "malformed JSON (cut short)": lambda: Probe(category, _call(uid, "Heartbeat", {})[:-2], uid,
                                                    "FormationViolation"),
        "not JSON at all": lambda: Probe(category, f"GET / HTTP/1.1 {n}", "-1", "FormationViolation"),
        "not an array": lambda: Probe(category, json.dumps({"id": uid}), "-1", "FormationViolation"),
        "wrong message type id": lambda: Probe(category, f'[7,"{uid}","Heartbeat",{{}}]', uid,
                                               "FormationViolation"),
        "payload not an object": lambda: Probe(category, f'[2,"{uid}","Heartbeat",[]]', uid,
                                               "FormationViolation"),
        "meterValue as an object": lambda: Probe(category, _meter(uid, {"timestamp": T0, "sampledValue": sample}),
                                                 uid, "TypeConstraintViolation"),
        "sampledValue as an object": lambda: Probe(
            category, _meter(uid, [{"timestamp": T0, "sampledValue": {"value": "1"}}]), uid,
            "TypeConstraintViolation"),
        "transactionData as an object": lambda: Probe(category, _call(uid, "StopTransaction", {
            "transactionId": 1, "meterStop": 1, "timestamp": T0,
            "transactionData": {"timestamp": T0, "sampledValue": sample}}), uid, "TypeConstraintViolation"),
        "string for an integer": lambda: Probe(category, _meter(uid, [], "one"), uid, "TypeConstraintViolation"),
        "missing required field": lambda: Probe(category, _call(uid, "StatusNotification", {"connectorId": 1}),
                                                uid, "OccurenceConstraintViolation"),
        "connectorId no charger has": lambda: Probe(category, _call(uid, "StatusNotification", {
            "connectorId": 1000 + n, "status": "Available", "errorCode": "NoError"}), uid,
            "PropertyConstraintViolation"),
        "integer beyond 64 bits": lambda: Probe(category, _meter(uid, [], 2**64 + n), uid,
                                                "TypeConstraintViolation"),
        "NaN / Infinity": lambda: Probe(category, f'[2,"{uid}","MeterValues",{{"connectorId":NaN,'
                                                  '"meterValue":[]}]', uid, "TypeConstraintViolation"),
        "unknown action": lambda: Probe(category, _call(uid, f"NoSuchAction{n % 10}", {}), uid, "NotImplemented"),
        "central-system action sent to us": lambda: Probe(category, _call(uid, "Reset", {"type": "Hard"}), uid,
                                                          "NotSupported"),
        "deep nesting with an id": lambda: Probe(category, f'[2,"{uid}","DataTransfer",{{"vendorId":"x","data":'
                                                 + "[" * DEEP + "]" * DEEP + "}]", uid, "FormationViolation"),
        "deep nesting without an id": lambda: Probe(category, "[" * DEEP + "]" * DEEP, "-1", "FormationViolation"),
        "huge string, over the schema": lambda: Probe(category, _call(uid, "BootNotification", {
            "chargePointVendor": "V" * HUGE, "chargePointModel": "M"}), uid, "PropertyConstraintViolation"),
        "huge string, valid (DataTransfer)": lambda: Probe(category, _call(uid, "DataTransfer", {
            "vendorId": "x", "data": "D" * HUGE}), uid, "CALLRESULT"),
        "huge sampled value (200 KB)": lambda: Probe(category, _meter(uid, [{"timestamp": T0, "sampledValue": [
            {"value": "9" * HUGE}]}]), uid, "PropertyConstraintViolation"),
        "thousands of sampled values": lambda: Probe(category, _meter(uid, [{"timestamp": T0, "sampledValue": [
            {"value": str(i)} for i in range(5000)]}]), uid, "OccurenceConstraintViolation"),
        "valid MeterValues of 100 KB each (the charger's budget)": lambda: Probe(category, _meter(uid, [{
            "timestamp": _ts(n), "sampledValue": [{"value": f"{n % 1000}.{i:090d}"} for i in range(999)]}]), uid,
            "CALLRESULT or GenericError"),
        "half a surrogate pair": lambda: Probe(category, f'[2,"{uid}","Authorize",{{"idTag":"\\ud800"}}]', uid,
                                               "FormationViolation"),
        "binary frame": lambda: Probe(category, _call(uid, "Heartbeat", {}).encode(), uid, "FormationViolation",
                                      text_frame=False),
        "CALLRESULT for an unknown id": lambda: Probe(category, f'[3,"{uid}",{{}}]', None, "no answer"),
        "CALLERROR for an unknown id": lambda: Probe(category, f'[4,"{uid}","GenericError","",{{}}]', None,
                                                     "no answer"),
        "invalid UTF-8 in a text frame": lambda: Probe(category, b'[2,"' + uid.encode() + b'","Heartbeat",'
                                                       b'{"x":"\xff\xfe"}]', None, "close 1007", closes=True),
        "over ocpp.max_message_bytes": lambda: Probe(category, _call(uid, "DataTransfer", {
            "vendorId": "x", "data": "O" * 300_000}), None, "close 1009", closes=True),
    }
    return make[category]()


# Share of the corpus per category (per mille); duplicates are built by the runner from these.
WEIGHTS: dict[str, int] = {
    "malformed JSON (cut short)": 80, "not JSON at all": 60, "not an array": 50,
    "wrong message type id": 50, "payload not an object": 50, "meterValue as an object": 70,
    "sampledValue as an object": 70, "transactionData as an object": 70, "string for an integer": 50,
    "missing required field": 50, "connectorId no charger has": 30, "integer beyond 64 bits": 70, "NaN / Infinity": 30,
    "unknown action": 50, "central-system action sent to us": 20, "deep nesting with an id": 30,
    "deep nesting without an id": 20, "huge string, over the schema": 3,
    "huge string, valid (DataTransfer)": 3, "huge sampled value (200 KB)": 3, "thousands of sampled values": 3,
    "valid MeterValues of 100 KB each (the charger's budget)": 3, "half a surrogate pair": 30, "binary frame": 50, "CALLRESULT for an unknown id": 50,
    "CALLERROR for an unknown id": 30,
}
# Categories that end the connection: a fixed count each, on connections of their own.
CLOSING = ("invalid UTF-8 in a text frame", "over ocpp.max_message_bytes")
DUPLICATE_SAME = "duplicate id, same frame (re-send)"
DUPLICATE_OTHER = "duplicate id, other frame"
DUPLICATE_SHARE = 34  # per mille, each of the two duplicate categories
