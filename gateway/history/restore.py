"""At start, the transactions the store still holds as active go back on their connectors.

After a restart, remote stop by connector and smart charging still see them; a charger that
forgot one is handled by the session (`TransactionLost`, docs/architecture.md).
"""

from __future__ import annotations

from gateway.history.store import HistoryStore
from gateway.model.station import Registry
from gateway.model.timestamps import parse_timestamp


async def restore_active_transactions(history: HistoryStore, registry: Registry) -> None:
    """Put the transactions still active in the store back on their connectors."""
    for row in await history.active_transactions():
        station = registry.ensure(row["identifier"])
        registry.update_connector(
            station, int(row["connector_id"]), transaction_id=int(row["transaction_id"]),
            id_tag=row["id_tag"], session_start=parse_timestamp(row.get("start_time")),
            meter_start_wh=row.get("start_meter_wh"))
