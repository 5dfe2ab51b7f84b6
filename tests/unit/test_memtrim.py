"""The heap is trimmed once after a burst of large frames, never per frame and never for small ones."""

from __future__ import annotations

import sys

from gateway.memtrim import LARGE_FRAME, HeapTrim, glibc_malloc_trim


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def counting_trim() -> tuple[HeapTrim, Clock, list[int]]:
    calls: list[int] = []
    clock = Clock()

    def trim() -> int:
        calls.append(1)
        return 1
    return HeapTrim(clock, trim, quiet_s=5.0), clock, calls


def test_one_trim_when_a_burst_of_large_frames_is_over():
    heap, clock, calls = counting_trim()
    for t in (0.0, 1.0, 2.0):  # the burst
        clock.now = t
        heap.received(LARGE_FRAME)
        assert not heap.tick(t)
    assert not heap.tick(6.9)  # 4.9 s after the last large frame: not over yet
    assert heap.tick(7.0) and calls == [1] and heap.trims == 1 and heap.last_trim_ms is not None
    assert not heap.tick(60.0) and calls == [1]  # once per burst


def test_small_frames_never_trim():
    heap, clock, calls = counting_trim()
    for t in range(100):
        clock.now = float(t)
        heap.received(LARGE_FRAME - 1)
        heap.tick(float(t))
    assert calls == [] and not heap.burst_pending


def test_without_a_trim_function_large_frames_are_not_even_noted():
    heap = HeapTrim(Clock(), None)
    heap.received(10 * LARGE_FRAME)
    assert not heap.burst_pending and not heap.tick(100.0)


def test_the_trim_is_glibcs_on_linux_and_absent_elsewhere():
    trim = glibc_malloc_trim()
    if sys.platform == "linux" and trim is not None:  # glibc (musl has no malloc_trim)
        assert trim() in (0, 1)  # 1: memory was given back
    elif sys.platform in ("darwin", "win32"):
        assert trim is None
