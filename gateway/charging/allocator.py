"""The site-limit allocator: share a building's charging limit fairly between sessions.

Other central systems serve sessions first come, first served (evcc#20113, steve#552); here every
session gets an equal share per phase (or a weighted one, or a higher priority first), at least
its minimum or a clean pause, never more than its maximum. Sessions that draw less than they are
offered lend the rest to others, paused sessions take turns, and small measurement noise does not
move anything. Pure code: the clock is an argument and the state comes back as a value.

Units: amperes per phase. A 3-phase session at 10 A loads every phase with 10 A and takes
3 x 10 A x U watts; a 1-phase session at 10 A loads one phase (every phase when which one is
unknown, to stay safe) and takes 10 A x U watts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.charging.limit import SiteLimit

_EPS = 1e-6


@dataclass(frozen=True)
class SessionDemand:
    """One connector with a car that may charge.

    ``measured_a`` is the highest phase current the car draws now, ``offered_a`` what the charger
    currently offers (Current.Offered; when None, the last allocation is assumed). ``phase`` is the
    site phase (1-3) a 1-phase session is wired to, if known. ``fixed_a`` pins a session that
    cannot take a new value now (its charger's write budget is used up, see WriteGuard): it is
    counted at that value and the others share what is left, so the site limit still holds.
    """

    key: str
    phases: int = 3
    min_a: float = 6.0
    max_a: float = 32.0
    priority: int = 0
    weight: float = 1.0
    measured_a: float | None = None
    offered_a: float | None = None
    phase: int | None = None
    fixed_a: float | None = None

    def __post_init__(self) -> None:
        if self.phases not in (1, 3):
            raise ValueError(f"{self.key}: phases must be 1 or 3, not {self.phases}")
        if self.weight <= 0:
            raise ValueError(f"{self.key}: weight must be positive")
        if self.phase is not None and (self.phases != 1 or self.phase not in (1, 2, 3)):
            raise ValueError(f"{self.key}: phase is 1, 2 or 3, and only for 1-phase sessions")


def _frozen(mapping: Mapping[str, float] | None = None) -> Mapping[str, float]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class RotationState:
    """What the allocator remembers between runs: who runs or waits since when, and the last amps."""

    paused_since: Mapping[str, float] = field(default_factory=_frozen)
    running_since: Mapping[str, float] = field(default_factory=_frozen)
    allocated_a: Mapping[str, float] = field(default_factory=_frozen)
    limit: SiteLimit | None = None  # the limit of the last run: a new one re-shares every session
    ceiling_a: Mapping[str, float] = field(default_factory=_frozen)  # capped near their draw, or max
    terms: Mapping[str, tuple[float, int]] = field(default_factory=_frozen)  # weight and priority


@dataclass(frozen=True)
class AllocatorConfig:
    """Tuning; the defaults suit AC chargers with 1 A resolution and ~10-60 s meter values."""

    rotation_period_s: float = 900.0  # a paused session waits at most this long; a resumed one runs at least this long
    headroom_threshold_a: float = 1.0  # drawing this much under the offer counts as "not using it"
    headroom_margin_a: float = 2.0  # such a session keeps this much above its draw, to ramp up
    hysteresis_a: float = 0.5  # smaller changes of a running session's amps are not made
    # Smaller raises are not made either: lowering holds the limit and must go out, a raise only
    # passes on what another session freed, and every write wears the charger's flash.
    raise_hysteresis_a: float = 2.0
    # While the limit is unchanged, a running session keeps its value when others come and go:
    # it is raised only by at least this fraction of it (and raise_hysteresis_a), and cut only
    # when the limit needs it or its own draw fell (issue 13: writes per session <= 1 + limit changes).
    steady_raise_fraction: float = 0.25
    # Shares leave this much per phase free (where the minimums allow) for a car that arrives:
    # it starts from it without cutting everyone (the controller sets it while a connector is idle).
    newcomer_reserve_a: float = 0.0
    # A car that arrives when not even its minimum is free waits (paused) this long for current
    # to free up or the limit to change, before everyone is re-shared to make room for it.
    newcomer_wait_s: float = 120.0
    newcomer_wait_min_running: int = 4  # ...when so many running sessions would be rewritten
    resume_margin_a: float = 1.0  # a paused session resumes only if min + this fits (no flapping)
    step_a: float = 0.1  # allocations are rounded down to this step


@dataclass(frozen=True)
class Allocation:
    amps: float  # per phase; 0 means paused
    reason: str

    @property
    def paused(self) -> bool:
        return self.amps == 0


@dataclass(frozen=True)
class AllocationResult:
    allocations: Mapping[str, Allocation]
    state: RotationState


class _Load:
    """Checks a set of allocations against the site limits."""

    def __init__(self, limit: SiteLimit, voltage_v: float) -> None:
        self.limit = limit
        self.voltage_v = voltage_v

    def fits(self, amps: Mapping[SessionDemand, float]) -> bool:
        phase_a = [0.0, 0.0, 0.0]
        power_w = 0.0
        for session, a in amps.items():
            power_w += a * self.voltage_v * session.phases
            for p in range(3):
                if session.phases == 3 or session.phase in (None, p + 1):
                    phase_a[p] += a
        if self.limit.current_a is not None and max(phase_a) > self.limit.current_a + _EPS:
            return False
        return self.limit.power_w is None or power_w <= self.limit.power_w + _EPS


def allocate(
    limit: SiteLimit,
    sessions: Sequence[SessionDemand],
    nominal_voltage_v: float,
    state: RotationState | None = None,
    now: float = 0.0,
    config: AllocatorConfig | None = None,
) -> AllocationResult:
    """Share ``limit`` between ``sessions``; returns amps per session key and the next state."""
    state = state or RotationState()
    config = config or AllocatorConfig()
    keys = [s.key for s in sessions]
    if len(set(keys)) != len(keys):
        raise ValueError("session keys must be unique")
    reasons: dict[str, str] = {}
    usable = []
    fixed = {s: s.fixed_a for s in sessions if s.fixed_a is not None}
    for s in sessions:
        if s.fixed_a is not None:
            reasons[s.key] = "fixed: its charger cannot take a new value now"
        elif s.max_a < s.min_a:
            reasons[s.key] = "paused: the charger's maximum is below its minimum"
        else:
            usable.append(s)
    ceiling = {s: _ceiling(s, state, config) for s in usable}
    load = _Load(limit, nominal_voltage_v)

    if limit.current_a is None and limit.power_w is None:
        amps = {s: s.max_a for s in usable}
        reasons.update({s.key: "no site limit: charger maximum" for s in usable})
    else:
        admitted = _admit(usable, fixed, load, state, now, config)
        shares = _shares_load(load, admitted, fixed, config.newcomer_reserve_a)
        amps = _share(admitted, fixed, ceiling, shares)
        amps = {s: _round_down(a, config.step_a) for s, a in amps.items()}
        held = _hold(amps, fixed, ceiling, state, (load, shares), config, (limit, now))
        for s in usable:
            reasons[s.key] = _reason(s, amps.get(s, 0.0), ceiling[s], s in held)

    amps.update(fixed)
    allocations = {s.key: Allocation(amps.get(s, 0.0), reasons[s.key]) for s in sessions}
    state = _next_state(allocations, state, now, limit)
    return AllocationResult(MappingProxyType(allocations), dataclasses.replace(
        state, ceiling_a=_frozen({s.key: c for s, c in ceiling.items()}),
        terms=MappingProxyType({s.key: (s.weight, s.priority) for s in sessions})))


def _ceiling(s: SessionDemand, state: RotationState, config: AllocatorConfig) -> float:
    """The session's maximum, lowered to its draw plus a margin when it uses clearly less than offered."""
    offered = s.offered_a if s.offered_a is not None else state.allocated_a.get(s.key)
    if s.measured_a is None or offered is None or offered <= 0:
        return s.max_a
    if s.measured_a < offered - config.headroom_threshold_a:
        return max(s.min_a, min(s.max_a, s.measured_a + config.headroom_margin_a))
    return s.max_a


def _admit(
    sessions: Iterable[SessionDemand],
    fixed: Mapping[SessionDemand, float],
    load: _Load,
    state: RotationState,
    now: float,
    config: AllocatorConfig,
) -> list[SessionDemand]:
    """Choose who charges: highest priority first, then by turn, as many as fit at their minimum.

    Within a priority: sessions resumed less than a rotation period ago keep running; then those
    paused for a rotation period or longer (longest first); then the other running sessions, the
    longest-running last so it is the one paused; then the other paused sessions. Ties go to the
    session that costs least power, so the fewest are paused.
    """

    def order(s: SessionDemand) -> tuple:
        running = state.allocated_a.get(s.key, 0.0) > 0
        if running:
            since = state.running_since.get(s.key, now)
            group = 0 if now - since < config.rotation_period_s else 2
            turn = -since  # most recently resumed first
        else:
            since = state.paused_since.get(s.key, now)
            group = 1 if now - since >= config.rotation_period_s else 3
            turn = since  # longest waiting first
        return (-s.priority, group, turn, s.min_a * s.phases, s.key)

    def margin(s: SessionDemand) -> float:
        # Only a session the allocator paused, and whose turn has not come, must see room to
        # spare: a limit hovering at the threshold then cannot pause and resume it every run.
        since = state.paused_since.get(s.key)
        waiting = since is not None and state.allocated_a.get(s.key, 0.0) <= 0
        return config.resume_margin_a if waiting and now - since < config.rotation_period_s else 0.0

    admitted: dict[SessionDemand, float] = dict(fixed)
    for s in sorted(sessions, key=order):
        trial = dict(admitted)
        trial[s] = s.min_a + margin(s)
        if load.fits(trial):
            admitted[s] = s.min_a
    return [s for s in admitted if s not in fixed]


def _share(
    admitted: list[SessionDemand], fixed: Mapping[SessionDemand, float], ceiling: Mapping[SessionDemand, float], load: _Load
) -> dict[SessionDemand, float]:
    """Fill each priority level in turn: a common level x weight per session, clamped to min..ceiling."""
    amps = {**fixed, **{s: s.min_a for s in admitted}}
    for priority in sorted({s.priority for s in admitted}, reverse=True):
        tier = [s for s in admitted if s.priority == priority]
        low, high = 0.0, max(ceiling[s] / s.weight for s in tier)
        if load.fits(_fill(amps, tier, ceiling, high)):
            low = high
        else:
            for _ in range(50):  # bisection: the load grows with the level
                mid = (low + high) / 2
                low, high = (mid, high) if load.fits(_fill(amps, tier, ceiling, mid)) else (low, mid)
        amps = _fill(amps, tier, ceiling, low)
    return {s: a for s, a in amps.items() if s not in fixed}


def _fill(
    amps: Mapping[SessionDemand, float], tier: list[SessionDemand], ceiling: Mapping[SessionDemand, float], level: float
) -> dict[SessionDemand, float]:
    filled = dict(amps)
    filled.update({s: min(ceiling[s], max(s.min_a, s.weight * level)) for s in tier})
    return filled


def _hold(
    amps: dict[SessionDemand, float],
    fixed: Mapping[SessionDemand, float],
    ceiling: Mapping[SessionDemand, float],
    state: RotationState,
    loads: tuple[_Load, _Load],
    config: AllocatorConfig,
    limit_now: tuple[SiteLimit, float],
) -> set[SessionDemand]:
    """Keep running sessions at their previous amps where a change is not worth a profile write.

    On a new limit every session is re-shared (changes under the hysteresis aside). While the
    limit is unchanged a running session keeps its value when others come and go: newcomers
    take what is free (down to their minimum); if even that does not fit they wait, paused, for
    up to `newcomer_wait_s` (where `newcomer_wait_min_running` or more sessions would otherwise be
    rewritten: a pause and a resume are two writes); then the running sessions are re-shared, all
    at once (of `shares`: the limit less the newcomer reserve).
    """
    (load, shares), (limit, now) = loads, limit_now
    # A new limit, or an operator's new weight or priority for a session: everyone is re-shared.
    new_limit = state.limit != limit or any(
        state.terms.get(s.key, (s.weight, s.priority)) != (s.weight, s.priority) for s in amps)
    held = _small_changes(amps, ceiling, state, config, new_limit)
    fresh = [s for s, a in amps.items() if a > 0 and s not in held and state.allocated_a.get(s.key, 0.0) <= 0]
    if not new_limit and not load.fits({**fixed, **amps, **held}):
        # Passing on what others freed is never worth a cut (a car whose cap came off takes it back).
        held.update({s: state.allocated_a[s.key] for s, a in amps.items()
                     if 0 < state.allocated_a.get(s.key, 0.0) < a and s not in held
                     and state.ceiling_a.get(s.key, s.max_a) >= ceiling[s]})
    if not new_limit and fresh and not load.fits({**fixed, **amps, **held}):
        running = sum(1 for s in amps if state.allocated_a.get(s.key, 0.0) > 0)
        if running >= config.newcomer_wait_min_running and not load.fits(
                {**fixed, **amps, **held, **{s: s.min_a for s in fresh}}):
            waiting = [s for s in fresh if now - state.paused_since.get(s.key, now) < config.newcomer_wait_s]
            amps.update({s: 0.0 for s in waiting})  # no current free for them yet
            fresh = [s for s in fresh if s not in waiting]
        if not fresh:
            pass
        elif load.fits({**fixed, **amps, **held, **{s: s.min_a for s in fresh}}):  # they take what is free
            amps.update(_squeeze(amps, fresh, {**fixed, **amps, **held}, load, config.step_a))
        else:  # they waited long enough: everyone is re-shared
            amps.update(_reshare(amps, fixed, ceiling, load, shares, config.step_a))
            held = {}
    trial = {**fixed, **amps, **held}
    if not load.fits(trial):
        # Keeping a higher value broke a limit: only keep those that stay lower.
        held = {s: v for s, v in held.items() if v < amps[s]}
    amps.update(held)
    return set(held)


def _small_changes(amps: Mapping[SessionDemand, float], ceiling: Mapping[SessionDemand, float],
                   state: RotationState, config: AllocatorConfig, new_limit: bool) -> dict[SessionDemand, float]:
    """The running sessions whose change is not worth a write, at their previous amps."""
    held: dict[SessionDemand, float] = {}
    for s, a in amps.items():
        previous = state.allocated_a.get(s.key, 0.0)
        if not 0 < previous <= s.max_a or a <= 0 or previous == a:
            continue
        if new_limit:
            keep = abs(a - previous) < config.hysteresis_a or 0 < a - previous < config.raise_hysteresis_a
        elif a < previous:
            keep = ceiling[s] >= previous  # a cut for others' sake: only if the limit needs it
        else:
            keep = a - previous < max(config.raise_hysteresis_a, config.steady_raise_fraction * previous)
        if keep:
            held[s] = previous
    return held


def _squeeze(amps: Mapping[SessionDemand, float], fresh: list[SessionDemand],
             base: Mapping[SessionDemand, float], load: _Load, step_a: float) -> dict[SessionDemand, float]:
    """The newcomers' amps lowered together (not below their minimum) until they fit beside `base`."""
    def at(level: float) -> dict[SessionDemand, float]:
        return {s: max(s.min_a, min(amps[s], level)) for s in fresh}
    low, high = 0.0, max(amps[s] for s in fresh)
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if load.fits({**base, **at(mid)}) else (low, mid)
    return {s: _round_down(a, step_a) for s, a in at(low).items()}


def _shares_load(load: _Load, admitted: list[SessionDemand], fixed: Mapping[SessionDemand, float],
                 reserve_a: float) -> _Load:
    """The limit the shares are made of: the site limit less the newcomer reserve, as far as the
    admitted sessions' minimums leave room for it."""
    if reserve_a <= 0:
        return load
    at_min = {**fixed, **{s: s.min_a for s in admitted}}
    limit = load.limit
    for reserve in (reserve_a, reserve_a / 2):
        smaller = _Load(SiteLimit(
            None if limit.current_a is None else max(0.0, limit.current_a - reserve),
            None if limit.power_w is None else max(0.0, limit.power_w - 3 * reserve * load.voltage_v)),
            load.voltage_v)
        if smaller.fits(at_min):
            return smaller
    return load


def _reshare(amps: Mapping[SessionDemand, float], fixed: Mapping[SessionDemand, float],
             ceiling: Mapping[SessionDemand, float], load: _Load, shares: _Load, step_a: float) -> dict[SessionDemand, float]:
    """Everyone's fair share again (of `shares`: the limit less the reserve), within the limit."""
    fair = _share([s for s, a in amps.items() if a > 0], fixed, ceiling, shares)
    fair = {s: _round_down(a, step_a) for s, a in fair.items()}
    return fair if load.fits({**fixed, **amps, **fair}) else dict(amps)


def _reason(s: SessionDemand, amps: float, ceiling: float, held: bool) -> str:
    if amps == 0:
        return "paused: the limit cannot give it its minimum now; it gets a turn by rotation"
    if held:
        return "held: change smaller than the hysteresis"
    if ceiling < s.max_a and amps >= ceiling - _EPS:
        return "capped near its draw: it uses less than offered, the rest goes to others"
    if amps >= s.max_a - _EPS:
        return "at its maximum"
    if amps <= s.min_a + _EPS:
        return "at its minimum"
    return "fair share" if s.weight == 1 else "weighted share"


def _round_down(amps: float, step: float) -> float:
    steps = int(amps / step + 1e-6)
    return round(steps * step, 6)


def _next_state(allocations: Mapping[str, Allocation], state: RotationState, now: float,
                limit: SiteLimit) -> RotationState:
    paused_since: dict[str, float] = {}
    running_since: dict[str, float] = {}
    for key, allocation in allocations.items():
        was_running = state.allocated_a.get(key, 0.0) > 0
        if allocation.paused:
            paused_since[key] = state.paused_since.get(key, now) if not was_running else now
        else:
            running_since[key] = state.running_since.get(key, now) if was_running else now
    return RotationState(
        paused_since=_frozen(paused_since),
        running_since=_frozen(running_since),
        allocated_a=_frozen({k: a.amps for k, a in allocations.items()}),
        limit=limit,
    )
