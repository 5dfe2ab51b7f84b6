"""The figures of the site-limit soak (`bench/site_soak.py`), from what it recorded.

Kept apart from the driver so each stays readable; every function takes the recording (`Soak`)
and returns plain values for the JSON line.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from typing import Any

from bench.bms_harness import percentiles

TRANSITION_S = 2.0  # a sample this soon after a limit change may still see the old shares
RECEIPT_WINDOW_S = 5.0  # a BMS write not at the controller this soon never got there
PROFILE = "<- SetChargingProfile"


def over_limit(soak: Any) -> dict[str, Any]:
    """Each second: the sum of what the charging sessions' chargers offer against the limit in force.

    Every sample above the limit is counted, as one of:
    * `new_sessions`: within the limit without the sessions no profile applies to yet (a car that
      just started offers the charger's maximum until its share arrives);
    * `lowering_in_flight`: within TRANSITION_S of a limit change and not above the higher of the
      old and the new limit (the cuts are on their way; lower-first keeps the sum under both);
    * `lowering_with_new_sessions`: both at once: within TRANSITION_S of a change, above the
      higher limit only by what sessions no profile applies to yet offer;
    * `violations`: anything else (goal: none).
    """
    kinds: dict[str, list[float]] = {"new_sessions": [], "lowering_in_flight": [],
                                     "lowering_with_new_sessions": [], "violations": []}
    above = []
    for t, offered, limit, unprofiled in soak.samples:
        if limit is None or offered <= limit + 1e-6:
            continue
        above.append(offered - limit)
        change = next((c for c in reversed(soak.limit_changes) if c[0] <= t), None)
        higher = max(change[1], change[2] or 0.0) if change is not None and change[1] is not None \
            and t - change[0] < TRANSITION_S else None
        if offered - unprofiled <= limit + 1e-6:
            kinds["new_sessions"].append(offered - limit)
        elif higher is not None and offered <= higher + 1e-6:
            kinds["lowering_in_flight"].append(offered - limit)
        elif higher is not None and offered - unprofiled <= higher + 1e-6:
            kinds["lowering_with_new_sessions"].append(offered - limit)
        else:
            kinds["violations"].append(offered - limit)
    largest = max(((off, lim) for _t, off, lim, _u in soak.samples if lim is not None),
                  key=lambda pair: pair[0] - pair[1], default=(0.0, 0.0))
    return {"samples": len(soak.samples), "above": len(above),
            "largest_sum_minus_limit_a": round(largest[0] - largest[1], 1),
            **{k: {"count": len(v), "max_excess_a": round(max(v), 1) if v else 0.0} for k, v in kinds.items()}}


def writes_per_session(soak: Any) -> tuple[dict[str, Any], int]:
    """Profile writes of each transaction against the issue's goal: at most 1 + the limit changes
    during it. Also the rejected-write loops (3+ rejections for one transaction).

    A write names its transaction (a TxProfile), or it has none: a TxDefaultProfile on the
    session's connector (a charger whose one slot per connector carries the share) counts for
    the session that ran when the charger got it (from the car's start to the StopTransaction
    answer); one before the session (the start limit) or after it (the slot set back to the
    start limit: that value, arriving when the car had left) counts for no session, only against
    the charger's budget (`writes_per_charger`). Start limits on connector 0 count for none."""
    rows, loops = [], 0
    for sim in soak.sims:
        per_tx: dict[Any, int] = defaultdict(int)
        untied = []  # when the charger got each write to a connector that names no transaction
        when = iter([t for t, line in soak.events[sim.charger_id] if PROFILE in line])
        in_tx = iter(soak.writes_in_tx[sim.charger_id])
        for action, payload in sim.received_calls:
            if action != "SetChargingProfile":
                continue
            at, charging = next(when, time.time()), next(in_tx, True)
            tx_id = payload["csChargingProfiles"].get("transactionId")
            if tx_id is not None:
                per_tx[tx_id] += 1
            elif payload.get("connectorId") and (charging or limits(payload) != [soak.args.start_limit]):
                untied.append(at)  # not the slot set back to the start limit after the car left
        for (charger_id, local_id), tx in soak.started.items():
            if charger_id != sim.charger_id or tx.transaction_id is None:
                continue
            start, stop = soak.sessions[(charger_id, local_id)][0], tx_span(soak, charger_id, tx.transaction_id)[1]
            per_tx[tx.transaction_id] += sum(1 for at in untied if start <= at < stop)
        rejected: dict[str, int] = defaultdict(int)
        for _t, line in soak.events[sim.charger_id]:
            if "unknown transaction" in line or "without an active transaction" in line:
                rejected[line] += 1
        loops += sum(1 for count in rejected.values() if count >= 3)
        for tx_id, writes in per_tx.items():
            start, stop = tx_span(soak, sim.charger_id, tx_id)
            changes = sum(1 for t, _b, _a in soak.limit_changes if start <= t <= stop)
            restarts = sum(1 for t in soak.restarted_at if start < t <= stop)
            rows.append((writes, 1 + changes, restarts))
    over = [w - allowed for w, allowed, _r in rows if w > allowed]
    return {"sessions": len(rows), "max": max((w for w, _a, _r in rows), default=0),
            "within_goal": len(rows) - len(over), "over_goal": len(over),
            "max_over": max(over, default=0), "writes_over_goal": sum(over),
            "sessions_over_goal_that_saw_a_restart": sum(1 for w, a, r in rows if w > a and r)}, loops


def limits(payload: dict[str, Any]) -> list[float]:
    return [float(p["limit"]) for p in payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"]]


def tx_span(soak: Any, charger_id: str, tx_id: int) -> tuple[float, float]:
    """When a transaction ran, from the StartTransaction answer the charger logged."""
    mark = re.compile(rf"transaction_id={tx_id}\b")
    events = soak.events[charger_id]
    times = [t for t, line in events if "StartTransaction" in line and mark.search(line)]
    stops = [t for t, line in events if "StopTransaction" in line and mark.search(line)]
    return (times[0] if times else 0.0), (stops[-1] if stops else time.time())


def receipt(soak: Any, sent: float) -> float | None:
    """When a BMS write sent at `sent` reached the controller; None if it did not (a value the
    point already held, repeated within its refresh interval, goes no further than the point)."""
    return next((r for r in soak.received_at if sent - 0.05 <= r <= sent + RECEIPT_WINDOW_S), None)


def latencies(soak: Any) -> tuple[list[float], list[float], list[float | None]]:
    """Per limit write and charger written by the pass that took it: ms from the BMS client's send
    (and from the write's arrival at the controller) to the SetChargingProfile the charger got
    (its answer follows at once). The pass is the first one that started after the arrival."""
    from_send: list[float] = []
    from_receipt: list[float] = []
    per_write: list[float | None] = []
    for sent, _amps, _via in soak.limit_writes:
        received = receipt(soak, sent)
        window = next(((s, e) for s, e in soak.passes if received is not None and s >= received), None)
        got = []
        if window is not None:
            for events in soak.events.values():
                got += [e for e, line in events if window[0] <= e <= window[1] and PROFILE in line][:1]
        from_send += [(e - sent) * 1000 for e in got]
        from_receipt += [(e - received) * 1000 for e in got if received is not None]
        per_write.append(round(max(got) * 1000 - sent * 1000, 1) if got else None)
    return from_send, from_receipt, per_write


def timeline(soak: Any) -> dict[str, Any]:
    """Where the time of a limit write goes, per write, in ms (p50/p99 over the writes): the BMS
    client's send to the controller's receipt, to the start of the pass that wrote it, to the first
    and the last profile a charger received; and how long passes take."""
    stages: dict[str, list[float]] = defaultdict(list)
    for sent, _amps, _via in soak.limit_writes:
        received = receipt(soak, sent)
        if received is None:
            continue
        stages["send_to_receipt"].append((received - sent) * 1000)
        start = next((s for s, _e in soak.passes if s >= received), None)
        if start is None:
            continue
        stages["receipt_to_pass"].append((start - received) * 1000)
        until = min([start + 10.0, *(t for t, _a, _v in soak.limit_writes if t > sent)])
        end = next((e for s, e in soak.passes if s == start), start)
        firsts = [next((e for e, line in ev if start <= e <= min(end, until) and PROFILE in line), None)
                  for ev in soak.events.values()]
        firsts = [f for f in firsts if f is not None]
        if firsts:  # the profiles that pass wrote
            stages["pass_to_first_profile"].append((min(firsts) - start) * 1000)
            stages["pass_to_last_profile"].append((max(firsts) - start) * 1000)
    stages["pass_duration"] = [(e - s) * 1000 for s, e in soak.passes]
    return {name: percentiles(values) for name, values in stages.items()}


def writes_per_charger(soak: Any, wall_s: float) -> dict[str, Any]:
    counts = {cid: sum(1 for _t, line in ev if PROFILE in line) for cid, ev in soak.events.items()}
    per_hour = {cid: round(n * 3600 / wall_s, 1) for cid, n in counts.items()}
    return {"max_in_run": max(counts.values(), default=0),
            "per_hour_extrapolated_max": max(per_hour.values(), default=0),
            "per_hour_extrapolated_mean": round(sum(per_hour.values()) / max(len(per_hour), 1), 1),
            "budget_per_hour": {"zappi": 26, "others": 60}}
