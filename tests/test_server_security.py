"""The websocket edge refuses what is not a charger: bad ids, wrong or guessed passwords, a
connection that would replace an authenticated one, a client certificate of another charger.

OCPP 1.6 security whitepaper: profile 1 (HTTP Basic, username = charge point identity), profile 2
(TLS with a server certificate), profile 3 (TLS with client certificates).
"""

from __future__ import annotations

import logging

import pytest
import websockets

from tests.ocpp_client import TestCharger


@pytest.mark.parametrize("segment", [
    "..%2F..%2Fetc%2Fpasswd", "CP%2F1", "CP%001", "CP%0A1", "CP%7F", "CP%201", "x" * 49, "%C3%A9t%C3%A9",
    "..",
])
async def test_a_bad_charger_id_is_refused_with_400_before_the_upgrade(gateway, segment, caplog):
    caplog.set_level(logging.WARNING, "gateway.ocpp.server")
    with pytest.raises(websockets.InvalidStatus) as err:
        await websockets.connect(f"ws://127.0.0.1:{gateway.ports['ocpp']}/ocpp/{segment}",
                                 subprotocols=["ocpp1.6"])
    assert err.value.response.status_code == 400
    assert "Invalid charger identifier" in err.value.response.body.decode()
    assert any("refused connection" in r.getMessage() for r in caplog.records)
    assert len(gateway.registry.stations) == 0


async def test_a_48_character_printable_id_is_welcome(gateway, runner):
    charger_id = "Site-A_CP.1(x)~" + "y" * 33
    assert len(charger_id) == 48
    async with TestCharger(runner.url, charger_id) as cp:
        await cp.boot()
    assert gateway.registry.get(charger_id) is not None
