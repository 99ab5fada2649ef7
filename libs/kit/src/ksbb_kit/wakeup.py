"""Waiting for a wake-up with a time limit, in a way that never swallows a cancellation.

On Python 3.11, `asyncio.wait_for(event.wait(), timeout)` loses a cancellation that arrives just as the event
is set: it returns the inner result instead of raising, and a `while True` loop around it runs on through a
shutdown (the service then waits for that task until its stop step gives up). `asyncio.timeout` awaits the
event in the task itself, so a cancellation always reaches it.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

T = TypeVar("T")


async def woken(event: asyncio.Event, within: float) -> bool:
    """Wait until `event` is set or `within` seconds pass; True when it was set."""
    try:
        async with asyncio.timeout(within):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def next_item(queue: asyncio.Queue[T], within: float) -> T | None:
    """The next item of `queue`, or None when none came within `within` seconds (the item stays queued)."""
    try:
        async with asyncio.timeout(within):
            return await queue.get()
    except TimeoutError:
        return None
