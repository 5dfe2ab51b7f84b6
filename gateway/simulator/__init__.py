"""Charger simulator modelled on the manuals in shared/seeds (see docs/chargers.md)."""
