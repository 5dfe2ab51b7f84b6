"""Which site limit is in force, and why: the one record type and the pure decision.

A building energy manager (BMS), an operator and the settings file can each ask for a site limit;
the BMS command also has a watchdog (most BMSs do not re-send an unchanged command, so a silent
one must not leave the site open). `decide` picks the limit that applies now from those wishes.
Pure code: the clock is an argument, nothing is read or written here.

Order: a fresh BMS command (BACnet/Modbus, highest BACnet priority already resolved by the
point); then the operator's manual limit; then the configured one; then the safe limit (the
relinquish default of the BMS command); else none. A BMS command that lapsed is
never dropped to "no limit": it falls to the configured safe limit, else to the last BMS value
(fail safe, never open), and a manual or configured limit still applies if it is stricter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

# What `LimitRecord.source` can say; also the state texts of the Limit-Source point.
SOURCES = ("none", "bms", "manual", "config", "safe", "last bms")


@dataclass(frozen=True)
class SiteLimit:
    """What all chargers together may take; None means "no limit of this kind"."""

    current_a: float | None = None  # per phase
    power_w: float | None = None

    @property
    def unlimited(self) -> bool:
        return self.current_a is None and self.power_w is None

    def stricter(self, other: SiteLimit) -> SiteLimit:
        """Per kind, the lower of two limits (a kind only one of them sets is kept)."""
        def low(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else min(a, b)
        return SiteLimit(low(self.current_a, other.current_a), low(self.power_w, other.power_w))


@dataclass(frozen=True)
class LimitRecord:
    """A site limit with who asked for it and when: a wish (BMS, manual, config) or the decision.

    ``at`` is when it was written (gateway clock, seconds); ``priority`` the BACnet priority of a
    BMS command when known. For the decision, ``reason`` says why it applies and
    ``watchdog_expired`` that a BMS command lapsed (the alarm-able point).
    """

    limit: SiteLimit = SiteLimit()
    source: str = "none"
    at: float | None = None
    priority: int | None = None
    reason: str = "no limit"
    watchdog_expired: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"current_a": self.limit.current_a, "power_w": self.limit.power_w, "source": self.source,
                "at": self.at, "priority": self.priority}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LimitRecord:
        limit = SiteLimit(_num(data.get("current_a")), _num(data.get("power_w")))
        source = str(data.get("source") or "none")
        if source not in SOURCES:
            raise ValueError(f"unknown site-limit source {source!r}")
        return cls(limit, source, _num(data.get("at")), data.get("priority"))


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def decide(bms: LimitRecord | None, manual: LimitRecord | None, configured: SiteLimit | None,
           safe: SiteLimit | None, now: float, timeout_s: float) -> LimitRecord:
    """The limit in force now, with its source and reason. ``timeout_s`` <= 0: no watchdog."""
    if bms is not None and not bms.limit.unlimited:
        age = now - bms.at if bms.at is not None else 0.0
        if timeout_s <= 0 or age <= timeout_s:
            where = f" (priority {bms.priority})" if bms.priority else ""
            return replace(bms, source="bms", reason=f"bms{where}")
        fallback, source = (safe, "safe") if safe is not None and not safe.unlimited else (bms.limit, "last bms")
        others = [r.limit for r in (manual,) if r is not None and not r.limit.unlimited]
        if configured is not None and not configured.unlimited:
            others.append(configured)
        limit = fallback
        for other in others:
            limit = limit.stricter(other)
        what = "the safe limit" if source == "safe" else "the last BMS value"
        return LimitRecord(limit, source, bms.at, bms.priority, watchdog_expired=True,
                           reason=f"fallback: BMS watchdog expired ({age:.0f} s > {timeout_s:g} s), {what}")
    if manual is not None and not manual.limit.unlimited:
        return replace(manual, source="manual", reason="manual")
    if configured is not None and not configured.unlimited:
        return LimitRecord(configured, "config", reason="config")
    if safe is not None and not safe.unlimited:  # the relinquish default of the BMS command
        return LimitRecord(safe, "safe", reason="safe limit: no BMS command")
    return LimitRecord()
