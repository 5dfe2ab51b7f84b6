"""Malformed BMS traffic logged once per peer and minute, not a traceback per packet.

16,000 malformed datagrams to the BACnet port wrote 7 MB of tracebacks (issue 14 item 11): a
peer that sends garbage is worth one line a minute, with a count of what was left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

WINDOW_S = 60.0


class PeerLog:
    """Warns about one peer at most once per WINDOW_S; the next line counts the ones left out."""

    def __init__(self, logger: logging.Logger, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.clock = clock
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warn(self, peer: str, text: str) -> bool:
        """Log `text` for `peer` unless it was logged within the window; True when logged."""
        now = self.clock()
        if now - self._last.get(peer, -WINDOW_S) < WINDOW_S:
            self._skipped[peer] = self._skipped.get(peer, 0) + 1
            return False
        skipped = self._skipped.pop(peer, 0)
        self._last[peer] = now
        if len(self._last) > 10_000:  # many peers: forget the oldest rather than grow for ever
            for old in sorted(self._last, key=self._last.__getitem__)[:5_000]:
                self._last.pop(old, None)
        more = f" ({skipped} more from this peer in the last minute)" if skipped else ""
        self.logger.warning("%s: %s%s", peer, text, more)
        return True
