"""A gateway restart while a charger charges loses nothing the operator needs (design: durability).

The transaction row survives (committed before the answer); the connector gets it back at start,
so a remote stop by connector and the site share still reach the running session.
"""

from __future__ import annotations

import pytest

from gateway.operator import actions as ops
from tests.compat.harness import PROFILES, WHITELISTED, start_bench


@pytest.mark.parametrize("profile", PROFILES)
async def test_session_running_across_a_gateway_restart_is_still_managed(runner, profile):
    bench = await start_bench(runner, profile)
    sim = await bench.connect()
    tx = await sim.start_session(1, WHITELISTED)
    await sim.wait_for(lambda: tx.transaction_id is not None)
    await sim.go_offline()
    bench.gw = gw = await runner.restart(authorize={"policy": "none_except_whitelist"})
    assert gw.registry.get(bench.charger_id).connectors[1].transaction_id == tx.transaction_id
    await sim.go_online()
    await gw.charging.set_site_limit(None, 16.0)
    await gw.charging.reallocate()
    [profile_sent] = bench.shares()
    if profile == "acwallbox":  # its one slot: the connector's TxDefaultProfile (no transaction id)
        assert profile_sent["csChargingProfiles"]["chargingProfilePurpose"] == "TxDefaultProfile"
        assert sim.limit_a(1) == 16.0
    else:
        assert profile_sent["csChargingProfiles"].get("transactionId") == tx.transaction_id
    stop = await ops.remote_stop_transaction(gw.actions, bench.charger_id, connector_id=1)
    assert (stop["status"], stop["transaction_id"]) == ("Accepted", tx.transaction_id)
    await sim.wait_for(lambda: not sim.pending and sim.connectors[1].transaction is None)
    [row] = await gw.history.transactions(bench.charger_id)
    assert (row["status"], row["stop_reason"]) == ("stopped", "Remote")
