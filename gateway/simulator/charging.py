"""Charging-profile store of a simulated charger: validation, stacking, active limit, composite schedule.

No I/O and an injected time, so the rules (OCPP 1.6 section 3.13 plus each manual's limits from
`SmartChargingSpec`) can be reasoned about on plain objects.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .profile import SmartChargingSpec

RECURRENCE_S = {"Daily": 86400, "Weekly": 7 * 86400}


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Period:
    start_s: int
    limit: float
    number_phases: int | None = None


@dataclass(frozen=True)
class Schedule:
    unit: str  # "A" or "W"
    periods: tuple[Period, ...]
    duration_s: int | None = None
    start: datetime | None = None
    min_rate: float | None = None


@dataclass(frozen=True)
class Profile:
    """A charging profile as the charger stored it (snake_case payload turned into our own types)."""

    id: int
    connector_id: int
    stack_level: int
    purpose: str
    kind: str
    schedule: Schedule
    received_at: datetime
    recurrency: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction_id: int | None = None

    @classmethod
    def from_payload(cls, connector_id: int, data: dict[str, Any], now: datetime) -> Profile:
        """Decode `cs_charging_profiles` as the ocpp library hands it over (snake_case keys)."""
        sched = data["charging_schedule"]
        periods = tuple(
            Period(int(p["start_period"]), float(p["limit"]), p.get("number_phases"))
            for p in sched["charging_schedule_period"]
        )
        return cls(
            id=int(data["charging_profile_id"]),
            connector_id=connector_id,
            stack_level=int(data["stack_level"]),
            purpose=data["charging_profile_purpose"],
            kind=data["charging_profile_kind"],
            recurrency=data.get("recurrency_kind"),
            valid_from=parse_time(data.get("valid_from")),
            valid_to=parse_time(data.get("valid_to")),
            transaction_id=data.get("transaction_id"),
            received_at=now,
            schedule=Schedule(
                unit=sched["charging_rate_unit"],
                periods=periods,
                duration_s=sched.get("duration"),
                start=parse_time(sched.get("start_schedule")),
                min_rate=sched.get("min_charging_rate"),
            ),
        )

    def same_content(self, other: Profile) -> bool:
        """True when storing `other` would rewrite nothing (zappi skips unchanged slots)."""
        return (self.id, self.connector_id, self.stack_level, self.purpose, self.kind, self.schedule) == (
            other.id, other.connector_id, other.stack_level, other.purpose, other.kind, other.schedule)

    def origin(self, now: datetime, tx_start: datetime | None) -> datetime | None:
        """Start of the schedule cycle that covers `now`."""
        if self.kind == "Relative":
            return tx_start or now
        start = self.schedule.start or self.received_at
        if self.kind == "Recurring" and self.recurrency in RECURRENCE_S and now >= start:
            cycle = RECURRENCE_S[self.recurrency]
            elapsed = (now - start).total_seconds()
            return start + timedelta(seconds=cycle * int(elapsed // cycle))
        return start

    def limit_at(self, t: datetime, tx_start: datetime | None) -> Period | None:
        if (self.valid_from and t < self.valid_from) or (self.valid_to and t >= self.valid_to):
            return None
        origin = self.origin(t, tx_start)
        if origin is None or t < origin:
            return None
        elapsed = (t - origin).total_seconds()
        if self.schedule.duration_s is not None and elapsed >= self.schedule.duration_s:
            return None
        current = None
        for period in self.schedule.periods:
            if period.start_s <= elapsed:
                current = period
        return current

    def boundaries(self, now: datetime, tx_start: datetime | None) -> list[datetime]:
        origin = self.origin(now, tx_start)
        if origin is None:
            return []
        points = [origin + timedelta(seconds=p.start_s) for p in self.schedule.periods]
        if self.schedule.duration_s is not None:
            points.append(origin + timedelta(seconds=self.schedule.duration_s))
        if self.kind == "Recurring" and self.recurrency in RECURRENCE_S:
            cycle = timedelta(seconds=RECURRENCE_S[self.recurrency])
            points += [p + cycle for p in points]
        return points


@dataclass
class ActiveTx:
    transaction_id: int | None
    start: datetime


@dataclass
class ProfileStore:
    """Installed profiles of one charger plus the manual's write limits."""

    spec: SmartChargingSpec
    phases: int
    voltage_v: float
    max_current_a: float
    profiles: list[Profile] = field(default_factory=list)
    writes: deque[datetime] = field(default_factory=deque)
    last_rejection: str = ""

    def _reject(self, why: str) -> str:
        self.last_rejection = why
        return "Rejected"

    def set(self, profile: Profile, now: datetime, tx: ActiveTx | None) -> str:
        """SetChargingProfile: 'Accepted' or 'Rejected' (reason in `last_rejection`)."""
        spec, sched = self.spec, profile.schedule
        if profile.purpose not in spec.purposes:
            return self._reject(f"purpose {profile.purpose} not supported")
        if sched.unit not in spec.rate_units:
            return self._reject(f"charging rate unit {sched.unit} not supported")
        if spec.reject_min_charging_rate and sched.min_rate is not None:
            return self._reject("minChargingRate not supported")
        if spec.reject_number_phases and any(p.number_phases is not None for p in sched.periods):
            return self._reject("numberPhases not supported")
        if profile.stack_level > spec.max_stack_level:
            return self._reject(f"stack level above {spec.max_stack_level}")
        if len(sched.periods) > spec.max_periods:
            return self._reject(f"more than {spec.max_periods} periods")
        if profile.purpose == "ChargePointMaxProfile" and profile.connector_id != 0:
            return self._reject("ChargePointMaxProfile only on connector 0")  # OCPP 1.6 3.13.1
        if profile.purpose == "TxProfile" and tx is None:
            return self._reject("TxProfile without an active transaction")  # OCPP 1.6 5.16.2
        if spec.reject_unknown_transaction and profile.purpose == "TxProfile" \
                and profile.transaction_id not in (None, tx.transaction_id):
            return self._reject(f"unknown transaction {profile.transaction_id}")
        if spec.skip_unchanged_writes and any(p.same_content(profile) for p in self.profiles):
            return "Accepted"
        kept = [p for p in self.profiles if not self._replaced_by(p, profile)]
        if len(kept) >= spec.max_installed:
            return self._reject(f"more than {spec.max_installed} profiles installed")
        slots = len(sched.periods)
        if spec.max_slots is not None and sum(len(p.schedule.periods) for p in kept) + slots > spec.max_slots:
            return self._reject(f"more than {spec.max_slots} slots")
        if spec.writes_per_hour is not None:
            while self.writes and now - self.writes[0] >= timedelta(hours=1):
                self.writes.popleft()
            if len(self.writes) + slots > spec.writes_per_hour:
                return self._reject(f"more than {spec.writes_per_hour} slot writes in 60 minutes")
            self.writes.extend([now] * slots)
        if profile.purpose == "TxProfile" and profile.transaction_id is None and tx is not None:
            profile = Profile(**{**profile.__dict__, "transaction_id": tx.transaction_id})
        self.profiles = [*kept, profile]
        return "Accepted"

    def _replaced_by(self, old: Profile, new: Profile) -> bool:
        if old.id == new.id:
            return True
        if self.spec.single_tx_default and new.purpose == old.purpose == "TxDefaultProfile":
            return True
        return (old.connector_id, old.purpose, old.stack_level) == (new.connector_id, new.purpose, new.stack_level)

    def clear(self, id: int | None, connector_id: int | None, purpose: str | None, stack_level: int | None) -> str:
        """ClearChargingProfile: 'Accepted' when something was removed, else the profile's 'Unknown'."""
        def matches(p: Profile) -> bool:
            if id is not None:
                return p.id == id
            return ((connector_id is None or p.connector_id == connector_id)
                    and (purpose is None or p.purpose == purpose)
                    and (stack_level is None or p.stack_level == stack_level))
        kept = [p for p in self.profiles if not matches(p)]
        if len(kept) == len(self.profiles):
            return self.spec.clear_unknown_status
        self.profiles = kept
        return "Accepted"

    def end_transaction(self, connector_id: int) -> None:
        """TxProfiles end with their transaction (OCPP 1.6 3.13.1; zappi 'Clearing Profiles at Transaction End')."""
        self.profiles = [p for p in self.profiles
                         if not (p.purpose == "TxProfile" and p.connector_id == connector_id)]

    def _to_amps(self, period: Period, unit: str) -> float:
        if unit == "A":
            return period.limit
        return period.limit / (self.voltage_v * (period.number_phases or self.phases))

    def _winner(self, profiles: list[Profile], t: datetime, tx_start: datetime | None) -> float | None:
        for p in sorted(profiles, key=lambda p: (p.connector_id != 0, p.stack_level), reverse=True):
            period = p.limit_at(t, tx_start)
            if period is not None:
                return self._to_amps(period, p.schedule.unit)
        return None

    def limit_a(self, connector_id: int, t: datetime, tx: ActiveTx | None) -> float | None:
        """The limit in amperes per phase that applies at `t`, or None when no profile applies."""
        tx_start = tx.start if tx else None
        limits = []
        if tx is not None:
            tx_profiles = [p for p in self.profiles if p.purpose == "TxProfile" and p.connector_id == connector_id
                           and p.transaction_id in (None, tx.transaction_id)]
            limit = self._winner(tx_profiles, t, tx_start)
        else:
            limit = None
        if limit is None:
            defaults = [p for p in self.profiles
                        if p.purpose == "TxDefaultProfile" and p.connector_id in (0, connector_id)]
            limit = self._winner(defaults, t, tx_start)
        limits.append(limit)
        cp_max = [p for p in self.profiles if p.purpose == "ChargePointMaxProfile"]
        limits.append(self._winner(cp_max, t, tx_start))
        present = [v for v in limits if v is not None]
        return min(present) if present else None

    def composite(self, connector_id: int, duration_s: int, unit: str | None, now: datetime,
                  tx: ActiveTx | None) -> dict[str, Any]:
        """GetCompositeSchedule: the limits from `now` for `duration_s`, merged into periods."""
        unit = unit or ("A" if "A" in self.spec.rate_units else "W")
        end = now + timedelta(seconds=duration_s)
        tx_start = tx.start if tx else None
        points = {now}
        for p in self.profiles:
            points.update(b for b in p.boundaries(now, tx_start) if now < b < end)
        periods: list[dict[str, Any]] = []
        for t in sorted(points):
            amps = self.limit_a(connector_id, t, tx)
            amps = self.max_current_a if amps is None else amps
            limit = amps if unit == "A" else amps * self.voltage_v * self.phases
            limit = round(limit, 1)
            if not periods or periods[-1]["limit"] != limit:
                periods.append({"start_period": int((t - now).total_seconds()), "limit": limit})
        return {
            "duration": duration_s,
            "start_schedule": now.isoformat().replace("+00:00", "Z"),
            "charging_rate_unit": unit,
            "charging_schedule_period": periods,
        }
