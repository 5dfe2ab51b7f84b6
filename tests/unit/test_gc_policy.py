"""The garbage-collector policy freezes survivors on a schedule and releases them hourly."""

from __future__ import annotations

import gc

from gateway.gc_policy import GcPolicy


def test_survivors_are_frozen_on_schedule_and_released_by_the_hourly_full_collection():
    before = gc.get_threshold()
    policy = GcPolicy(freeze_every_s=10, full_every_s=3600)
    try:
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
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_zero_interval_leaves_python_defaults():
    policy = GcPolicy(freeze_every_s=0)
    policy.start(now=0.0)
    policy.tick(now=100.0)
    assert not policy.enabled and gc.get_freeze_count() == 0


def test_young_garbage_is_collected_before_a_freeze_while_there_is_much_of_it():
    """Young cycles are freed, not frozen; once a collection finds little, freezes walk nothing
    until `walk_every_s` has passed (a walk over 60,000 young objects stalled the loop)."""
    before = gc.get_threshold()
    policy = GcPolicy(freeze_every_s=2, walk_every_s=30)
    try:
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
    finally:
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*before)
