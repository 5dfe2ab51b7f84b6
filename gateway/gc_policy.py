"""Garbage-collector policy for a gateway holding thousands of connections and BACnet objects.

Measured (docs/benchmarks.md): with 1,000 chargers and 45,000 BACnet objects, CPython's full
collections paused the loop for 0.75-0.86 s, which was the whole COV and ReadPropertyMultiple
tail. Objects that survive a while (stations, points, BACnet objects, sessions) are moved out of
the collector's view with `gc.freeze()` after a collection, so automatic collections only scan
what is new. Frozen often (every 2 s by default), so a reconnect storm's objects are out of view
within seconds and no collection walks them again. Every `full_every_s` the frozen set is released
and collected once, so cyclic garbage that was frozen (closed sessions) cannot pile up: one pause
per hour instead of many.
"""

from __future__ import annotations

import gc

# Unreachable objects one young collection must find for the next freeze to collect again.
GARBAGE_WORTH_A_WALK = 1000


class GcPolicy:
    def __init__(self, freeze_every_s: float, full_every_s: float = 3600.0, walk_every_s: float = 30.0) -> None:
        self.freeze_every_s = freeze_every_s
        self.full_every_s = full_every_s
        self.walk_every_s = walk_every_s
        self._last_freeze = self._last_full = None  # type: float | None
        self._last_walk = 0.0
        self._garbage_found = GARBAGE_WORTH_A_WALK  # until a collection says otherwise

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
        """Called from housekeeping: freeze what is new; release and collect everything hourly.

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
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._last_full = self._last_freeze = self._last_walk = now
        elif now - self._last_freeze >= self.freeze_every_s:
            # Never a full collection here: it scanned a storm's thousands of new sessions at once
            # (a 0.3 s stall right after a 1,000-charger storm).
            if self._garbage_found >= GARBAGE_WORTH_A_WALK or now - self._last_walk >= self.walk_every_s:
                self._garbage_found = gc.collect(0)
                self._last_walk = now
            gc.freeze()
            self._last_freeze = now
