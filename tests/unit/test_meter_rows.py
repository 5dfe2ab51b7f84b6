"""The meter-value bounds and the re-send key on plain payloads (gateway/ocpp/meter_rows.py).

Over the real server: tests/integration/test_meter_value_bounds.py.
"""

from __future__ import annotations

import pytest

from gateway.errors import OcppError
from gateway.ocpp import protocol
from gateway.ocpp.meter_rows import ROW_BYTES, check_sizes, meter_row, rows_size
from gateway.settings import OcppSettings

T0 = "2026-11-20T08:00:00Z"
OCPP = OcppSettings()


def mv(*sampled: dict, timestamp: str = T0) -> dict:
    return {"timestamp": timestamp, "sampledValue": list(sampled)}


def code_of(meter_values: list[dict]) -> str:
    with pytest.raises(OcppError) as err:
        check_sizes(meter_values, OCPP)
    return err.value.code


def test_the_budget_is_charged_what_the_rows_store():
    full = {"value": "1234.5", "context": "Sample.Periodic", "format": "Raw", "unit": "Wh",
            "measurand": "Energy.Active.Import.Register", "phase": "L1-N", "location": "Outlet"}
    rows = [meter_row("CP1", 1, 7, mv(*values)) for values in ([{"value": "1"}], [full] * 8)]
    assert rows_size(rows) == len(rows[0][5]) + len(rows[1][5]) + 2 * ROW_BYTES


def _outcome(meter_values: list[dict], strict: bool) -> tuple[str, str] | None:
    try:
        check_sizes(meter_values, OCPP, strict=strict)
    except OcppError as exc:
        return exc.code, exc.description
    return None


def test_the_strict_shortcut_refuses_what_the_full_check_refuses_in_its_words():
    """A payload that passed the strict schema is only looked at for its readings, timestamps and
    count; anything over a bound takes the full check, which words the CALLERROR."""
    reading, signed = OCPP.meter_value_max_chars, OCPP.signed_meter_value_max_chars
    full = {"value": "1", "context": "Sample.Periodic", "format": "Raw", "measurand": "Voltage",
            "phase": "L1-N", "location": "Outlet", "unit": "V"}
    cases = [
        [mv(full)], [mv(full)] * 3,
        [mv({"value": "9" * reading})], [mv({"value": "9" * (reading + 1)})],
        [mv({"value": "A" * signed, "format": "SignedData"})],
        [mv({"value": "A" * (signed + 1), "format": "SignedData"})],
        [mv({"value": "A" * (reading + 1), "format": "Raw"})],
        [mv({"value": "1"}, timestamp="2026-11-20T08:00:00." + "0" * 40 + "Z")],
        [mv({"value": "1"}, timestamp="2026-11-20T08:00:00." + "0" * 80 + "Z")],
        [mv({"value": "1"})] * OCPP.max_sampled_values_per_message,
        [mv({"value": "1"})] * (OCPP.max_sampled_values_per_message + 1),
        [mv({"value": "1"}), mv(*[{"value": "1"}] * OCPP.max_sampled_values_per_message)],
    ]
    for meter_values in cases:
        assert protocol.validate("MeterValues", {"connectorId": 1, "meterValue": meter_values}) is None
        assert _outcome(meter_values, strict=True) == _outcome(meter_values, strict=False)
    assert sum(_outcome(m, strict=True) is not None for m in cases) == 6


def test_signed_data_may_be_longer_than_a_reading_but_not_without_bound():
    check_sizes([mv({"value": "A" * OCPP.signed_meter_value_max_chars, "format": "SignedData"})], OCPP)
    assert code_of([mv({"value": "A" * (OCPP.signed_meter_value_max_chars + 1), "format": "SignedData"})]) \
        == "PropertyConstraintViolation"
    assert code_of([mv({"value": "1" * (OCPP.meter_value_max_chars + 1)})]) == "PropertyConstraintViolation"


def test_counts_types_and_the_timestamp_are_bounded_too():
    assert code_of([mv({"value": "1"})] * (OCPP.max_sampled_values_per_message + 1)) \
        == "OccurenceConstraintViolation"
    assert code_of([mv({"value": "1", "note": ["x"]})]) == "TypeConstraintViolation"
    assert code_of([mv({"value": "1"}, timestamp="2" * 1000)]) == "PropertyConstraintViolation"
    assert code_of([mv({"value": "1", "x" * 1000: "y"})]) == "PropertyConstraintViolation"


def test_the_key_names_the_sampled_values_not_their_order_of_arrival():
    one = meter_row("CP1", 1, 7, mv({"value": "1"}, {"value": "2"}))
    again = meter_row("CP1", 1, 7, mv({"value": "1"}, {"value": "2"}))
    other = meter_row("CP1", 1, 7, mv({"value": "1"}, {"value": "3"}))
    assert one[6] == again[6] != other[6]
    assert -(2**63) <= one[6] < 2**63  # an SQLite integer
