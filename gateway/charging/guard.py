"""The flash-wear guard of one charger: no rewrites, a deadband, a budget, and rejection back-off.

Every SetChargingProfile wears the charger's flash (zappi 003: 26 slot writes per 60 minutes),
so the guard decides whether a payload is worth writing at all. A value held back by the budget
is kept as the slot's newest wish and goes out once the budget frees, so the last wanted value
always arrives. A rejected profile is not re-sent each pass: every further payload for the same
connector and transaction (or, without a transaction, the same slot) waits an exponentially
growing time, whatever its limit (real firmware rejects a TxProfile for a transaction it no
longer knows every time, and a changed share does not make it known). A wish belongs to its
transaction: `drop_transaction` forgets it, and its back-off, when the transaction ends. Pure
code: no I/O, the clock is passed in.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.chargers.capabilities import ChargerCapabilities

REJECT_BACKOFF_S = 5.0  # first wait after a rejection; doubles with each further one
REJECT_BACKOFF_MAX_S = 900.0


@dataclass(frozen=True)
class Decision:
    """Whether to write now; if not, why, and when a held-back value can go (``retry_at``)."""

    write: bool
    reason: str
    retry_at: float | None = None

    @property
    def rejected(self) -> bool:
        return self.reason.startswith("rejected")


@dataclass
class _Rejection:
    payload: dict[str, Any]
    count: int
    retry_at: float


class WriteGuard:
    """Profiles are compared per slot (connector, purpose, stack level, profile id); the budget is
    shared by the whole charger; a rejection backs off the connector's transaction (`_backoff_key`).
    Call ``decide`` with what you want on the charger; after sending, ``record_write``."""

    def __init__(
        self,
        caps: ChargerCapabilities | None = None,
        *,
        writes_per_hour: int | None = None,
        default_writes_per_hour: int = 60,
        deadband_a: float = 0.5,
        deadband_w: float = 100.0,
        window_s: float = 3600.0,
    ) -> None:
        from_caps = caps.profile_writes_per_hour if caps is not None else None
        self.writes_per_hour = writes_per_hour or from_caps or default_writes_per_hour
        self.deadband = {"A": deadband_a, "W": deadband_w}
        self.window_s = window_s
        self.writes_total = 0
        self.rejections_total = 0
        self._times: deque[float] = deque()
        self._written: dict[tuple, dict[str, Any]] = {}
        self._pending: dict[tuple, dict[str, Any]] = {}
        self._rejected: dict[tuple, _Rejection] = {}
        self._approved: dict[str, Any] | None = None

    def writes_in_window(self, now: float) -> int:
        """Writes in the rolling window ending now (the per-charger write counter point)."""
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()
        return len(self._times)

    def recent_writes(self, now: float) -> list[float]:
        """When the writes of the rolling window were sent (kept across a gateway restart)."""
        self.writes_in_window(now)
        return list(self._times)

    def restore_writes(self, times: list[float], now: float) -> None:
        """Count writes sent before a gateway restart against the budget (zappi counts them too)."""
        self._times = deque(sorted(float(t) for t in times if now - self.window_s < float(t) <= now))

    def held(self) -> list[dict[str, Any]]:
        """What the charger accepted last, per slot (kept across a gateway restart)."""
        return [dict(p) for p in self._written.values()]

    def restore_held(self, payloads: list[dict[str, Any]]) -> None:
        """What the charger accepted before a gateway restart: an unchanged profile is not rewritten
        (the charger keeps its profiles while the central system is away)."""
        self._written = {_normalize(p)[0]: dict(p) for p in payloads}

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Values held back (budget or rejection back-off), newest wish per slot."""
        return list(self._pending.values())

    def due(self, now: float) -> list[dict[str, Any]]:
        """Pending values that may be written now (pass each to ``decide`` again)."""
        if self.writes_in_window(now) >= self.writes_per_hour:
            return []
        return [p for p in self._pending.values() if self._backoff_over(p, now)]

    def _backoff_over(self, payload: Mapping[str, Any], now: float) -> bool:
        rejection = self._rejected.get(_backoff_key(payload))
        return rejection is None or now >= rejection.retry_at

    def decide(self, payload: Mapping[str, Any], now: float) -> Decision:
        """Whether ``payload`` (a SetChargingProfile.req) should be written at ``now``."""
        self._approved = None
        slot, shape, limits, unit = _normalize(payload)
        last = self._written.get(slot)
        if last is not None:
            _, last_shape, last_limits, _ = _normalize(last)
            if shape == last_shape and limits == last_limits:
                self._pending.pop(slot, None)
                return Decision(False, "unchanged")
            if shape == last_shape and _within(limits, last_limits, self.deadband.get(unit, 0.0)):
                self._pending.pop(slot, None)
                return Decision(False, f"change within the {self.deadband.get(unit)} {unit} deadband")
        rejection = self._rejected.get(_backoff_key(payload))
        if rejection is not None and now < rejection.retry_at:
            self._pending[slot] = dict(payload)
            return Decision(False, f"rejected {rejection.count}x: retry after back-off", rejection.retry_at)
        if self.writes_in_window(now) >= self.writes_per_hour:
            self._pending[slot] = dict(payload)
            retry_at = self._times[0] + self.window_s
            return Decision(False, f"budget of {self.writes_per_hour} writes per hour used", retry_at)
        self._approved = dict(payload)
        return Decision(True, "first write" if last is None else "changed")

    def record_write(self, now: float, payload: Mapping[str, Any] | None = None, accepted: bool = True) -> None:
        """Count a write sent at ``now`` (default: the payload ``decide`` last approved).

        Every sent write counts against the budget; only an accepted one becomes the value the
        charger holds. A rejected one stays the slot's wish and is tried again after a back-off
        that doubles with each rejection for the same connector and transaction.
        """
        sent = dict(payload) if payload is not None else self._approved
        self._times.append(now)
        self.writes_total += 1
        self._approved = None
        if sent is None:
            return
        slot, key = _normalize(sent)[0], _backoff_key(sent)
        if accepted:
            self._written[slot] = sent
            self._rejected.pop(key, None)
            if slot in self._pending and _same(self._pending[slot], sent):
                del self._pending[slot]
            return
        self.rejections_total += 1
        before = self._rejected.get(key)
        count = before.count + 1 if before is not None else 1
        wait = min(REJECT_BACKOFF_S * 2 ** (count - 1), REJECT_BACKOFF_MAX_S)
        self._rejected[key] = _Rejection(sent, count, now + wait)
        self._pending.setdefault(slot, sent)

    def rejected_count(self, payload: Mapping[str, Any]) -> int:
        """How often profiles for this payload's connector and transaction were rejected in a row."""
        rejection = self._rejected.get(_backoff_key(payload))
        return rejection.count if rejection is not None else 0

    def drop_transaction(self, transaction_id: int) -> int:
        """The transaction ended or is gone: its profiles can never be written. Returns how many."""
        dropped = [slot for slot, p in self._pending.items() if _transaction_of(p) == transaction_id]
        for slot in dropped:
            del self._pending[slot]
        for key in [k for k, r in self._rejected.items() if _transaction_of(r.payload) == transaction_id]:
            del self._rejected[key]
        return len(dropped)

    def drop_slot(self, connector_id: int, profile_id: int) -> None:
        """Forget every wish for one profile (it was cleared on purpose)."""
        for table in (self._pending, self._written):
            for slot in [s for s in table if (s[0], s[3]) == (connector_id, profile_id)]:
                del table[slot]
        for key in [k for k, r in self._rejected.items()
                    if _normalize(r.payload)[0][0::3] == (connector_id, profile_id)]:
            del self._rejected[key]

    def clear_pending(self) -> None:
        """Drop every held-back wish (the operator lifted the limit)."""
        self._pending.clear()
        self._rejected.clear()

    def forget_transaction(self, transaction_id: int) -> None:
        """The charger does not apply what it accepted for this transaction: write it again."""
        for slot in [s for s, p in self._written.items() if _transaction_of(p) == transaction_id]:
            del self._written[slot]

    def forget(self) -> None:
        """The charger lost its profiles (reboot, ClearChargingProfile): write the next value again."""
        self._written.clear()


def _transaction_of(payload: Mapping[str, Any]) -> int | None:
    return payload.get("csChargingProfiles", {}).get("transactionId")


def _backoff_key(payload: Mapping[str, Any]) -> tuple:
    """What a rejection backs off: the connector and transaction of a TxProfile (any share for a
    transaction the charger does not know is rejected alike), else the profile's slot."""
    transaction_id = _transaction_of(payload)
    if transaction_id is not None:
        return ("transaction", payload.get("connectorId"), transaction_id)
    return ("slot", *_normalize(payload)[0])


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Same slot, shape and limits (timestamps aside)."""
    return _normalize(a) == _normalize(b)


def _normalize(payload: Mapping[str, Any]) -> tuple[tuple, Any, tuple[float, ...], str]:
    """Slot key, the payload without timestamps and limits, the limits, and the unit."""
    profile = copy.deepcopy(dict(payload.get("csChargingProfiles", {})))
    slot = (payload.get("connectorId"), profile.get("chargingProfilePurpose"),
            profile.get("stackLevel"), profile.get("chargingProfileId"))
    for key in ("validFrom", "validTo"):
        profile.pop(key, None)
    schedule = profile.get("chargingSchedule", {})
    schedule.pop("startSchedule", None)  # moves with the clock; not a change of the limit
    limits = []
    amperes = schedule.get("chargingRateUnit", "A") == "A"
    for period in schedule.get("chargingSchedulePeriod", []):
        limits.append(round(float(period.pop("limit", 0.0)), 3))
        if amperes:  # a limit per phase: how many phases the car uses (read from its meter values,
            period.pop("numberPhases", None)  # 1 while it draws on one, 3 when paused) is no change
    shape = (payload.get("connectorId"), json.dumps(profile, sort_keys=True))
    return slot, shape, tuple(limits), str(schedule.get("chargingRateUnit", "A"))


def _within(limits: tuple[float, ...], last: tuple[float, ...], deadband: float) -> bool:
    """All limits rose by less than the deadband, and none crossed between pause (0) and charging.

    A cut is always written, however small: the allocator makes one only when the site limit
    needs it (a small cut it does not need, its hysteresis holds back), and a charger left at the
    higher value would break the limit (the soak benchmark saw 0.4 A too much on each of four).
    """
    return len(limits) == len(last) and all(
        0 <= a - b < deadband and (a == 0) == (b == 0) for a, b in zip(limits, last, strict=True)
    )
