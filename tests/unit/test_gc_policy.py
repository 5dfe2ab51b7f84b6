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
