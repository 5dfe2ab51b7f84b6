"""The charger's Basic-auth password set through ChangeConfiguration(AuthorizationKey).

OCPP 1.6 security profile 1; zappi (manual 003, "AuthorizationKey") and Smappee (000 section 7)
use that key. The compat suite covers the accepted change with the zappi simulator.
"""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from gateway.chargers.configuration_calls import change_configuration
from tests.compat.harness import Watch
from tests.support.charger import TestCharger


async def test_a_refused_key_change_keeps_the_old_key_and_shows_no_password(gateway, runner):
    await gateway.device_book.add_device("CP1", auth_key="old-key")
    async with TestCharger(runner.url, "CP1", password="old-key") as cp:
        cp.answers["ChangeConfiguration"] = lambda p: {"status": "Rejected"}
        await cp.boot()
        out = await change_configuration(gateway.configuration, "CP1", "AuthorizationKey", "new-key")
        assert out["status"] == "Rejected"
    with pytest.raises(InvalidStatus):
        async with TestCharger(runner.url, "CP1", password="new-key"):
            pass
    async with TestCharger(runner.url, "CP1", password="old-key") as cp:
        assert (await cp.boot())["status"] == "Accepted"
    [change] = await gateway.history.config_changes("CP1")
    assert (change["new_value"], change["result"]) == ("(hidden)", "Rejected")
    lines = [r["message"] for r in await gateway.history.general_log("CP1")]
    assert any("Value: (hidden)" in line for line in lines)
    assert not [line for line in lines if "new-key" in line or "old-key" in line]


async def test_a_key_read_back_from_the_charger_is_kept_hidden(gateway, runner):
    await gateway.device_book.add_device("CP1")
    watch = Watch(gateway)
    async with TestCharger(runner.url, "CP1") as cp:
        cp.answers["GetConfiguration"] = lambda p: {"configurationKey": [
            {"key": "AuthorizationKey", "value": "plain-secret", "readonly": False},
            {"key": "HeartbeatInterval", "value": "300", "readonly": False}]}
        await cp.boot()
        station = gateway.registry.get("CP1")
        await watch.until(lambda: "HeartbeatInterval" in station.config)
        assert station.config_value("AuthorizationKey") == "(hidden)"
