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


def test_a_share_in_the_connectors_default_slot_outlives_its_session():
    """One slot per connector (AC wallbox): the share is the connector's TxDefaultProfile, which
    the charger keeps after the transaction; the next session starts at what it holds, so the
    gateway keeps it too. A TxProfile's share ends with its transaction."""
    in_slot = ConnectorControl(transaction_id=7, written_a=12.0, written_tx=None, applied_at=5.0)
    in_slot.end_session()
    assert (in_slot.transaction_id, in_slot.written_a, in_slot.send_state) == (None, 12.0, None)
    in_slot.transaction_id = 8  # the next car applies 12 A until its own share lands
    assert in_slot.lowers_to(6.0) and not in_slot.lowers_to(14.0)
    own = ConnectorControl(transaction_id=7, written_a=12.0, written_tx=7, applied_at=5.0)
    own.end_session()
    assert (own.written_a, own.written_tx, own.applied_at) == (None, None, None)
