"""The benchmarks' helper processes (BACnet client, charger fleets) take one JSON request a line
on stdin and answer each with one JSON line on stdout, so a benchmark drives them step by step."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def requests() -> AsyncIterator[dict[str, Any]]:
    """Say ready, then yield each request line until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    emit({"ready": True})
    while line := await reader.readline():
        yield json.loads(line)
