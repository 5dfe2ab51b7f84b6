"""Garbage-collector policy for a gateway holding thousands of connections and BACnet objects.

Measured (docs/benchmarks.md): with 1,000 chargers and 45,000 BACnet objects, CPython's full
collections paused the loop for 0.75-0.86 s, which was the whole COV and ReadPropertyMultiple
tail. Objects that survive a while (stations, points, BACnet objects, sessions) are moved out of
the collector's view with `gc.freeze()` after a collection, so automatic collections only scan
what is new. Every `full_every_s` the frozen set is released and collected once, so cyclic
garbage that was frozen (closed sessions) cannot pile up: one pause per hour instead of many.
"""

from __future__ import annotations

import gc


class GcPolicy:
    def __init__(self, freeze_every_s: float, full_every_s: float = 3600.0) -> None:
        self.freeze_every_s = freeze_every_s
        self.full_every_s = full_every_s
        self._last_freeze = self._last_full = None  # type: float | None

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
        self._last_freeze = self._last_full = now

    def tick(self, now: float) -> None:
        """Called from housekeeping: collect what is new and freeze it; release all hourly."""
        if not self.enabled or self._last_freeze is None or self._last_full is None:
            return
        if now - self._last_full >= self.full_every_s:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._last_full = self._last_freeze = now
        elif now - self._last_freeze >= self.freeze_every_s:
            gc.collect()  # only unfrozen objects are scanned: cheap
            gc.freeze()
            self._last_freeze = now
