"""How the smart-charging parts reach chargers (`gateway.ocpp.connections.Connections` in a
running gateway): the one narrow collaborator the controller, its write path and the operator's
profiles share, declared below all three so none of them imports another for it."""

from __future__ import annotations

from typing import Any, Protocol


class ChargerLink(Protocol):
    """Calls to chargers, and whether one is connected now."""

    async def call(self, charger_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one call; OperationError when the charger cannot take it or refuses."""

    def is_connected(self, charger_id: str) -> bool:
        """A session is open now."""
