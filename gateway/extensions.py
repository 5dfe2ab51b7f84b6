"""Wires the optional parts (operations, points, smart charging) into a Gateway.

One place decides what a running gateway consists of, so `ocpp-gateway run` and the tests that
start a full gateway get the same program.
"""

from __future__ import annotations

from gateway.app import Gateway


def install_extensions(gateway: Gateway) -> None:
    """Add every installed part to the gateway (each guards its own settings)."""
    from gateway.charging.controller import ChargingController
    from gateway.operator import actions_api as operations_api
    from gateway.operator import exports_api, live, settings_api
    from gateway.operator.charging import register_routes
    from points.service import install as install_points

    # Live settings first: stored values replace the file's before anything reads them.
    live.install(gateway)
    settings_api.add_routes(gateway)
    exports_api.add_routes(gateway)
    # Operations first: its boot hook (the configuration read) is queued before smart charging's.
    operations_api.install(gateway)
    gateway.charging = ChargingController(gateway)
    gateway.charging.install()
    register_routes(gateway, gateway.charging)
    # The point table always (Modbus and exports read it); the BACnet device when bacnet.enabled.
    install_points(gateway)
    if gateway.settings.modbus.enabled:
        from points.modbus.server import install as install_modbus

        # Registers of the same point table on modbus.host:modbus.port (docs/modbus.md).
        install_modbus(gateway)
    from gateway.operator.web import install as install_web

    install_web(gateway)  # the commissioning web pages, under /ui/ on the admin port
