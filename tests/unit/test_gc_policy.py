"""The garbage-collector policy freezes survivors on a schedule and releases them hourly."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway.gc_policy import GcPolicy


@pytest.fixture(autouse=True)
def gc_restored() -> Iterator[None]:
    """Each test leaves the collector as it found it: nothing frozen, the same thresholds."""
    before = gc.get_threshold()
    yield
    gc.enable()
    gc.unfreeze()
    gc.set_threshold(*before)


class Collections:
    """The generation of every collection from `watch()` on (a `gc.callbacks` entry)."""

    def __init__(self) -> None:
        self.generations: list[int] = []

    def _seen(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.generations.append(info["generation"])

    def watch(self) -> None:
        gc.callbacks.append(self._seen)

    def stop(self) -> None:
        if self._seen in gc.callbacks:
            gc.callbacks.remove(self._seen)


@pytest.fixture
def collections() -> Iterator[Collections]:
    watched = Collections()
    yield watched
    watched.stop()


def test_survivors_are_frozen_on_schedule_and_released_by_the_hourly_full_collection():
    policy = GcPolicy(freeze_every_s=10, full_every_s=3600)
    policy.start(now=0.0)
    frozen = gc.get_freeze_count()
    assert frozen > 0
    keep = [[i] for i in range(1000)]  # noqa: F841 (new long-lived objects)
    policy.tick(now=5.0)
    assert gc.get_freeze_count() == frozen  # not due yet
    policy.tick(now=10.0)
    assert gc.get_freeze_count() >= frozen + 1000
    policy.tick(now=3600.0)
    assert gc.get_freeze_count() > 0  # released, collected, frozen again


def test_zero_interval_leaves_python_defaults():
    policy = GcPolicy(freeze_every_s=0)
    policy.start(now=0.0)
    policy.tick(now=100.0)
    assert not policy.enabled and gc.get_freeze_count() == 0


def test_young_garbage_is_collected_before_a_freeze_while_there_is_much_of_it():
    """Young cycles are freed, not frozen; once a collection finds little, freezes walk nothing
    until `walk_every_s` has passed (a walk over 60,000 young objects stalled the loop)."""
    policy = GcPolicy(freeze_every_s=2, walk_every_s=30)
    policy.start(now=0.0)
    gc.disable()  # no automatic collection may take the cycles first (collect() still works)
    for _ in range(2000):  # young cyclic garbage
        cycle: list = []
        cycle.append(cycle)
    del cycle
    policy.tick(now=2.0)
    assert policy._garbage_found >= 1000 and policy._last_walk == 2.0  # walked: the cycles are gone
    policy.tick(now=4.0)  # found little last time: walked again (the first quiet one)
    assert policy._last_walk == 4.0 and policy._garbage_found < 1000
    policy.tick(now=6.0)
    assert policy._last_walk == 4.0  # frozen without a walk
    policy.tick(now=34.0)
    assert policy._last_walk == 34.0  # the periodic walk


def _frozen_cycles(count: int) -> None:
    """Cyclic garbage that was alive at the last freeze (a session closed after it)."""
    cycles = []
    for _ in range(count):
        cycle: list = []
        cycle.append(cycle)
        cycles.append(cycle)
    gc.freeze()
    cycles.clear()  # the cycles are garbage now, but frozen


def test_the_hourly_step_collects_a_small_frozen_set():
    policy = GcPolicy(freeze_every_s=2, full_every_s=3600, full_max_frozen=10_000_000)
    policy.start(now=0.0)
    _frozen_cycles(5000)
    frozen = gc.get_freeze_count()
    policy.tick(now=3600.0)
    assert gc.get_freeze_count() <= frozen - 5000  # released, the cycles freed, the rest frozen again
    assert policy.full_skipped == 0


def test_the_hourly_step_never_walks_a_large_frozen_set(collections: Collections):
    """Issue 17: releasing and collecting millions of frozen objects stalls every charger for
    seconds; above `full_max_frozen` the step is skipped and the tick only freezes what is new."""
    policy = GcPolicy(freeze_every_s=2, full_every_s=3600, full_max_frozen=1000)
    generations = collections.generations
    policy.start(now=0.0)
    _frozen_cycles(5000)
    frozen = gc.get_freeze_count()
    collections.watch()
    keep = [[i] for i in range(100)]  # noqa: F841 (new long-lived objects)
    policy.tick(now=3600.0)
    assert policy.full_skipped == 1
    assert 2 not in generations  # no full collection
    assert gc.get_freeze_count() >= frozen + 100  # the frozen garbage stays; the new is frozen
    policy.tick(now=7200.0)
    assert policy.full_skipped == 2 and 2 not in generations


def test_the_periodic_walk_is_a_gen_1_collection(collections: Collections):
    """Young garbage that outlived one young collection is still found before the freeze."""
    policy = GcPolicy(freeze_every_s=2, walk_every_s=30)
    generations = collections.generations
    policy.start(now=0.0)
    policy.tick(now=2.0)  # walked: nothing found yet
    collections.watch()
    policy.tick(now=4.0)  # little garbage found last time: frozen without a walk
    assert generations == [] or max(generations) == 0  # (an automatic young collection at most)
    policy.tick(now=40.0)
    assert 1 in generations and 2 not in generations
