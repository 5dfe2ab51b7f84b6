"""The meter-value bounds and the re-send key on plain payloads (gateway/ocpp/meter_rows.py).

Over the real server: tests/integration/test_meter_value_bounds.py.
"""

from __future__ import annotations

import pytest

from gateway.errors import OcppError
from gateway.ocpp.meter_rows import check_sizes, meter_row
from gateway.settings import OcppSettings

T0 = "2026-11-20T08:00:00Z"
OCPP = OcppSettings()


def mv(*sampled: dict, timestamp: str = T0) -> dict:
    return {"timestamp": timestamp, "sampledValue": list(sampled)}


def code_of(meter_values: list[dict]) -> str:
    with pytest.raises(OcppError) as err:
        check_sizes(meter_values, OCPP)
    return err.value.code


def test_the_size_estimate_is_never_below_what_is_stored():
    """The budget is charged before the row is built: the estimate must not undercount."""
    full = {"value": "1234.5", "context": "Sample.Periodic", "format": "Raw", "unit": "Wh",
            "measurand": "Energy.Active.Import.Register", "phase": "L1-N", "location": "Outlet"}
    for values in ([{"value": "1"}], [full] * 8, [{"value": "9" * 100}] * 3):
        estimate = check_sizes([mv(*values)], OCPP)
        assert estimate >= len(meter_row("CP1", 1, 7, mv(*values))[5])


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
