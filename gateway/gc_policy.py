"""Garbage-collector policy for a gateway holding thousands of connections and BACnet objects.

Measured (docs/benchmarks.md): with 1,000 chargers and 45,000 BACnet objects, CPython's full
collections paused the loop for 0.75-0.86 s, which was the whole COV and ReadPropertyMultiple
tail. Objects that survive a while (stations, points, BACnet objects, sessions) are moved out of
the collector's view with `gc.freeze()` after a collection, so automatic collections only scan
what is new. Frozen often (every 2 s by default), so a reconnect storm's objects are out of view
within seconds and no collection walks them again.

Cyclic garbage that was frozen (a session that closed after a freeze) is not seen by any later
collection. Every `full_every_s` the frozen set is released and collected, but only while it is
small (`full_max_frozen` objects): that walk is proportional to everything the process holds,
and at 10,000 chargers (1.5 million frozen objects) it stalled every charger's messages for
1.2 s (docs/benchmarks.md "Issue 17"). Above that size the frozen set is never collected on
the loop. So a closed or refused connection must leave no reference cycle: refcounting frees it
whatever is frozen (tests/integration/test_closed_connections_leave_no_cycles.py counts them
with the collector off; the hostile corpus's frames leave none either). The periodic young walk
is a gen-1 collection, so garbage that outlived one young collection before a freeze is still
found.
"""

from __future__ import annotations

import gc
import os

# Unreachable objects one young collection must find for the next freeze to collect again.
GARBAGE_WORTH_A_WALK = 1000
# The largest frozen set the hourly step releases and collects: about 70 ms of walking. In the
# gateway's own heap one such collection took 0.62-0.76 us per frozen object (584 ms for 0.94
# million, 1,168 ms for 1.54 million at 10,000 chargers); an idle gateway freezes about 80,000
# and each charger adds about 160, so only small sites (up to about 100 chargers) take it.
FULL_MAX_FROZEN = 100_000
# For the benchmark only (like gateway.lagprobe's): make the hourly step due sooner, or let it
# walk any size, to measure its stall at many chargers (docs/benchmarks.md "Issue 17").
BENCH_ENV_FULL_EVERY_S = "OCPP_GATEWAY_GC_FULL_EVERY_S"
BENCH_ENV_FULL_MAX_FROZEN = "OCPP_GATEWAY_GC_FULL_MAX_FROZEN"


class GcPolicy:
    def __init__(self, freeze_every_s: float, full_every_s: float = 3600.0, walk_every_s: float = 30.0,
                 full_max_frozen: int = FULL_MAX_FROZEN) -> None:
        self.freeze_every_s = freeze_every_s
        self.full_every_s = full_every_s
        self.full_max_frozen = full_max_frozen
        self.full_skipped = 0  # hourly steps not taken because the frozen set was too large
        self.walk_every_s = walk_every_s
        self._last_freeze = self._last_full = None  # type: float | None
        self._last_walk = 0.0
        self._garbage_found = GARBAGE_WORTH_A_WALK  # until a collection says otherwise

    @classmethod
    def from_env(cls, freeze_every_s: float) -> GcPolicy:
        """The gateway's policy; the benchmark's environment may override the hourly step."""
        return cls(freeze_every_s, float(os.environ.get(BENCH_ENV_FULL_EVERY_S, 3600.0)),
                   full_max_frozen=int(os.environ.get(BENCH_ENV_FULL_MAX_FROZEN, FULL_MAX_FROZEN)))

    @property
    def enabled(self) -> bool:
        return self.freeze_every_s > 0

    def prepare(self) -> None:
        """At the beginning of a start: the start-up builds tens of thousands of objects that all
        live on (49,000 BACnet objects for 418 chargers), which the default thresholds scan again
        and again (a quarter of the build's time, docs/benchmarks.md "Restart")."""
        if self.enabled:
            gc.set_threshold(50_000, 20, 100)  # fewer young collections at thousands of messages/s

    def start(self, now: float) -> None:
        if not self.enabled:
            return
        self.prepare()
        # The youngest generation only: a fuller collection here scanned most objects of a large
        # site (0.3-0.5 s) just as its BACnet device started answering. Start-up makes little
        # cyclic garbage; what is frozen with it is collected by the hourly full collection.
        gc.collect(0)
        gc.freeze()
        self._last_freeze = self._last_full = self._last_walk = now

    def tick(self, now: float) -> None:
        """Called from housekeeping: freeze what is new; hourly, release and collect a small frozen set.

        Before a freeze the youngest generation is collected, so young cyclic garbage (a closed
        session, a refused handshake) is freed rather than frozen, but only every `walk_every_s`
        while the last such collection found little garbage: at 5,000 chargers the young objects
        are mostly each connection's waiting state, re-made with every message (60,000 of them),
        and walking them stalled the loop 20-150 ms every tick for a dozen garbage objects
        (docs/benchmarks.md). Garbage that is frozen meanwhile waits for the hourly collection.
        """
        if not self.enabled or self._last_freeze is None or self._last_full is None:
            return
        if now - self._last_full >= self.full_every_s:
            self._last_full = now
            if gc.get_freeze_count() <= self.full_max_frozen:
                gc.unfreeze()
                gc.collect()
                gc.freeze()
                self._last_freeze = self._last_walk = now
                return
            self.full_skipped += 1  # a walk of millions of objects: never on the loop
        if now - self._last_freeze >= self.freeze_every_s:
            # Never a full collection here: it scanned a storm's thousands of new sessions at once
            # (a 0.3 s stall right after a 1,000-charger storm).
            if self._garbage_found >= GARBAGE_WORTH_A_WALK:
                self._garbage_found = gc.collect(0)
                self._last_walk = now
            elif now - self._last_walk >= self.walk_every_s:
                # Gen-1 as well: young garbage that outlived one young collection. Both
                # generations hold only what is new since the last freeze.
                self._garbage_found = gc.collect(1)
                self._last_walk = now
            gc.freeze()
            self._last_freeze = now
