"""Schema validators are compiled on first use, and the relaxed one only when a quirk needs it
(compiling both for every action was ~7 % of 200 first connections' loop time)."""

from __future__ import annotations

import pytest

from gateway.errors import OcppError
from gateway.ocpp import protocol


@pytest.fixture(autouse=True)
def fresh_caches():
    protocol._strict_validator.cache_clear()
    protocol._relaxed_validator.cache_clear()
    yield
    protocol._strict_validator.cache_clear()
    protocol._relaxed_validator.cache_clear()


def test_a_clean_payload_and_a_strict_refusal_build_no_relaxed_validator():
    assert protocol.validate("Heartbeat", {}) is None
    assert protocol.validate("StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                                                    "status": "Available"}) is None
    with pytest.raises(OcppError):
        protocol.validate("BootNotification", {"chargePointVendor": "x" * 30, "chargePointModel": "m"})
    assert protocol._strict_validator.cache_info().currsize == 3
    assert protocol._relaxed_validator.cache_info().currsize == 0


def test_a_relaxed_action_builds_its_relaxed_validator_when_the_strict_one_fails():
    payload = {"chargePointVendor": "x" * 30, "chargePointModel": "m"}
    assert protocol.validate("BootNotification", {"chargePointVendor": "v", "chargePointModel": "m"},
                             relaxed=True) is None
    assert protocol._relaxed_validator.cache_info().currsize == 0
    assert protocol.validate("BootNotification", payload, relaxed=True)  # a warning
    assert protocol._relaxed_validator.cache_info().currsize == 1
