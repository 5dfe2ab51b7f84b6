"""How the site-limit soak classes a sample above the limit in force (bench/site_soak_report.py).

Every sample above the limit is counted in exactly one class; none is left out."""

from __future__ import annotations

from types import SimpleNamespace

from bench.site_soak_report import over_limit


def classes(*samples: tuple[float, float, float, float]) -> dict[str, int]:
    """Samples (time, offered, limit, offered by sessions no profile applies to yet); the limit
    changed from 100 A to 60 A at t=10."""
    soak = SimpleNamespace(samples=list(samples), limit_changes=[(0.0, None, 100.0), (10.0, 100.0, 60.0)])
    result = over_limit(soak)
    counts = {k: v["count"] for k, v in result.items() if isinstance(v, dict)}
    assert sum(counts.values()) == result["above"]
    return counts


def test_every_sample_above_the_limit_is_counted_in_one_class():
    assert classes((5.0, 90.0, 100.0, 0.0)) == {"new_sessions": 0, "lowering_in_flight": 0,
                                                "lowering_with_new_sessions": 0, "violations": 0}
    assert classes((5.0, 120.0, 100.0, 32.0))["new_sessions"] == 1  # a car waiting for its share
    assert classes((10.2, 90.0, 60.0, 0.0))["lowering_in_flight"] == 1  # the cuts are on their way
    # The cuts on their way and a car that just started at its charger's maximum: above both
    # limits, but only by what the new car offers.
    assert classes((10.2, 112.0, 60.0, 32.0))["lowering_with_new_sessions"] == 1
    assert classes((10.2, 112.0, 60.0, 0.0))["violations"] == 1  # above both, no new car
    assert classes((13.0, 90.0, 60.0, 0.0))["violations"] == 1  # the cuts should have landed
