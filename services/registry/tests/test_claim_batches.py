"""Integration: duplicate keys are claimed, confirmed and released in batches (one write each in the common
case) with the same outcomes as one key at a time."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from ksbb_kit.clock import ManualClock
from ksbb_registry.adapters.claims import ClaimStore
from ksbb_registry.settings import RegistrySettings

pytestmark = pytest.mark.integration


@pytest.fixture
def store(registry_db: Any, clock: ManualClock) -> ClaimStore:
    """A claim store on the service's database."""
    return ClaimStore(registry_db, clock, timedelta(seconds=RegistrySettings().claim_grace_seconds))


def keys(count: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"name:batch-{tag}-{n}" for n in range(count)]


async def test_free_keys_are_claimed_at_once_and_confirmed_at_once(store: ClaimStore, registry_db: Any) -> None:
    wanted = keys(2)
    results = await store.claim_many(wanted, "rcp_batch_a")
    assert [(r.key, r.held, r.new) for r in results] == [(k, True, True) for k in wanted]
    assert await store.claim_many(wanted, "rcp_batch_a") == [
        type(results[0])(k, held=True) for k in wanted
    ]  # the same claimant again (a retry): held, not new
    assert await store.confirm(wanted, "rcp_batch_a") == []
    stored = {c["_id"]: c async for c in registry_db["recipient_claims"].find({"_id": {"$in": wanted}})}
    assert {k: (c["recipient_id"], c["confirmed"]) for k, c in stored.items()} == {
        k: ("rcp_batch_a", True) for k in wanted
    }


async def test_a_taken_key_reports_its_holder_and_the_others_are_still_claimed(
    store: ClaimStore, registry_db: Any, clock: ManualClock
) -> None:
    first, taken, last = keys(3)
    # The holder is a live recipient carrying the key: its claim is not stale.
    holder = f"rcp_holder_{uuid.uuid4().hex[:6]}"
    await registry_db["recipients"].insert_one(
        {"_id": holder, "status": "active", "identity_key": taken.removeprefix("name:"), "rw_key": None}
    )
    await registry_db["recipient_claims"].insert_one(
        {"_id": taken, "recipient_id": holder, "claimed_at": clock.now(), "confirmed": True}
    )
    results = await store.claim_many([first, taken, last], "rcp_batch_b")
    assert [(r.key, r.held, r.new, r.holder) for r in results] == [
        (first, True, True, None),
        (taken, False, False, holder),
        (last, True, True, None),
    ]
    # Losing a claim in between is reported by the confirmation; releasing touches only our own.
    await registry_db["recipient_claims"].update_one({"_id": last}, {"$set": {"recipient_id": "rcp_other"}})
    assert await store.confirm([first, last], "rcp_batch_b") == [last]
    await store.release([first, taken, last], "rcp_batch_b")
    remaining = {
        c["_id"]: c["recipient_id"]
        async for c in registry_db["recipient_claims"].find({"_id": {"$in": [first, taken, last]}})
    }
    assert remaining == {taken: holder, last: "rcp_other"}


async def test_an_orphan_claim_past_its_grace_is_taken_over_inside_a_batch(
    store: ClaimStore, registry_db: Any, clock: ManualClock
) -> None:
    free, orphan = keys(2)
    stale_since = clock.now() - timedelta(seconds=RegistrySettings().claim_grace_seconds + 60)
    await registry_db["recipient_claims"].insert_one(
        {"_id": orphan, "recipient_id": "rcp_crashed", "claimed_at": stale_since, "confirmed": False}
    )
    results = await store.claim_many([free, orphan], "rcp_batch_c")
    assert [(r.held, r.new) for r in results] == [(True, True), (True, True)]
    assert (await registry_db["recipient_claims"].find_one({"_id": orphan}))["recipient_id"] == "rcp_batch_c"
