"""The web-page benchmark runs (a handful of chargers; the figures are in docs/benchmarks.md)."""

from __future__ import annotations

from bench.web_pages import PATHS, measure


async def test_the_web_page_benchmark_measures_every_page():
    result = await measure(5, 1)
    assert result["chargers"] == 5
    assert all(result[path]["kB"] > 0 for path in PATHS)
