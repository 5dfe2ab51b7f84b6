"""A restarted gateway serves chargers first and the BMS side as it gets ready (issue 17).

The OCPP port opens before the point table, Modbus and BACnet are built; the BACnet device
answers only once every object known before the restart is there, so a BMS never reads a
short object-list or `unknown-object` for a point that exists (docs/architecture.md, "Start
order"; docs/bacnet.md, "After a restart").
"""

from __future__ import annotations

import logging

from gateway.model.station import ConfigKey
from tests.conftest import GatewayRunner
from tests.integration.test_bacnet import DEVICE_ID, client_process, free_udp_port


async def test_ocpp_opens_before_the_bms_side_and_bacnet_starts_with_every_known_object(runner: GatewayRunner,
                                                                                        caplog):
    bacnet = {"enabled": True, "address": "127.0.0.1/8", "port": free_udp_port()}
    gw = await runner.start(bacnet=bacnet)
    for i in range(1, 13):
        await gw.device_book.add_device(f"CP-{i}")
        gw.registry.set_config(gw.registry.get(f"CP-{i}"), ConfigKey("VendorY", "1", readonly=False))
    known = {p.uid for p in gw.points.table.points()}
    await runner.stop()  # waits for what is being persisted

    caplog.set_level(logging.INFO)
    gw = await runner.start(bacnet=bacnet)
    opened = list(gw.ports)  # in the order they opened (Modbus is off in the tests' settings)
    assert opened[:2] == ["ocpp", "admin"] and opened[-1] == "bacnet"
    [served] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("BACnet/IP device")]
    assert f"with {len(known)} objects" in served
    assert set(gw.points.bacnet.objects) == known
    async with client_process(runner, bacnet["port"]) as client:
        listed = {(t, int(n)) for t, n in await client.read(f"device,{DEVICE_ID}", "objectList")}
        assert known <= listed
