"""One warning per peer and minute, with the count of the lines left out (issue 14 item 11)."""

from __future__ import annotations

import logging

from points.peer_log import WINDOW_S, PeerLog


def test_a_peer_is_logged_once_a_minute_and_the_next_line_counts_the_rest(caplog):
    now = [0.0]
    peers = PeerLog(logging.getLogger("test.peers"), clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.peers"):
        assert peers.warn("10.0.0.9", "garbage")
        assert not any(peers.warn("10.0.0.9", "garbage") for _ in range(999))
        assert peers.warn("10.0.0.7", "garbage")  # another peer is its own line
        now[0] = WINDOW_S
        assert peers.warn("10.0.0.9", "garbage")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["10.0.0.9: garbage", "10.0.0.7: garbage",
                     "10.0.0.9: garbage (999 more from this peer in the last minute)"]
