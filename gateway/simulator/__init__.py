"""Charger simulator modelled on the manuals in shared/seeds (see docs/chargers.md).

    sim = Simulator(profile="zappi", charger_id="CP1", url="ws://127.0.0.1:8887/ocpp")
    await sim.start()
"""

from .profile import PROFILE_NAMES, ChargerProfile, load_profile
from .simulator import Simulator

__all__ = ["PROFILE_NAMES", "ChargerProfile", "Simulator", "load_profile"]
