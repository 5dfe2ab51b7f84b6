"""The msgspec fast path (gateway/ocpp/fastcheck.py) is a shortcut, never a second opinion.

Whatever it accepts, the full way (`json` with bounded numbers, then the strict fastjsonschema
validator) accepts too, with the same payload; whatever it refuses still gets the full way's
answer. Checked on honest frames of every inbound action, on mutations of them that break one
rule each, and on the hostile corpus.
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest

from bench import frames as bench_frames
from bench import hostile_corpus
from gateway.errors import OcppError
from gateway.ocpp import fastcheck, frames, protocol

TS = "2026-11-20T08:00:00Z"
HONEST: dict[str, dict[str, Any]] = {
    "BootNotification": {"chargePointVendor": "Schneider", "chargePointModel": "EVlink", "chargePointSerialNumber": "SN1",
                         "firmwareVersion": "3.4", "meterType": "MID"},
    "Heartbeat": {},
    "StatusNotification": {"connectorId": 1, "status": "Charging", "errorCode": "NoError", "timestamp": TS,
                           "info": "ok", "vendorId": "v", "vendorErrorCode": "0"},
    "Authorize": {"idTag": "TAG1"},
    "StartTransaction": {"connectorId": 1, "idTag": "TAG1", "meterStart": 1200, "timestamp": TS, "reservationId": 7},
    "StopTransaction": {"transactionId": 5, "meterStop": 2300, "timestamp": TS, "reason": "Local", "idTag": "TAG1",
                        "transactionData": [{"timestamp": TS, "sampledValue": [{"value": "2300", "unit": "Wh"}]}]},
    "MeterValues": {"connectorId": 1, "transactionId": 5, "meterValue": [{"timestamp": TS, "sampledValue": [
        {"value": "12.5", "context": "Sample.Periodic", "format": "Raw", "measurand": "Current.Import",
         "phase": "L1", "location": "Outlet", "unit": "A"}, {"value": "1234"}]}]},
    "DataTransfer": {"vendorId": "acme", "messageId": "m", "data": "{\"a\": 1}"},
    "DiagnosticsStatusNotification": {"status": "Uploaded"},
    "FirmwareStatusNotification": {"status": "Installed"},
}
# One broken rule each, applied at every place it fits in a payload.
BAD_VALUES: list[Any] = [
    2**63, -(2**63) - 1, 2**64 - 1, 10**30, 1.5, 1e308, "x" * 600, "", None, True, [], {}, "NotAnEnum",
    "2026-02-30T08:00:00Z", "2026-11-20 08:00:00Z", "2026-11-20T08:00:00", "2026-11-20t08:00:00z",
    "2026-11-20T24:00:00Z", "2026-11-20T08:00:60Z", "2026-11-20T08:00:00.123+0100", "١٢٣",
]


def full_way(text: str) -> tuple[str, Any]:
    """What the gateway did before the fast path: ("ok", payload) or ("refused", code)."""
    try:
        msg = frames._DECODER.decode(text)
        call = protocol.frame_of(msg)
    except (ValueError, OcppError):
        return "refused", None
    if not isinstance(call, protocol.Call):
        return "refused", None
    try:
        protocol.validate(call.action, call.payload)
    except OcppError as exc:
        return "refused", exc.code
    return "ok", call.payload


def assert_shortcut_only(text: str) -> bool:
    """The fast path accepts `text` only where the full way accepts it, with the same payload."""
    fast = fastcheck.read_call(text)
    if fast is None:
        return False
    verdict, payload = full_way(text)
    assert verdict == "ok", text[:300]
    assert fast.payload == payload and json.dumps(fast.payload) == json.dumps(payload), text[:300]
    return True


def _places(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _places(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _places(v, path + (i,))
    return out


def _set(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    copied = copy.deepcopy(node)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copied


def _text(action: str, payload: Any) -> str:
    return json.dumps([2, "u1", action, payload], separators=(",", ":"))


@pytest.mark.parametrize("action", sorted(HONEST))
def test_honest_frames_take_the_fast_path_with_the_same_payload(action: str) -> None:
    assert assert_shortcut_only(_text(action, HONEST[action]))


def test_the_benchmark_chargers_frames_take_the_fast_path() -> None:
    texts = [bench_frames.boot_notification("CP1"), bench_frames.status_notification(1, "Available"),
             bench_frames.authorize("TAG1"), bench_frames.start_transaction("TAG1"),
             bench_frames.meter_values(12)]
    for template in texts:
        text = template % {"uid": "1", "ts": TS, "wh": "1234"}
        assert assert_shortcut_only(text), text[:120]


@pytest.mark.parametrize("action", sorted(HONEST))
def test_every_broken_rule_is_left_to_the_full_way(action: str) -> None:
    payload = HONEST[action]
    for path, bad in itertools.product(_places(payload), BAD_VALUES):
        assert_shortcut_only(_text(action, _set(payload, path, bad)))
    for key in payload:  # a required field missing, and an extra field
        assert_shortcut_only(_text(action, {k: v for k, v in payload.items() if k != key}))
    assert_shortcut_only(_text(action, {**payload, "extra": 1}))
    body = _text(action, payload)[:-2]  # duplicate keys: the last one counts, both must be right
    assert_shortcut_only(body + ',"connectorId":"1"}]')
    assert_shortcut_only(body + ',"connectorId":1}]')


def test_the_hostile_corpus_is_left_to_the_full_way() -> None:
    for n, category in enumerate(c for c in hostile_corpus.WEIGHTS for _ in range(5)):
        frame = hostile_corpus.probe(category, n).frame
        if isinstance(frame, str):
            assert_shortcut_only(frame)


def test_only_a_clean_call_is_taken() -> None:
    for text in ['[3,"u1",{}]', '[2,"u1","MeterValues"]', '[2.0,"u1","Heartbeat",{}]', '[2,"u1","Heartbeat",{},1]',
                 '[2,"u1","SetChargingProfile",{}]', '[2,"u1","NoSuchAction",{}]', '\ufeff[2,"u1","Heartbeat",{}]',
                 json.dumps([2, "u1", "X" * 100_000, {}])]:
        assert fastcheck.read_call(text) is None, text
