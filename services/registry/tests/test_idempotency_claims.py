"""The kit's Idempotency-Key claims on the registry's database (MongoDB-wire server): the first request claims the
key, a concurrent one waits for its answer or is refused, a crashed holder's claim is taken over after the
timeout, and failed work gives the key back."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from ksbb_kit.clock import ManualClock
from ksbb_kit.errors import ApiError
from ksbb_kit.http import Claim, IdempotencyStore, StoredResponse

pytestmark = pytest.mark.integration

TIMEOUT = timedelta(seconds=30)


@pytest.fixture
def store(service_app: tuple[Any, httpx.AsyncClient], clock: ManualClock) -> IdempotencyStore:
    """A store on the module service's database, on its manual clock, polling quickly."""
    db = service_app[0].state.runtime.db
    return IdempotencyStore(db, clock, timedelta(hours=48), claim_timeout=TIMEOUT, poll_seconds=0.01)


async def test_a_concurrent_request_with_the_same_body_waits_for_the_first_answer(store: IdempotencyStore) -> None:
    first = await store.claim("caller", "op", "wait-key", "hash-a")
    assert isinstance(first, Claim)
    runs = 0

    async def work() -> tuple[int, Any]:
        nonlocal runs
        runs += 1
        return 201, {"ran": "second"}

    waiting = asyncio.create_task(store.once("caller", "op", "wait-key", "hash-a", work))
    await asyncio.sleep(0.05)  # the waiter polls while the first request still works
    assert not waiting.done()
    await store.complete(first, 201, {"ran": "first"})
    answer = await asyncio.wait_for(waiting, timeout=10)
    assert answer == StoredResponse(201, {"ran": "first"}, replayed=True) and runs == 0


async def test_another_body_under_a_claimed_key_is_refused_at_once(store: IdempotencyStore) -> None:
    assert isinstance(await store.claim("caller", "op", "body-key", "hash-a"), Claim)
    with pytest.raises(ApiError) as refused:
        await store.claim("caller", "op", "body-key", "hash-b")
    assert (refused.value.status, refused.value.body.code, refused.value.body.field) == (
        422,
        "idempotency_key_reused",
        "Idempotency-Key",
    )


async def test_a_crashed_holders_claim_is_taken_over_after_the_timeout(
    store: IdempotencyStore, clock: ManualClock
) -> None:
    crashed = await store.claim("caller", "op", "crash-key", "hash-a")
    assert isinstance(crashed, Claim)
    clock.advance(TIMEOUT)
    try:
        answer = await asyncio.wait_for(
            store.once("caller", "op", "crash-key", "hash-a", _answer(201, {"by": "successor"})), timeout=10
        )
    finally:
        clock.advance(-TIMEOUT)
    assert answer == StoredResponse(201, {"by": "successor"})
    # The crashed holder, had it only been slow, can no longer overwrite the answer given.
    await store.complete(crashed, 500, {"by": "late holder"})
    assert await store.claim("caller", "op", "crash-key", "hash-a") == StoredResponse(
        201, {"by": "successor"}, replayed=True
    )


async def test_failed_work_gives_the_key_back_for_a_retry(store: IdempotencyStore) -> None:
    async def failing() -> tuple[int, Any]:
        raise RuntimeError("database unreachable")

    with pytest.raises(RuntimeError):
        await store.once("caller", "op", "retry-key", "hash-a", failing)
    answer = await store.once("caller", "op", "retry-key", "hash-a", _answer(201, {"try": 2}))
    assert answer == StoredResponse(201, {"try": 2})


async def test_keys_are_per_caller_and_operation(store: IdempotencyStore) -> None:
    answers = await asyncio.gather(
        store.once("caller-1", "op", "shared-key", "hash-a", _answer(201, {"caller": 1})),
        store.once("caller-2", "op", "shared-key", "hash-b", _answer(201, {"caller": 2})),
        store.once("caller-1", "other-op", "shared-key", "hash-c", _answer(201, {"caller": 3})),
    )
    assert [a.body["caller"] for a in answers] == [1, 2, 3] and not any(a.replayed for a in answers)


def _answer(status: int, body: dict[str, Any]) -> Any:
    async def work() -> tuple[int, Any]:
        return status, body

    return work
