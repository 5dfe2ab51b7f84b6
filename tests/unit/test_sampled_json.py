"""The stored text of sampled values is `json.dumps`'s text, whichever encoder made it: the
re-send dedupe key (`meter_rows.sample_key`) hashes it, so a faster encoder must not change it."""

from __future__ import annotations

import json

from gateway.ocpp.meter_rows import sampled_json

CASES = [
    [{"value": "1234", "unit": "Wh"}, {"value": "12.5", "measurand": "Current.Import", "phase": "L1"}],
    [{"value": "tab\tnew\nline \\ \"quoted\" /slash"}],
    [{"value": "".join(chr(i) for i in range(32))}],
    [{"value": "del \x7f"}],
    [{"value": "Zählerstand 12 kWh", "unit": "kWh"}],
    [{"value": "\U0001f50c"}],
    [{"value": "1", "vendorExtra": 1.0e16}, {"value": "2", "vendorExtra": 0.1}],
    [{"value": "1", "vendorExtra": None, "flag": True, "n": 2**70}],
    [],
]


def test_the_stored_text_is_json_dumps_text() -> None:
    for values in CASES:
        assert sampled_json(values) == json.dumps(values, separators=(",", ":")), values
