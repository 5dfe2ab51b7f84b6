"""Background tasks of the running gateway: one owner that keeps a reference to each and logs failures.

`asyncio.create_task` keeps only a weak reference (a bare task may vanish mid-run) and a failure
would pass unseen; every part that starts work in the background is handed `TaskSet.spawn`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)
TASK_STOP_TIMEOUT_S = 1.0  # of the 5 s a stop may take; the sockets' close has 2 s
Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]


class TaskSet:
    """The gateway's background tasks; `cancel_all` ends them at stop."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """Start a background task, keep a reference, and log its failure with context."""
        task = asyncio.create_task(coro, name=what)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("task %s failed", what, exc_info=t.exception())
        task.add_done_callback(done)
        return task

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            # Bounded: a task that ignores its cancel must not hang the stop (SIGTERM, Ctrl-C).
            _done, stuck = await asyncio.wait(list(self._tasks), timeout=TASK_STOP_TIMEOUT_S)
            for task in stuck:
                log.error("task %s did not end when cancelled; stopping without it", task.get_name())
