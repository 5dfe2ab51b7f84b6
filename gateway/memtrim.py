"""Give the memory of a burst of large frames back to the system once the burst is over.

Measured with `python -m bench.hostile --probe` (docs/reliability.md, "RSS after the load"):
after the hostile corpus (frames of 100-300 KB among 100,000 small ones) glibc's malloc kept
2.5-3.4 MB more free memory than before it, resident and counted in the RSS. glibc serves the first
block of 128 KiB or more with its own mapping, but when that is freed it raises its mmap
threshold to the block's size, so later large frames (the websocket read buffer, the text,
the decoded JSON's long strings) come from the heap; freed, they stay there between live small
objects and the heap cannot shrink from the top. `malloc_trim(0)` hands the free pages anywhere
in every arena back (madvise), the sqlite writer thread's arena included.

It walks glibc's free lists holding each arena's lock, so it is not run per frame: once, when
no large frame has come for `quiet_s` after one did (a hostile burst, or a charger's queue of
MeterValues after an outage). Chargers' usual frames are far smaller and never trigger it. Off
glibc (musl, macOS, Windows) there is no `malloc_trim`, and `HeapTrim` does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# A frame this long (characters of text, or bytes) leaves a block glibc may keep: its mmap
# threshold starts at 128 KiB and the frame's text, buffer and decoded copy each take about that.
LARGE_FRAME = 64 * 1024
QUIET_S = 5.0


def glibc_malloc_trim() -> Callable[[], int] | None:
    """glibc's `malloc_trim(0)`, or None where the C library has none."""
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc, or no C library to load (Windows)
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return lambda: fn(0)


def rss_kib(pid: int | str = "self") -> int | None:
    """A process's resident memory in KiB (VmRSS of `/proc/PID/status`; this process's by
    default), None where there is none."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class HeapTrim:
    """Notes large frames as they arrive; `tick` trims the heap once a burst of them is over."""

    def __init__(self, clock: Callable[[], float], trim: Callable[[], int] | None,
                 large_frame: int = LARGE_FRAME, quiet_s: float = QUIET_S) -> None:
        self.clock = clock
        self.trim = trim
        self.large_frame = large_frame
        self.quiet_s = quiet_s
        self.trims = 0  # done since start
        self.last_trim_ms: float | None = None  # how long the last one held the loop
        self._last_large: float | None = None  # a large frame not yet followed by a trim

    @classmethod
    def for_this_process(cls, clock: Callable[[], float]) -> HeapTrim:
        return cls(clock, glibc_malloc_trim())

    @property
    def burst_pending(self) -> bool:
        """A large frame came and no trim followed yet."""
        return self._last_large is not None

    def stats(self) -> dict[str, int | float | None]:
        """What the operator sees under `memory` in /api/status."""
        return {"rss_kib": rss_kib(), "heap_trims": self.trims,
                "last_heap_trim_ms": None if self.last_trim_ms is None else round(self.last_trim_ms, 2),
                "heap_trim_available": self.trim is not None}

    def received(self, size: int) -> None:
        """A frame of `size` characters (or bytes) arrived."""
        if size >= self.large_frame and self.trim is not None:
            self._last_large = self.clock()

    def tick(self, now: float) -> bool:
        """Called from housekeeping: trim if large frames came and none for `quiet_s`."""
        if self._last_large is None or now - self._last_large < self.quiet_s or self.trim is None:
            return False
        self._last_large = None
        t0 = time.perf_counter()
        self.trim()
        self.last_trim_ms = (time.perf_counter() - t0) * 1000.0
        self.trims += 1
        log.debug("heap trimmed after a burst of large frames in %.1f ms", self.last_trim_ms)
        return True
