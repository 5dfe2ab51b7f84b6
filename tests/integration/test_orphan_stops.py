"""StopTransactions for unknown transactions are held to a per-charger budget (issue 12: each added
an orphan row and two always-kept log lines, without limit); a stop of a known transaction is
always stored, budget or not. Over the real websocket server with the test charger."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from gateway.main import Gateway, main
from tests.conftest import GatewayRunner
from tests.support.charger import CallErrorReply, TestCharger

T0 = "2026-11-20T08:00:00Z"
GUESTS_ACCEPTED = {"guest_response": "Accepted"}


def stop(tx_id: int) -> dict:
    return {"transactionId": tx_id, "meterStop": 1000, "timestamp": T0, "idTag": "T"}


async def rows(gw: Gateway, sql: str, *args: object) -> list[tuple]:
    await gw.history.flush_log()
    return await gw.history.run(lambda: gw.history.db.conn.execute(sql, args).fetchall())


async def test_orphan_stops_past_the_budget_are_answered_not_stored_and_real_stops_always_are(
        runner: GatewayRunner):
    gw = await runner.start(registration=GUESTS_ACCEPTED, ocpp={"orphan_stops_per_hour": 3})
    async with TestCharger(runner.url, "GUEST1") as cp, TestCharger(runner.url, "GUEST2") as other:
        await cp.boot()
        real = (await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                   "timestamp": T0}))["transactionId"]
        for n in range(20):  # every one answered as the spec allows (idTagInfo of the idTag)
            answer = await cp.call("StopTransaction", stop(90_000 + n))
            assert "idTagInfo" in answer or answer == {}
        await cp.call("StopTransaction", stop(real))  # past the orphan budget: still stored
        await other.boot()
        await other.call("StopTransaction", stop(80_000))  # its own budget
        assert cp.ws.close_code is None
    orphans = await rows(gw, "SELECT identifier FROM transactions WHERE status = 'orphan' ORDER BY identifier")
    assert [r[0] for r in orphans] == ["GUEST1"] * 3 + ["GUEST2"]
    assert await rows(gw, "SELECT status, stop_meter_wh FROM transactions WHERE transaction_id = ?",
                      real) == [("stopped", 1000.0)]
    budget_lines = await gw.history.general_log("GUEST1", message_type="OrphanStopBudget")
    assert len(budget_lines) == 1 and "budget of 3 orphan stops an hour" in budget_lines[0]["message"]
    assert gw.connections.parts.orphan_stops.refused_by == {"GUEST1": 17}


async def test_budget_refusals_show_per_charger_in_the_status_the_cli_and_the_device_page(
        runner: GatewayRunner, capsys):
    gw = await runner.start(registration=GUESTS_ACCEPTED, ocpp={
        "orphan_stops_per_hour": 1, "meter_budget_bytes_per_hour": 300, "log_budget_bytes_per_minute": 600})
    await gw.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        for n in range(3):
            await cp.call("StopTransaction", stop(70_000 + n))
        sampled = [{"value": str(n)} for n in range(20)]
        with pytest.raises(CallErrorReply):
            for _ in range(5):
                await cp.call("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": T0,
                                                                               "sampledValue": sampled}]})
        for _ in range(10):
            await cp.call("Heartbeat", {})
    async with aiohttp.ClientSession(headers=runner.admin_headers) as http, \
            http.get(runner.admin_url + "/api/status") as resp:
        refused = (await resp.json())["budget_refusals"]
    assert refused["CP1"]["orphan_stops"] == 2 and refused["CP1"]["meter_values"] == 1
    assert refused["CP1"]["log_lines"] > 0
    code = await asyncio.to_thread(main, [*runner.cli_args, "status"])
    out = capsys.readouterr().out
    assert code == 0 and "over budget since start (1 charger(s)):" in out
    assert f"CP1: {refused['CP1']['log_lines']} log lines, 1 meter values, 2 orphan stops not kept" in out
    http = aiohttp.ClientSession(runner.admin_url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http:
        async with http.post("/ui/login", data={"token": runner.admin_headers["Authorization"].split()[1],
                                                "next": "/ui/"}) as r:
            assert r.status == 200
        async with http.get("/ui/devices/CP1") as r:
            html = await r.text()
    assert "Over budget since start" in html and "2 orphan stops not kept" in html
