"""A bench for the compatibility suite: the real gateway on loopback, one simulated charger.

Synchronisation is by events only: the simulator's `wait_for` (re-checked after every message in
or out of the charger) and `Watch`, which wakes the one wait helper (`tests/support/wait.py`) on
every change the gateway's registry publishes.
History rows need no waiting: Start/StopTransaction are committed before the charger is answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.main import Gateway
from gateway.model.station import ChangeEvent, ConfigKey, Station
from gateway.simulator import Simulator
from tests.conftest import GatewayRunner
from tests.support.charger import SITE_PASSWORD
from tests.support.wait import wait_until

# The four chargers of shared/seeds: Smappee (000), AC wallbox (001), zappi (003), EVlink (004).
PROFILES = ("smappee", "acwallbox", "zappi", "evlink")
WHITELISTED = "RFID-OK-0001"
UNKNOWN = "RFID-BAD-9999"


class Watch:
    """Wait for a condition on the gateway's live model or smart-charging state, woken by their
    change events (no polling)."""

    def __init__(self, gw: Gateway) -> None:
        self._changed = asyncio.Event()
        gw.registry.subscribe(self._on_change)
        told = gw.charging.changed  # smart charging tells the point table after each change; us too
        gw.charging.changed = lambda charger_id: (told(charger_id), self._on_change(charger_id))

    def _on_change(self, event: ChangeEvent | str | None) -> None:
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        await wait_until(predicate, timeout, wake=self._changed)


class CompatRunner(GatewayRunner):
    """The shared gateway runner that also stops the simulators it was given, before the gateway."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.simulators: list[Simulator] = []

    def track(self, sim: Simulator) -> Simulator:
        self.simulators.append(sim)
        return sim

    async def restart(self, **sections: dict[str, Any]) -> Gateway:
        """Stop the gateway and start it again on the same database and OCPP port."""
        assert self.gateway is not None
        port = self.gateway.ports["ocpp"]
        await super().stop()
        return await self.start(**{**sections, "ocpp": {"port": port, **sections.get("ocpp", {})}})

    async def stop(self) -> None:
        for sim in self.simulators:
            await sim.stop()
        self.simulators.clear()
        await super().stop()


class Bench:
    """One gateway and one simulated charger of a profile, added to the device database."""

    def __init__(self, runner: GatewayRunner, gw: Gateway, profile: str, charger_id: str) -> None:
        self.runner, self.gw, self.profile, self.charger_id = runner, gw, profile, charger_id
        self.watch = Watch(gw)
        self.sim: Simulator | None = None

    @property
    def station(self) -> Station:
        station = self.gw.registry.get(self.charger_id)
        assert station is not None
        return station

    def simulator(self, profile: Any = None, password: str | None = SITE_PASSWORD) -> Simulator:
        self.sim = Simulator(profile or self.profile, self.charger_id, self.runner.url, password=password,
                             heartbeat=False, reconnect_delay_s=0.0)
        if isinstance(self.runner, CompatRunner):
            self.runner.track(self.sim)
        return self.sim

    async def connect(self, profile: Any = None, password: str | None = SITE_PASSWORD) -> Simulator:
        """Start the charger; return once it is accepted and its configuration is read."""
        sim = self.simulator(profile, password)
        await sim.start()
        await self.configuration_read()
        return sim

    async def configuration_read(self, before: dict[str, ConfigKey] | None = None, reads: int = 1) -> None:
        """Wait until the gateway holds every key the charger has, then for the read's log line.

        The read keeps all keys at once when it ends (new `ConfigKey` objects: pass `before`, a
        copy of `station.config`, to wait for a read after it), then saves them and writes one
        `ConfigurationRead` line; each general-log query below is one round trip to the writer
        thread, which by then has only those two saves ahead of it.
        """
        assert self.sim is not None
        wanted = set(self.sim.config.values)

        def kept() -> bool:
            config = self.station.config
            return wanted <= set(config) and all(config[k] is not (before or {}).get(k) for k in wanted)
        await self.watch.until(kept)
        for _ in range(50):
            if len(await self.log_lines("ConfigurationRead")) >= reads:
                return
        raise AssertionError(f"{self.charger_id}: no ConfigurationRead line in the general log")

    async def log_lines(self, message_type: str | None = None) -> list[dict[str, Any]]:
        return await self.gw.history.general_log(self.charger_id, message_type=message_type)

    async def log_types(self) -> list[str]:
        return [row["message_type"] for row in await self.log_lines()]

    async def transactions(self) -> list[dict[str, Any]]:
        return await self.gw.history.transactions(self.charger_id)

    async def meter_samples(self) -> list[dict[str, Any]]:
        """Stored meter samples of this charger (queued ones are flushed first), oldest first."""
        return await self.gw.history.meter_samples(self.charger_id)

    def sent(self, action: str) -> list[tuple[dict[str, Any], Any]]:
        """What the charger sent for `action` and the answer it got, in order."""
        assert self.sim is not None
        return [(payload, answer) for name, payload, answer in self.sim.sent_calls if name == action]

    def received(self, action: str) -> list[dict[str, Any]]:
        """The central-system calls of `action` the charger received, in order."""
        assert self.sim is not None
        return [payload for name, payload in self.sim.received_calls if name == action]

    def shares(self) -> list[dict[str, Any]]:
        """The site shares written to the charger's connectors (SetChargingProfile), in order; not
        the start limit it holds on connector 0 while a site limit is in force."""
        return [p for p in self.received("SetChargingProfile") if p["connectorId"] != 0]


async def whitelist(gw: Gateway, *id_tags: str) -> None:
    for id_tag in id_tags:
        await gw.history.put_tag(id_tag, "whitelist")
    await gw.device_book.reload_tags()


async def start_bench(runner: GatewayRunner, profile: str, charger_id: str | None = None,
                      **sections: dict[str, Any]) -> Bench:
    """A gateway with the section 8 authorize policy (whitelist only) and the charger added."""
    sections.setdefault("authorize", {"policy": "none_except_whitelist"})
    gw = await runner.start(**sections)
    await whitelist(gw, WHITELISTED)
    charger_id = charger_id or f"{profile.upper()}-1"
    await gw.device_book.add_device(charger_id)
    return Bench(runner, gw, profile, charger_id)


async def add_bench(first: Bench, profile: str, charger_id: str) -> Bench:
    """Another charger of `profile`, added to the device database of `first`'s gateway."""
    await first.gw.device_book.add_device(charger_id)
    return Bench(first.runner, first.gw, profile, charger_id)


def record_offered(sims: list[Simulator]) -> list[float]:
    """The sum of what the simulated chargers offer, after every change of any one of them."""
    sums: list[float] = []
    for sim in sims:
        advance = sim.meter.advance

        def recorded(c, now, limit_a, charging, advance=advance) -> None:
            advance(c, now, limit_a, charging)
            sums.append(sum(s.connectors[1].offered_a for s in sims))
        sim.meter.advance = recorded
    return sums
