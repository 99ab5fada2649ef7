"""Waiting for a wake-up never swallows a cancellation: a service's loops end when it stops."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from ksbb_kit.wakeup import next_item, woken

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]
SOURCES = [*ROOT.glob("libs/*/src"), *ROOT.glob("services/*/src"), *ROOT.glob("frontends/*/src")]


async def cancelled_as_it_is_woken(loop: Callable[[], Awaitable[None]], wake: Callable[[], None]) -> bool:
    """Whether a task running `loop` ends when it is cancelled right after `wake` (before it runs again)."""
    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    wake()
    task.cancel()  # in the same step: the wake-up is there, the loop has not resumed yet
    done, _ = await asyncio.wait([task], timeout=2)
    if not done:
        task.cancel()
    return bool(done)


async def test_woken_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await woken(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await woken(event, 5) is True
    assert await woken(event, 0) is True, "already set: no wait at all"


async def test_a_loop_waiting_for_wake_ups_ends_when_cancelled_as_it_is_woken() -> None:
    event = asyncio.Event()

    async def serve() -> None:
        while True:
            event.clear()
            await woken(event, 30)

    assert await cancelled_as_it_is_woken(serve, event.set)


async def test_next_item_leaves_the_item_queued_when_cancelled_as_it_arrives() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    taken: list[int] = []
    assert await next_item(queue, 0.01) is None

    async def stream() -> None:
        while True:
            item = await next_item(queue, 30)
            if item is not None:
                taken.append(item)

    assert await cancelled_as_it_is_woken(stream, lambda: queue.put_nowait(7))
    assert (taken, queue.qsize()) == ([], 1), "the item is neither lost nor taken by a cancelled reader"
    assert await next_item(queue, 1) == 7


def test_no_source_waits_for_an_event_or_a_queue_with_wait_for() -> None:
    """`asyncio.wait_for(x.wait() | x.get(), ...)` loses a cancellation on Python 3.11: use ksbb_kit.wakeup."""
    found = []
    for source in SOURCES:
        for path in source.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "wait_for"
                        and node.args and isinstance(node.args[0], ast.Call)
                        and isinstance(node.args[0].func, ast.Attribute) and node.args[0].func.attr in {"wait", "get"}):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert SOURCES and found == []
