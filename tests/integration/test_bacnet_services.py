"""BACnet services answered as the standard says (issue 14 items 4 and 5), checked with an
independent client (bacpypes3's client in its own process, tests/support/bacnet_client.py).

ANSI/ASHRAE 135: WritePropertyMultiple answers the first failed write (15.10.1.3.1); a value of
the wrong datatype is the error INVALID_DATA_TYPE, an unknown property UNKNOWN_PROPERTY (15.9);
a Network Port object has Network_Number, MAC_Address and APDU_Length (12.56); the device claims
only the services it executes (Protocol_Services_Supported, 12.11.20).
"""

from __future__ import annotations

from tests.integration.test_bacnet import DEVICE_ID, bms  # noqa: F401  (fixture)

POWER, CURRENT = "analog-value,1", "analog-value,2"


async def test_write_property_multiple_answers_the_first_failing_write(bms):  # noqa: F811
    _runner, client = bms
    answer = await client.value("wpm", writes=[[CURRENT, "presentValue", 50.0, "real", 8],
                                               [POWER, "presentValue", 20000.0, "real", 8]])
    assert answer["error"] == "property: value-out-of-range"
    assert answer["first_failed"] == [["analog-value", 1], "present-value"]
    assert await client.read(CURRENT) == 50.0  # the writes before it are applied (15.10.1.3.1)


async def test_write_property_multiple_with_a_wrong_datatype_is_invalid_data_type(bms):  # noqa: F811
    _runner, client = bms
    answer = await client.value("wpm", writes=[[POWER, "presentValue", "twenty", "string", 8]])
    assert answer["error"] == "property: invalid-data-type"
    assert answer["first_failed"] == [["analog-value", 1], "present-value"]


async def test_write_property_errors_name_the_datatype_and_the_unknown_property(bms):  # noqa: F811
    _runner, client = bms
    wrong_type = await client.ask("raw_write", addr=client.addr, obj=POWER, prop="presentValue",
                                  value="twenty", type="string")
    assert not wrong_type["ok"] and "invalid-data-type" in wrong_type["error"], wrong_type
    unknown = await client.ask("raw_write", addr=client.addr, obj=POWER, prop="numberOfStates",
                               value=3, type="unsigned")
    assert not unknown["ok"] and "unknown-property" in unknown["error"], unknown


async def test_the_network_port_object_reads_completely(bms):  # noqa: F811
    """bacepics reads every object with ReadPropertyMultiple ALL; it looped on this object."""
    _runner, client = bms
    values = await client.value("rpm", obj="network-port,1", props=["all"])
    errors = {prop: v for prop, v in values.items() if isinstance(v, dict) and "error" in v}
    assert errors == {}
    assert {"network-number", "mac-address", "apdu-length", "network-number-quality"} <= set(values)
    assert values["apdu-length"] == 1476


async def test_the_device_claims_only_services_that_work(bms):  # noqa: F811
    _runner, client = bms
    services = await client.read(f"device,{DEVICE_ID}", "protocolServicesSupported")
    assert services[35] == 0  # readRange (clause 21, BACnetServicesSupported)
    assert services[12] == services[14] == services[15] == services[16] == 1  # RP, RPM, WP, WPM
    answer = await client.ask("raw", addr=client.addr, obj=f"device,{DEVICE_ID}", prop="objectList")
    assert not answer["ok"] and "unrecognized-service" in answer["error"], answer


async def test_cov_reports_a_value_that_follows_not_available(bms):  # noqa: F811
    """A point without a value reads NaN ("not available"); bacpypes3's COV increment test
    compares with NaN and would never report again. The first value must reach subscribers."""
    import asyncio
    _runner, client = bms
    in_force = "analog-input,3"  # Site-PowerLimit-InForce: no limit in force yet
    assert await client.read(in_force, "reliability") in ("unreliable-other", "no-fault-detected")
    assert await client.value("subscribe", obj=in_force, lifetime=60) == "subscribed"
    assert (await client.write(POWER, 22.0, priority=8))["ok"]
    while True:
        cov = await asyncio.wait_for(client.covs.get(), 5)
        if cov["property"] == "present-value" and cov["value"] == 22.0:
            break
