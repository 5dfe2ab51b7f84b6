"""The compatibility suite's `runner`: the shared one, and it stops the simulators it started."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.compat.harness import CompatRunner


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[CompatRunner]:
    r = CompatRunner(tmp_path)
    yield r
    await r.stop()
