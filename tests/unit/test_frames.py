"""Hostile and malformed frames, bytes in and decisions out, with no socket (OCPP-J 1.6 section 4).

Each test hands `gateway.ocpp.frames` the text a charger (or anyone who connects) could send and
checks the frame or the CALLERROR that comes back. The same frames over the real server are in
tests/integration/test_hostile_input.py.
"""

from __future__ import annotations

import json

import pytest

from bench import hostile_corpus as corpus
from gateway.errors import OcppError
from gateway.ocpp import frames, protocol
from gateway.ocpp.frames import Refusal, check_call, read_frame

T0 = "2026-11-20T08:00:00Z"
SAMPLE = {"value": "10"}


def call(action: str, payload: dict) -> str:
    return json.dumps([2, "m1", action, payload])


def refused_code(text: str, relaxed: bool = False) -> str:
    frame = read_frame(text)
    if isinstance(frame, Refusal):
        return frame.code
    with pytest.raises(OcppError) as err:
        check_call(frame, relaxed=relaxed)
    return err.value.code


@pytest.mark.parametrize(("action", "payload"), [
    ("MeterValues", {"connectorId": 1, "meterValue": {"timestamp": T0, "sampledValue": [SAMPLE]}}),
    ("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": T0, "sampledValue": SAMPLE}]}),
    ("StopTransaction", {"transactionId": 1, "meterStop": 5, "timestamp": T0,
                         "transactionData": {"timestamp": T0, "sampledValue": [SAMPLE]}}),
    ("StopTransaction", {"transactionId": 1, "meterStop": 5, "timestamp": T0,
                         "transactionData": [{"timestamp": T0, "sampledValue": SAMPLE}]}),
    ("StatusNotification", {"connectorId": [1], "status": "Available", "errorCode": "NoError"}),
])
def test_an_object_where_the_schema_wants_an_array_is_a_type_violation(action, payload):
    assert refused_code(call(action, payload)) == "TypeConstraintViolation"
    assert refused_code(call(action, payload), relaxed=True) == "TypeConstraintViolation"


def test_a_frame_nested_a_thousand_deep_is_refused_with_its_message_id():
    text = '[2,"deep-1","DataTransfer",{"vendorId":"x","data":' + "[" * 1000 + "]" * 1000 + "}]"
    refusal = read_frame(text)
    assert isinstance(refusal, Refusal) and refusal.code == "FormationViolation"
    assert json.loads(refusal.reply())[:3] == [4, "deep-1", "FormationViolation"]


def test_a_deep_frame_without_a_message_id_gets_the_placeholder_id():
    refusal = read_frame("[" * 5000 + "]" * 5000)
    assert isinstance(refusal, Refusal) and json.loads(refusal.reply())[1] == "-1"


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = call("DataTransfer", {"vendorId": "x", "data": "[" * 500 + "{" * 500})
    assert isinstance(read_frame(text), protocol.Call)


def test_a_payload_six_levels_deep_like_a_stop_transaction_passes():
    text = call("StopTransaction", {"transactionId": 1, "meterStop": 5, "timestamp": T0,
                                    "transactionData": [{"timestamp": T0, "sampledValue": [SAMPLE]}]})
    check_call(read_frame(text))


@pytest.mark.parametrize("number", [str(2**64), str(2**63), str(-(2**63) - 1), "9" * 5000, "NaN", "1e999"])
def test_numbers_sqlite_cannot_hold_are_a_type_violation(number):
    text = '[2,"m1","MeterValues",{"connectorId":' + number + ',"meterValue":[]}]'
    assert refused_code(text) == "TypeConstraintViolation"


def test_the_largest_signed_64_bit_integer_still_passes():
    frame = read_frame(call("StopTransaction", {"transactionId": 2**63 - 1, "meterStop": -(2**63),
                                                "timestamp": T0}))
    check_call(frame)
    assert frame.payload["transactionId"] == 2**63 - 1


def test_an_out_of_range_integer_in_a_free_field_is_kept_as_text():
    frame = read_frame(f'[2,"m1","DataTransfer",{{"vendorId":"x","data":"y","extra":{2**70}}}]')
    assert isinstance(frame.payload["extra"], str) and frame.payload["extra"] == str(2**70)


@pytest.mark.parametrize(("text", "uid"), [
    ("this is not json", "-1"),
    ('{"not": "an array"}', "-1"),
    ('"just a string"', "-1"),
    ('[2, "m7", "Heartbeat"]', "m7"),
    ('[9, "m8", "Heartbeat", {}]', "m8"),
    ('["2", "m9", "Heartbeat", {}]', "m9"),
    ('[2, "m10", "Heartbeat", []]', "m10"),
    ('[2, "m11", "Heartbeat", {}', "m11"),  # cut short: the id is still read
])
def test_malformed_frames_are_a_formation_violation_naming_what_can_be_read(text, uid):
    refusal = read_frame(text)
    assert isinstance(refusal, Refusal)
    assert json.loads(refusal.reply())[:3] == [4, uid, "FormationViolation"]


def test_a_binary_frame_is_refused_with_its_message_id():
    refusal = read_frame(b'[2,"b1","Heartbeat",{}]')
    assert isinstance(refusal, Refusal) and json.loads(refusal.reply())[:3] == [4, "b1", "FormationViolation"]
    assert isinstance(read_frame(b"\xff\xfe\x00garbage"), Refusal)


@pytest.mark.parametrize("text", ['[3, "x1", []]', '[4, "x2"]', '[3, "x3", {"a": ' + "[" * 900 + "]" * 900 + "}]"])
def test_a_broken_answer_is_never_answered(text):
    refusal = read_frame(text)
    assert isinstance(refusal, Refusal) and refusal.reply() is None


def test_unknown_actions_are_not_implemented():
    assert refused_code(call("NoSuchAction", {})) == "NotImplemented"


def test_over_long_strings_are_refused_strictly_and_tolerated_when_relaxed():
    text = call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M",
                                     "chargePointSerialNumber": "S" * 40})
    assert refused_code(text) == "PropertyConstraintViolation"
    warning = check_call(read_frame(text), relaxed=True)
    assert "chargePointSerialNumber" in warning


# Answered by the session, not the frame checks: the meter-value bounds and the per-charger
# budget (tests/test_meter_value_bounds.py runs them over a socket).
SESSION_CATEGORIES = ("huge sampled value (200 KB)", "thousands of sampled values",
                      "valid MeterValues of 100 KB each (the charger's budget)")


@pytest.mark.parametrize("category", [c for c in corpus.WEIGHTS if c not in (
    "central-system action sent to us", "huge string, valid (DataTransfer)", *SESSION_CATEGORIES)])
def test_every_category_of_the_hostile_benchmark_gets_its_answer_without_a_socket(category):
    """bench/hostile_corpus.py, frame by frame: what bench.hostile measures over the network."""
    p = corpus.probe(category, 1)
    frame = read_frame(p.frame)
    if isinstance(frame, Refusal):
        assert (frame.reply() is None and p.expected == "no answer") or frame.code == p.expected
    elif isinstance(frame, protocol.Call):
        assert refused_code(p.frame) == p.expected
    else:
        assert p.expected == "no answer"  # an answer to no call of ours: the session ignores it


def test_every_relaxed_action_of_a_bundled_quirk_is_an_ocpp_action():
    """A misspelt action in `relaxed_schema_actions` would silently relax nothing."""
    from gateway.chargers.quirks import bundled_quirks
    for quirk in bundled_quirks():
        for action in quirk.relaxed_schema_actions:
            assert protocol.schema_exists(action), (quirk.name, action)


@pytest.mark.parametrize("connector", [-1, 101, 2**40])
def test_a_connector_id_no_charger_has_is_a_property_violation(connector):
    text = call("StatusNotification", {"connectorId": connector, "status": "Available", "errorCode": "NoError"})
    assert refused_code(text) == "PropertyConstraintViolation"
    check_call(read_frame(text.replace(str(connector), "100")))


def test_depth_is_counted_exactly_on_frames_with_many_brackets():
    """Past a plain count of brackets the depth is measured: wide is fine, deep is not."""
    data = [{"timestamp": T0, "sampledValue": [{"value": "1.5", "unit": "Wh"}] * 3}] * 30
    check_call(read_frame(call("StopTransaction", {"transactionId": 1, "meterStop": -5, "timestamp": T0,
                                                  "transactionData": data})))
    nested = 1.5e3
    for _ in range(18):  # the frame and its payload are 2 levels: 2 + 18 = 20, the limit
        nested = [nested, True, None]
    assert isinstance(read_frame(call("DataTransfer", {"vendorId": "x", "data": "y", "v": nested})), protocol.Call)
    deeper = call("DataTransfer", {"vendorId": "x", "data": "y", "v": [nested]})
    assert read_frame(deeper).code == "FormationViolation"


@pytest.mark.parametrize("text", ["NaN", "1e999", "-inf", "12 kWh", ""])
def test_a_sampled_value_that_is_no_finite_number_gives_no_reading(text):
    """Values are strings in 1.6, so the decoder's number check cannot see them: the reading can."""
    from gateway.ocpp.meter_rows import meter_row, readings
    mv = {"timestamp": T0, "sampledValue": [{"value": text}]}
    assert readings(1, mv) == []
    assert meter_row("CP1", 1, None, mv)[4] is None  # the energy column stays empty


@pytest.mark.parametrize(("escaped", "refused"), [
    ("\\ud800", True), ("\\uDC00x", True), ("a\\udbff\\u0041", True),
    ("\\ud83d\\ude00", False), ("\\u00e9", False),  # an emoji's pair, and an ordinary escape
])
def test_half_a_surrogate_pair_is_refused_before_it_reaches_the_log_or_the_store(escaped, refused):
    text = '[2,"s1","Authorize",{"idTag":"' + escaped + '"}]'
    frame = read_frame(text)
    assert isinstance(frame, Refusal) == refused
    if refused:
        assert json.loads(frame.reply())[:3] == [4, "s1", "FormationViolation"]
    else:
        frame.payload["idTag"].encode("utf-8")


# --- the answers kept for re-sent frames (issue 17: memory at 10,000 chargers) -------------------
def _call(uid: str) -> str:
    return f'[2,"{uid}","Heartbeat",{{}}]'


def test_recent_answers_keep_the_last_four_and_answer_their_re_sends():
    recent = frames.RecentAnswers()
    for n in range(10):
        recent.remember(f"m{n}", _call(f"m{n}"), f"answer {n}")
    for n in range(6, 10):  # the last four: a re-send gets the first answer again
        assert recent.lookup(f"m{n}", _call(f"m{n}")) == ("resent", f"answer {n}")
    assert recent.lookup("m5", _call("m5")) == ("new", None)  # older ones are forgotten
    assert recent.lookup("m9", '[2,"m9","Authorize",{"idTag":"T"}]') == ("reused", None)


def test_recent_answers_a_reused_id_becomes_the_newest():
    recent = frames.RecentAnswers(size=2)
    recent.remember("a", _call("a"), "A")
    recent.remember("b", _call("b"), "B")
    recent.remember("a", '[2,"a","Authorize",{"idTag":"T"}]', "A2")  # the id reused for a new frame
    recent.remember("c", _call("c"), "C")
    assert recent.lookup("b", _call("b")) == ("new", None)  # "b" was the oldest
    assert recent.lookup("a", '[2,"a","Authorize",{"idTag":"T"}]') == ("resent", "A2")
    assert recent.lookup("c", _call("c")) == ("resent", "C")


def test_recent_answers_do_not_keep_an_answer_too_large():
    recent = frames.RecentAnswers()
    recent.remember("big", _call("big"), "x" * 5000)
    assert recent.lookup("big", _call("big")) == ("new", None)


def _depth(text: str) -> int:
    """Reference: the deepest nesting outside strings, read one character at a time."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


WIDE_METER_VALUES = json.dumps([2, "w1", "MeterValues", {"connectorId": 1, "meterValue": [{
    "timestamp": "2026-12-05T00:00:00Z", "sampledValue": [{"value": f"{i}.5"} for i in range(999)]}]}])


@pytest.mark.parametrize("text", [
    WIDE_METER_VALUES,
    "[" * 21 + "]" * 21,
    "[" * 20 + "]" * 20,
    "[{" * 10 + "}]" * 10,
    "[{" * 10 + "[]" + "}]" * 10,
    '["' + "[" * 40 + '"' + ",{}" * 30 + "]",  # brackets inside a string do not count
    '["\\"' + "[" * 40 + '"' + ",{}" * 30 + "]",  # an escaped quote does not end the string
    '["\\\\",' + "[" * 25 + "]" * 25 + "]",  # an escaped backslash, then the string ends
    '["\\\\\\"[[[[[[[[[[[[[[[[[[[[[[[[",' + "{}," * 30 + "1]",  # \\ then \" : still inside
    '["", "", ' + "[" * 22 + "]" * 22 + "]",
    '["a""b", ' + "[" * 22 + "]" * 22 + "]",
    '["ü€" , ' + "{" * 21 + "}" * 21 + "]",
])
def test_the_depth_check_agrees_with_reading_one_character_at_a_time(text):
    from gateway.ocpp.frames import _too_deep
    assert _too_deep(text, 20) == (_depth(text) > 20)


def test_a_clean_wide_call_is_read_without_the_depth_check_and_a_deep_one_is_still_refused(monkeypatch):
    """A CALL the fast path accepts fits a 1.6 schema (6 levels at most): counting its brackets
    again was half the cost of reading a 100 KB MeterValues."""
    from gateway.ocpp import frames
    checked: list[str] = []
    real = frames._too_deep
    monkeypatch.setattr(frames, "_too_deep", lambda text, limit: checked.append(text) or real(text, limit))
    assert isinstance(read_frame(WIDE_METER_VALUES), protocol.Call)
    assert checked == []
    deep = '[2,"d1","DataTransfer",{"vendorId":"x","data":' + "[" * 1000 + "]" * 1000 + "}]"
    refusal = read_frame(deep)
    assert isinstance(refusal, Refusal) and "nested deeper" in refusal.description
    assert checked == [deep]
