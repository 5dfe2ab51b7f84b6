"""Transactions and metering of a simulated charger: sessions, meter samples and the offline queue.

A mixin of `Simulator` (split out by concern to keep each module short); it uses the simulator's
sending helpers (`call`, `online`, `set_status`) and state (`connectors`, `config`, `profiles`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.v16 import call
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from .charging import ActiveTx, ProfileStore
from .model import ConfigStore, Connector, Meter, Transaction, iso, split_csl
from .profile import ChargerProfile

CONNECTION_ERRORS = (OSError, ConnectionClosed, InvalidHandshake, asyncio.TimeoutError)


@dataclass
class Queued:
    """A transaction-related message kept until the central system has it (OCPP 1.6 4.7 / 4.8)."""

    action: str
    tx: Transaction
    payload: dict[str, Any]
    refusals: int = 0  # CALLERRORs so far, against TransactionMessageAttempts


class Sessions:
    """Transaction side of `Simulator`."""

    profile: ChargerProfile
    config: ConfigStore
    profiles: ProfileStore
    meter: Meter
    connectors: dict[int, Connector]
    pending: deque[Queued]
    local_list: dict[str, dict[str, Any]]
    auth_cache: dict[str, str]
    _flush_lock: asyncio.Lock
    now: Callable[[], datetime]
    emit: Callable[[str], None]
    spawn: Callable[[Any], asyncio.Task[Any]]
    online: Callable[[], bool]
    # A firmware fault seen in the field (issue 12): StopTransaction's transactionData sent as one
    # object instead of an array. The central system must answer it, not drop the connection.
    malformed_transaction_data: bool
    _stopping: bool

    async def call(self, payload: Any, skip_validation: bool = False) -> Any:
        raise NotImplementedError

    async def set_status(self, connector_id: int, status: str) -> None:
        raise NotImplementedError

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        raise NotImplementedError

    # ----- offline queue ---------------------------------------------------------------------

    async def queue(self, action: str, tx: Transaction, payload: dict[str, Any]) -> None:
        """Transaction messages go through the queue so that offline ones keep order and timestamps."""
        self.pending.append(Queued(action, tx, payload))
        await self.flush()

    async def flush(self) -> None:
        async with self._flush_lock:
            while self.pending and self.online():
                item = self.pending[0]
                payload = dict(item.payload)
                if item.action != "StartTransaction":
                    if item.tx.transaction_id is None:
                        return  # its StartTransaction has not been answered
                    payload["transaction_id"] = item.tx.transaction_id
                malformed = self.malformed_transaction_data and item.action == "StopTransaction"
                if malformed:
                    payload["transaction_data"] = payload["transaction_data"][-1]
                try:
                    result = await self.call(getattr(call, item.action)(**payload), skip_validation=malformed)
                except OCPPError as exc:
                    if await self._retry_later(item, exc):
                        continue
                    result = None
                except CONNECTION_ERRORS + (ConnectionError,):
                    return
                if item.action == "StartTransaction" and result is not None:
                    item.tx.transaction_id = int(result.transaction_id)
                    await self._after_start_answer(item.tx, result.id_tag_info)
                self.pending.popleft()

    async def _retry_later(self, item: Queued, exc: OCPPError) -> bool:
        """After a CALLERROR, try again until TransactionMessageAttempts tries were refused, waiting
        TransactionMessageRetryInterval x refusals in between (AC wallbox 3.2.1, zappi "Configuration
        Parameters"); then the message is skipped. Whether to retry now (True) or drop it (False)."""
        item.refusals += 1
        attempts = self.config.get_int("TransactionMessageAttempts", 1)
        if item.refusals >= attempts:
            self.emit(f"{item.action} refused {item.refusals} time(s), skipped: {exc!r}")
            return False
        self.emit(f"{item.action} refused: {exc!r}; try {item.refusals + 1} of {attempts}")
        await asyncio.sleep(self.config.get_int("TransactionMessageRetryInterval", 0) * item.refusals)
        return True

    async def _after_start_answer(self, tx: Transaction, id_tag_info: dict[str, Any]) -> None:
        status = id_tag_info.get("status")
        if status != "Accepted" and self.config.get_bool("StopTransactionOnInvalidId", True) and not tx.stopped:
            self.spawn(self.stop_session(tx.connector_id, "DeAuthorized"))

    # ----- sessions --------------------------------------------------------------------------

    def active_tx(self, connector_id: int) -> ActiveTx | None:
        tx = self.connectors[connector_id].transaction
        return ActiveTx(tx.transaction_id, tx.start) if tx else None

    def limit_a(self, connector_id: int) -> float | None:
        return self.profiles.limit_a(connector_id, self.now(), self.active_tx(connector_id))

    def apply_limits(self) -> None:
        """A profile stored or cleared applies at once: the offered current follows before the
        charger answers (the StatusNotification it may cause follows the answer: `refresh`)."""
        now = self.now()
        for c in self.connectors.values():
            if c.id:
                self.meter.advance(c, now, self.limit_a(c.id), c.transaction is not None)

    async def refresh(self, connector_id: int) -> None:
        """Apply the active limit now: offered current, power and Charging/SuspendedEVSE."""
        c = self.connectors[connector_id]
        charging = c.transaction is not None
        self.meter.advance(c, self.now(), self.limit_a(connector_id), charging)
        if charging and c.status in ("Charging", "SuspendedEVSE"):
            await self.set_status(connector_id, "Charging" if c.offered_a > 0 else "SuspendedEVSE")

    async def plug_in(self, connector_id: int = 1, ev_max_current_a: float | None = None) -> None:
        c = self.connectors[connector_id]
        c.plugged = True
        if ev_max_current_a is not None:
            c.ev_max_current_a = ev_max_current_a
        if c.status in ("Available", "Reserved"):
            await self.set_status(connector_id, "Preparing")
        if c.remote_start is not None and c.transaction is None:
            id_tag, authorize = c.remote_start
            c.remote_start = None
            await self.start_session(connector_id, id_tag, authorize=authorize)

    async def remote_start(self, connector_id: int, id_tag: str, authorize: bool) -> Transaction | None:
        """RemoteStartTransaction accepted: start now if the EV is plugged in, else show Preparing and
        wait ConnectionTimeOut seconds for `plug_in` (OCPP 1.6 5.11; zappi "RemoteStartTransaction")."""
        c = self.connectors[connector_id]
        if c.plugged:
            return await self.start_session(connector_id, id_tag, authorize=authorize)
        c.remote_start = (id_tag, authorize)
        await self.set_status(connector_id, "Preparing")
        self.spawn(self._connection_timeout(connector_id, (id_tag, authorize)))
        return None

    async def _connection_timeout(self, connector_id: int, request: tuple[str, bool]) -> None:
        await asyncio.sleep(self.config.get_int("ConnectionTimeOut", 60))
        c = self.connectors[connector_id]
        if c.remote_start == request and not c.plugged:
            c.remote_start = None
            self.emit(f"connector {connector_id}: no cable within ConnectionTimeOut, authorization cancelled")
            await self.set_status(connector_id, "Available")

    async def unplug(self, connector_id: int = 1) -> None:
        c = self.connectors[connector_id]
        if c.transaction and self.config.get_bool("StopTransactionOnEVSideDisconnect", True):
            await self.stop_session(connector_id, "EVDisconnected")
        c.plugged = False
        if c.scheduled_operative is not None:
            c.operative, c.scheduled_operative = c.scheduled_operative, None
        await self.set_status(connector_id, "Available" if c.operative else "Unavailable")
        if self.profile.quirks.availability_notifies_connector_zero:
            await self.send_status(0)

    async def authorize(self, id_tag: str) -> str:
        """Authorize online (caching the answer), or decide offline from the local list and cache."""
        if self.online():
            result = await self.call(call.Authorize(id_tag=id_tag))
            status = str(result.id_tag_info.get("status"))
            if self.config.get_bool("AuthorizationCacheEnabled", True):
                self.auth_cache[id_tag] = status
            return status
        return self.offline_authorization(id_tag)

    def offline_authorization(self, id_tag: str) -> str:
        """OCPP 1.6 3.5: LocalAuthorizeOffline uses the local list and cache; an unknown id is accepted
        only with AllowOfflineTxForUnknownId (AC wallbox 3.2.1: "will not allow any ID except in local
        authentication list while it is offline"). A missing key means the charger has no such check."""
        known = self.local_list.get(id_tag, {}).get("status") or self.auth_cache.get(id_tag)
        if known is not None and self.config.get_bool("LocalAuthorizeOffline", True):
            return known
        if known is None and self.config.get_bool("AllowOfflineTxForUnknownId", True):
            return "Accepted"
        return known or "Invalid"

    async def start_session(self, connector_id: int = 1, id_tag: str = "TAG1", *, authorize: bool = True,
                            reservation_id: int | None = None) -> Transaction | None:
        """Plug in, Authorize, StartTransaction. Returns the transaction (its id may still be None
        while offline), or None when the id tag was refused or the connector cannot charge."""
        c = self.connectors[connector_id]
        if c.transaction or not c.operative or c.status == "Faulted":
            return None
        await self.plug_in(connector_id)
        if authorize and await self.authorize(id_tag) != "Accepted":
            self.emit(f"id tag {id_tag} refused")
            return None
        now = self.now()
        self.meter.advance(c, now, self.limit_a(connector_id), False)
        tx = Transaction(connector_id, id_tag, int(c.energy_wh), now, reservation_id=reservation_id)
        c.transaction = tx
        c.reservation_id = c.reserved_id_tag = None
        tx.samples.append(self.meter.sample(c, ["Energy.Active.Import.Register"], now, "Transaction.Begin"))
        payload = {"connector_id": connector_id, "id_tag": id_tag, "meter_start": tx.meter_start_wh,
                   "timestamp": iso(now), "reservation_id": reservation_id}
        await self.queue("StartTransaction", tx, {k: v for k, v in payload.items() if v is not None})
        self.meter.advance(c, now, self.limit_a(connector_id), True)
        await self.set_status(connector_id, "Charging" if c.offered_a > 0 else "SuspendedEVSE")
        return tx

    def measurands(self) -> list[str]:
        return split_csl(self.config.get(self.profile.quirks.measurands_key, "Energy.Active.Import.Register"))

    async def send_meter_values(self, connector_id: int = 1, context: str = "Sample.Periodic") -> dict[str, Any]:
        """Take one sample now and send it (queued with its timestamp when offline)."""
        await self.refresh(connector_id)
        c = self.connectors[connector_id]
        sample = self.meter.sample(c, self.measurands(), self.now(), context)
        if c.transaction:
            c.transaction.samples.append(sample)
            await self.queue("MeterValues", c.transaction, {"connector_id": connector_id, "meter_value": [sample]})
        else:
            with contextlib.suppress(ConnectionError):  # outside a transaction nothing is kept offline
                await self.call(call.MeterValues(connector_id=connector_id, meter_value=[sample]))
        return sample

    async def stop_session(self, connector_id: int = 1, reason: str = "Local") -> Transaction | None:
        c = self.connectors[connector_id]
        tx = c.transaction
        if tx is None:
            return None
        await self.refresh(connector_id)
        now = self.now()
        tx.stopped = True
        end = self.meter.sample(c, ["Energy.Active.Import.Register"], now, "Transaction.End")
        payload = {"meter_stop": int(c.energy_wh), "timestamp": iso(now), "reason": reason,
                   "id_tag": tx.id_tag, "transaction_data": [*tx.samples, end], "transaction_id": 0}
        c.transaction = None
        self.meter.advance(c, now, self.limit_a(connector_id), False)
        self.profiles.end_transaction(connector_id)
        await self.queue("StopTransaction", tx, payload)
        after = "Finishing" if c.plugged else "Available"
        if reason == "Remote" and self.profile.quirks.remote_stop_status_key:
            after = self.config.get(self.profile.quirks.remote_stop_status_key, after) or after
        if c.scheduled_operative is not None and not self.profile.quirks.availability_waits_for_unplug:
            c.operative, c.scheduled_operative = c.scheduled_operative, None
        if not c.operative and not c.plugged:
            after = "Unavailable"
        await self.set_status(connector_id, after)
        return tx

    async def _meter_loop(self) -> None:
        """Periodic samples in transactions (queued while offline when the firmware keeps
        sampling) and, where the firmware does, clock-aligned samples of idle connectors."""
        firmware = self.profile.firmware
        while self.online() or (firmware.meter_while_offline and not self._stopping):
            interval = self.config.get_int(self.profile.quirks.meter_interval_key, 60)
            await asyncio.sleep(max(interval, 1))
            for c in list(self.connectors.values()):
                if c.transaction and interval > 0:
                    await self.send_meter_values(c.id)
                elif c.id > 0 and firmware.clock_aligned_outside_tx and self.online():
                    await self.send_meter_values(c.id, "Sample.Clock")
