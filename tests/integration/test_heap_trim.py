"""A charger's large frame is noted by the gateway's heap trim, which runs once the burst is over."""

from __future__ import annotations

import aiohttp

from gateway.memtrim import LARGE_FRAME
from tests.support.charger import TestCharger


async def test_a_large_frame_from_a_charger_leads_to_one_trim_after_its_burst(runner):
    gw = await runner.start(registration={"guest_response": "Accepted"})
    trims: list[int] = []
    gw.heap_trim.trim = lambda: trims.append(1) or 1  # the real glibc call is tested on its own
    async with TestCharger(runner.url, "BIG-1") as cp:
        await cp.call("Heartbeat", {})
        assert not gw.heap_trim.burst_pending  # small frames are not noted
        reply = await cp.call("DataTransfer", {"vendorId": "x", "data": "D" * LARGE_FRAME})
        assert reply["status"]
        assert gw.heap_trim.burst_pending
    now = gw.clock()
    gw.heap_trim.tick(now + gw.heap_trim.quiet_s + 1)  # what housekeeping does once the burst is over
    gw.heap_trim.tick(now + 2 * gw.heap_trim.quiet_s + 2)
    assert trims == [1] and not gw.heap_trim.burst_pending
    async with aiohttp.ClientSession() as http, \
            http.get(runner.admin_url + "/api/status", headers=runner.admin_headers) as resp:
        memory = (await resp.json())["memory"]
    assert memory["heap_trims"] == 1 and memory["last_heap_trim_ms"] is not None
    assert memory["rss_kib"] is None or memory["rss_kib"] > 0  # None off Linux
