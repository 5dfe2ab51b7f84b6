"""The one wait helper of the tests: wait until a condition holds, bounded, on the event loop.

`wait_until(predicate)` re-checks after each `wake` event when one is given (an `asyncio.Event`
set by whatever changes the condition: the registry's events, the controller's changes), else
on every loop turn a few milliseconds apart. The predicate may be a coroutine function (a query
to the history store, a BACnet read). A condition not reached in `timeout` fails the test.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

Predicate = Callable[[], bool | Awaitable[bool]]


async def wait_until(predicate: Predicate, timeout: float = 5.0, *, wake: asyncio.Event | None = None,
                     what: str = "condition", interval: float = 0.01) -> None:
    """Return once `predicate()` is true; AssertionError naming `what` after `timeout` seconds."""

    async def holds() -> bool:
        result = predicate()
        return bool(await result) if inspect.isawaitable(result) else bool(result)

    async def wait() -> None:
        while True:
            if wake is not None:
                wake.clear()
            if await holds():
                return
            if wake is not None:
                await wake.wait()
            else:
                await asyncio.sleep(interval)

    try:
        await asyncio.wait_for(wait(), timeout)
    except TimeoutError:
        raise AssertionError(f"{what} not reached in {timeout:g} s") from None
