"""Smappee (manual 000): vendor error codes (section 9) and its custom keys (section 7)."""

from __future__ import annotations

from gateway.operator import actions as ops
from tests.compat.harness import WHITELISTED, start_bench


async def test_vendor_error_codes_are_stored_on_the_connector_and_logged(runner):
    bench = await start_bench(runner, "smappee")
    sim = await bench.connect()
    connector = bench.station.connectors[1]
    codes = sim.profile.quirks.vendor_error_codes
    assert "SMP_AC_0006" in codes and "SMP_DC_0103" in codes
    for code in codes:
        await sim.report_fault(1, "OtherError", code)
        assert (connector.status, connector.error_code, connector.vendor_error_code) == ("Faulted", "OtherError", code)
    lines = [r["message"] for r in await bench.log_lines("StatusNotificationRequest")]
    assert all(any(f"Vendor Error: {code}" in line for line in lines) for code in codes)
    # The fault clears: the connector's vendor code goes with it.
    connector_state = sim.connectors[1]
    connector_state.error_code, connector_state.vendor_error_code = "NoError", None
    await sim.set_status(1, "Available")
    assert (connector.status, connector.error_code, connector.vendor_error_code) == ("Available", "NoError", "")


async def test_remote_stop_behaviour_decides_the_status_after_a_remote_stop(runner):
    """Section 7: RemoteStopBehaviour (custom), default Finishing."""
    bench = await start_bench(runner, "smappee")
    sim = await bench.connect()
    gw, cid = bench.gw, bench.charger_id
    assert bench.station.config_value("RemoteStopBehaviour") == "Finishing"
    changed = await ops.change_configuration(gw.actions, cid, "RemoteStopBehaviour", "Available")
    assert changed["status"] == "Accepted" and bench.station.config_value("RemoteStopBehaviour") == "Available"
    await sim.plug_in(1)
    await ops.remote_start_transaction(gw.actions, cid, WHITELISTED, connector_id=1)
    connector = bench.station.connectors[1]
    await bench.watch.until(lambda: connector.transaction_id is not None)
    await ops.remote_stop_transaction(gw.actions, cid, connector_id=1)
    await bench.watch.until(lambda: connector.transaction_id is None and connector.status == "Available")
    [change] = await gw.history.config_changes(cid)
    assert (change["key"], change["old_value"], change["new_value"], change["result"]) == (
        "RemoteStopBehaviour", "Finishing", "Available", "Accepted")
