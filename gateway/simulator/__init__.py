"""Charger simulator modelled on the manuals in shared/seeds (see docs/chargers.md).

    sim = Simulator(profile="zappi", charger_id="CP1", url="ws://127.0.0.1:8887/ocpp")
    await sim.start()
"""

from typing import Any

from .profile import PROFILE_NAMES, ChargerProfile, load_profile

__all__ = ["PROFILE_NAMES", "ChargerProfile", "Simulator", "load_profile"]


def __getattr__(name: str) -> Any:
    """`Simulator` on first use: `ocpp-gateway run` imports this package for its `simulate`
    command only, and the simulator's modules cost about 0.1 s of a start (issue 17)."""
    if name == "Simulator":
        from .simulator import Simulator
        return Simulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
