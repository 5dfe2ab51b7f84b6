"""What each charger holds, kept across a gateway restart (a mixin of the controller).

After every profile write the profiles a charger accepted (per slot) and the times of its writes
in the last hour are stored; a restarted gateway starts from them: an unchanged profile is not
written again, the hourly budget goes on, a session is counted at the share its charger applies
(also while it is offline), and, where the charger can say, that share is checked once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from gateway.charging.allocator import RotationState
from gateway.charging.guard import WriteGuard
from gateway.charging.inputs import ConnectorControl, written_share
from gateway.charging.sending import SITE_PROFILE_ID
from gateway.charging.site import SiteWishes

if TYPE_CHECKING:
    from gateway.history.store import HistoryStore
    from gateway.model.station import Clock
    from gateway.tasks import Spawn

log = logging.getLogger(__name__)
# charger id -> {"writes": times of its profile writes in the last hour, "held": the profiles it
# accepted last, per slot}: stored after every write, so a restarted gateway neither rewrites an
# unchanged profile nor starts the charger's hourly budget from zero.
HELD_SCOPE = "profiles_held"


class HeldProfiles:
    """The restart side of `ChargingController` (its state is the controller's)."""

    history: HistoryStore
    clock: Clock
    spawn: Spawn
    site: SiteWishes
    rotation: RotationState
    control: dict[tuple[str, int], ConnectorControl]
    guards: dict[str, WriteGuard]
    _site_profiles: set[tuple[str, int]]
    _restored: set[tuple[str, int]]
    _earlier: dict[str, tuple[list[float], list[dict[str, Any]]]]
    _dirty: asyncio.Event
    _verify: Callable[[str, int], Awaitable[None]]  # `ProfileSender._verify`: GetCompositeSchedule

    async def _load_held(self) -> None:
        """What each charger held before the restart (its guard takes it when first asked)."""
        for charger_id, text in (await self.history.kv_get(HELD_SCOPE)).items():
            try:
                stored = json.loads(text)
                times, held = [float(t) for t in stored["writes"]], [dict(p) for p in stored["held"]]
            except (ValueError, TypeError, KeyError):
                log.warning("ignoring unreadable stored profiles of %s", charger_id)
                continue
            self._earlier[charger_id] = (times, held)
            self._restore_shares(charger_id, held)

    def _restore_shares(self, charger_id: str, held: list[dict[str, Any]]) -> None:
        """The shares a charger accepted before the restart: it goes on applying them (also while
        offline), and the allocator starts from them (its hysteresis holds small changes)."""
        now = self.clock()
        for payload in held:
            amps, tx = written_share(payload)
            connector_id = int(payload.get("connectorId") or 0)
            if tx is None and payload["csChargingProfiles"].get("chargingProfileId") == SITE_PROFILE_ID + connector_id:
                # Its start limit (connector 0), or what the one slot of a connector holds (the
                # start limit or a share: `shares_in_default_slot`); lifted with the limit.
                self._site_profiles.add((charger_id, connector_id))
                self.control[(charger_id, connector_id)] = ConnectorControl(
                    written_a=amps, applied_at=now, send_state="Accepted" if connector_id == 0 else None)
                if connector_id > 0:
                    self._restored.add((charger_id, connector_id))
                continue
            if tx is None or connector_id == 0:
                continue
            self.control[(charger_id, connector_id)] = ConnectorControl(
                transaction_id=tx, written_a=amps, written_tx=tx, applied_at=now,
                send_status="Accepted", send_state="Accepted")
            self._restored.add((charger_id, connector_id))
            if amps is not None:
                key = f"{charger_id}/{connector_id}"
                self.rotation = dataclasses.replace(
                    self.rotation, allocated_a={**self.rotation.allocated_a, key: amps},
                    running_since={**self.rotation.running_since, key: now}, limit=self.site.in_force.limit)

    async def _verify_restored(self, charger_id: str, connector_id: int) -> None:
        """Where the charger can say (GetCompositeSchedule), check that it still applies the share
        it accepted before the restart; if it offers another value, that share is written again
        (more: the site limit would not hold; less: it lost the share and applies its start
        limit, so the car waits)."""
        await self._verify(charger_id, connector_id)
        control = self.control.get((charger_id, connector_id))
        if control is None or control.written_a is None or control.applied_limit is None \
                or control.applied_unit != "A" or abs(control.applied_limit - control.written_a) <= 0.05:
            return
        log.info("%s/%s applies %s A, not the %s A it accepted before the restart: written again",
                 charger_id, connector_id, control.applied_limit, control.written_a)
        guard = self.guards.get(charger_id)
        if guard is not None and control.written_tx is not None:
            guard.forget_transaction(control.written_tx)
        elif guard is not None:  # a share in the connector's TxDefaultProfile slot
            guard.drop_slot(connector_id, SITE_PROFILE_ID + connector_id)
        control.written_a = control.written_tx = None
        self._dirty.set()

    async def _store_held(self, *charger_ids: str) -> None:
        """Durably record what these chargers accepted and when they were written."""
        await self.history.kv_put(HELD_SCOPE, self._held_rows(charger_ids))

    def _remember_held(self, charger_id: str) -> None:
        """The same after a write, in the background: the write path does not wait for the disk
        (the rows are taken now and committed in order)."""
        self.spawn(self.history.kv_put(HELD_SCOPE, self._held_rows([charger_id])), "store profiles held")

    def _held_rows(self, charger_ids: Iterable[str]) -> dict[str, str]:
        now = self.clock()
        return {charger_id: json.dumps({"writes": self.guards[charger_id].recent_writes(now),
                                        "held": self.guards[charger_id].held()})
                for charger_id in charger_ids if charger_id in self.guards}
