"""What the allocator is told about a session whose share has not landed (the start limit)."""

from __future__ import annotations

from gateway.chargers.capabilities import ChargerCapabilities
from gateway.charging.inputs import ConnectorControl, session_input
from gateway.model.station import Connector, Station


def a_session(tx: int = 7) -> Station:
    station = Station("CP1", slot=1, online=True)
    station.connectors[1] = Connector(1, transaction_id=tx)
    return station


def test_without_its_share_a_session_applies_the_start_limit_its_charger_holds():
    control = ConnectorControl(transaction_id=7)
    # Its first share is a raise from the 0 A start limit (it goes out after the cuts)...
    assert not control.lowers_to(10.0, start_a=0.0)
    assert control.lowers_to(4.0, start_a=6.0)
    # ...and, without a start limit, a cut of the charger's maximum it offers.
    assert control.lowers_to(10.0)
    control.written_a, control.written_tx = 12.0, 7
    assert control.lowers_to(10.0, start_a=0.0) and not control.lowers_to(14.0, start_a=0.0)


def test_a_pinned_session_without_its_share_counts_at_the_start_limit_not_the_maximum():
    caps = ChargerCapabilities.from_configuration({}, "", "", "")
    station = a_session()

    def pinned_at(start_a: float | None, control: ConnectorControl) -> float | None:
        return session_input("CP1/1", station, 1, caps, control, {}, default_phases=3, settle_s=10.0,
                             pinned=True, start_a=start_a).fixed_a

    assert pinned_at(0.0, ConnectorControl(transaction_id=7)) == 0.0
    assert pinned_at(None, ConnectorControl(transaction_id=7)) == caps.max_current_a
    held = ConnectorControl(transaction_id=7, written_a=16.0, written_tx=7)
    assert pinned_at(0.0, held) == 16.0  # its accepted share wins over the start limit
