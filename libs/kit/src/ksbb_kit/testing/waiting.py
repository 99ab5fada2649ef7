"""Polling helper for tests whose effects propagate asynchronously (events, relays, sweeps)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any] | Any], *, within: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Call `check` until it returns a truthy value and return that value; fail after `within` seconds.

    `check` may be sync or async; an exception it raises counts as "not yet" and is reported on time-out.
    """
    deadline = time.monotonic() + within
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            last_error = None
        except AssertionError as exc:
            last_error = exc
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f": last error {last_error!r}" if last_error is not None else ""
            raise AssertionError(f"{what} did not hold within {within:.0f}s{detail}")
        await asyncio.sleep(interval)
