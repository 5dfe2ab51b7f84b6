"""Operator actions each charger's manual supports reach it; those it rules out are refused unsent.

Smappee 000 section 6 (no reservations, local list, composite schedule, firmware update),
AC wallbox 001 section 3.1 (everything; its SupportedFeatureProfiles lacks Reservation),
zappi 003 "The following message types are supported", EVlink 004 section 3.1 (no local list;
TriggerMessage from R6 although SupportedFeatureProfiles lacks RemoteTrigger, and "Firmware
Management" spelt with a space).
"""

from __future__ import annotations

import pytest

from gateway.errors import ChargerUnavailable
from gateway.operator import actions as ops
from tests.compat.harness import start_bench

EXPIRY = "2030-01-01T00:00:00Z"
CALLS = {
    "TriggerMessage": lambda gw, cid: ops.trigger_message(gw.actions, cid, "StatusNotification", 1),
    "GetDiagnostics": lambda gw, cid: ops.get_diagnostics(gw.actions, cid, "ftp://127.0.0.1/diag"),
    "ReserveNow": lambda gw, cid: ops.reserve_now(gw.actions, cid, 1, "TAG", EXPIRY, 7),
    "SendLocalList": lambda gw, cid: ops.send_local_list(gw.actions, cid),
    "GetCompositeSchedule": lambda gw, cid: ops.get_composite_schedule(gw.actions, cid, 1, 60),
    "ClearCache": lambda gw, cid: ops.clear_cache(gw.actions, cid),
}
# What the manuals say: True = supported, so sent and answered; False = refused before sending.
SUPPORTED = {
    "smappee": {"TriggerMessage": True, "GetDiagnostics": True, "ReserveNow": False,
                "SendLocalList": False, "GetCompositeSchedule": False, "ClearCache": True},
    "zappi": {"TriggerMessage": True, "GetDiagnostics": False, "ReserveNow": False,
              "SendLocalList": False, "GetCompositeSchedule": True, "ClearCache": False},
    "evlink": {"TriggerMessage": True, "GetDiagnostics": True, "ReserveNow": True,
               "SendLocalList": False, "GetCompositeSchedule": True, "ClearCache": True},
    # ReserveNow is supported (3.1) but refused while the ac-wallbox quirk, which adds Reservation,
    # is not assigned (test_acwallbox.py assigns it).
    "acwallbox": {"TriggerMessage": True, "GetDiagnostics": True, "ReserveNow": False,
                  "SendLocalList": True, "GetCompositeSchedule": True, "ClearCache": True},
}


@pytest.mark.parametrize("profile", sorted(SUPPORTED))
async def test_operator_actions_follow_what_the_charger_manual_supports(runner, profile):
    bench = await start_bench(runner, profile)
    await bench.connect()
    for action, supported in SUPPORTED[profile].items():
        if supported:
            await CALLS[action](bench.gw, bench.charger_id)
            assert bench.received(action), f"{action} was not sent to {profile}"
        else:
            with pytest.raises(ChargerUnavailable, match=f"does not support {action}"):
                await CALLS[action](bench.gw, bench.charger_id)
            assert not bench.received(action), f"{action} was sent to {profile}"
    # Nothing the gateway sent was answered with a CALLERROR NotImplemented.
    assert not [r for r in await bench.log_lines() if r["message_type"].endswith("Error")]
