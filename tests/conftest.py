"""Shared fixtures: a real gateway on loopback with ephemeral ports and a temporary database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.main import Gateway
from gateway.operator.token import read_admin_token
from gateway.settings import Settings
from tests.support.charger import SITE_PASSWORD
from tests.support.wait import wait_until

__all__ = ["GatewayRunner", "make_settings", "wait_until"]


def make_settings(tmp_path: Path, **sections: dict) -> Settings:
    """Loopback-only settings: port 0 everywhere, BMS servers off unless a test turns them on."""
    settings = Settings()
    settings.ocpp.host = "127.0.0.1"
    settings.ocpp.port = 0
    settings.admin.port = 0
    settings.bacnet.enabled = False
    settings.modbus.enabled = False
    settings.database.path = str(tmp_path / "gateway.sqlite")
    settings.database.log_flush_interval_s = 0.05
    settings.ocpp.gc_freeze_interval_s = 0  # many gateways in one test process: keep Python's default
    # Security profile 1 stays on, as by default; the test chargers send this site password.
    settings.ocpp.default_password = SITE_PASSWORD
    for section, values in sections.items():
        for key, value in values.items():
            setattr(getattr(settings, section), key, value)
    return settings.validate()


class GatewayRunner:
    """Starts and restarts a full gateway (as `ocpp-gateway run` builds it) on one database."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.gateway: Gateway | None = None

    async def start(self, clock: Callable[[], float] | None = None, **sections: dict) -> Gateway:
        settings = make_settings(self.tmp_path, **sections)
        gateway = Gateway(settings, clock) if clock is not None else Gateway(settings)
        await gateway.start()
        self.gateway = gateway
        return gateway

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None

    @property
    def url(self) -> str:
        assert self.gateway is not None
        return f"ws://127.0.0.1:{self.gateway.ports['ocpp']}/ocpp"

    @property
    def admin_url(self) -> str:
        assert self.gateway is not None
        return f"http://127.0.0.1:{self.gateway.ports['admin']}"

    @property
    def admin_headers(self) -> dict[str, str]:
        """What a script on the gateway host sends: the token the gateway made beside its database."""
        assert self.gateway is not None
        return {"Authorization": f"Bearer {read_admin_token(self.gateway.settings)}"}

    @property
    def cli_args(self) -> list[str]:
        """CLI arguments that reach this gateway as `ocpp-gateway` on its host does (same database
        path, hence the same admin-token file)."""
        assert self.gateway is not None
        return ["--admin-url", self.admin_url, "--set", f"database.path={self.gateway.settings.database.path}"]


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[GatewayRunner]:
    r = GatewayRunner(tmp_path)
    yield r
    await r.stop()


@pytest.fixture
async def gateway(runner: GatewayRunner) -> Gateway:
    return await runner.start()
