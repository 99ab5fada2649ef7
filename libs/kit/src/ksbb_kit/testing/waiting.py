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


def awaiting_chain(task: asyncio.Task[Any]) -> list[str]:
    """Where a pending task waits: each coroutine frame down its await chain, outermost first.

    `Task.get_stack` shows only the outermost frame of a suspended coroutine; a hung request is only
    explained by the innermost `await` (a lock, a future, a socket read), so the chain is walked by hand.
    """
    chain: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            chain.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        following = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        if following is None and frame is None:
            chain.append(repr(awaited)[:200])
        awaited = following
    return chain


async def finish_within(tasks: list[asyncio.Task[Any]], seconds: float, *, what: str) -> None:
    """Wait for `tasks` to end; after `seconds`, cancel the rest and fail with where each of them waited."""
    _, pending = await asyncio.wait(tasks, timeout=seconds)
    if not pending:
        return
    where = {task.get_name(): awaiting_chain(task) for task in pending}
    for task in pending:
        task.cancel()
    await asyncio.wait(pending, timeout=5)
    stuck = "\n".join(f"{name}:\n    " + "\n    ".join(chain) for name, chain in where.items())
    raise AssertionError(f"{len(pending)} of {len(tasks)} {what} did not end within {seconds:.0f}s:\n{stuck}")
