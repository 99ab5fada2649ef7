"""Integration: duplicate keys are claimed, confirmed and released in batches (one write each in the common
case) with the same outcomes as one key at a time."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any
from unittest.mock import ANY

import pytest
from ksbb_kit.clock import ManualClock
from ksbb_kit.mongo import connect
from ksbb_registry.adapters.claims import AWAITING, ClaimStore, is_confirmed
from ksbb_registry.settings import RegistrySettings
from pymongo import monitoring

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
    assert {k: (c["recipient_id"], is_confirmed(c)) for k, c in stored.items()} == {
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
    # (Every write that changes a claim's holder sets the holder it awaits with it, as a takeover does.)
    await registry_db["recipient_claims"].update_one(
        {"_id": last}, {"$set": {"recipient_id": "rcp_other", AWAITING: ["rcp_other"]}}
    )
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


async def test_a_confirmation_never_confirms_a_claim_taken_over_by_another_recipient(
    store: ClaimStore, registry_db: Any, clock: ManualClock
) -> None:
    (key,) = keys(1)
    assert (await store.claim_many([key], "rcp_slow"))[0].new
    # rcp_slow never wrote its recipient within the grace period: the next claimant takes the key over.
    clock.advance(timedelta(seconds=RegistrySettings().claim_grace_seconds + 1))
    taken = await store.claim(key, "rcp_next")
    assert (taken.held, taken.new) == (True, True)
    # rcp_slow's late confirmation reports the key lost and leaves rcp_next's claim awaiting its recipient
    # (confirmed, a crash of rcp_next before its write would leave a claim the sweep never looks at).
    assert await store.confirm([key], "rcp_slow") == [key]
    claim = await registry_db["recipient_claims"].find_one({"_id": key})
    assert claim["recipient_id"] == "rcp_next" and not is_confirmed(claim)
    assert await store.confirm([key], "rcp_next") == []
    assert is_confirmed(await registry_db["recipient_claims"].find_one({"_id": key}))


async def test_a_claim_written_by_older_code_is_confirmed_and_swept_like_a_new_one(
    store: ClaimStore, registry_db: Any, clock: ManualClock
) -> None:
    older, orphan = keys(2)
    stale_since = clock.now() - timedelta(seconds=RegistrySettings().claim_grace_seconds + 60)
    await registry_db["recipient_claims"].insert_many([
        {"_id": older, "recipient_id": "rcp_older", "claimed_at": clock.now(), "confirmed": False},
        {"_id": orphan, "recipient_id": "rcp_gone", "claimed_at": stale_since, "confirmed": False},
    ])
    assert await store.confirm([older], "rcp_older") == []
    assert is_confirmed(await registry_db["recipient_claims"].find_one({"_id": older}))
    assert await store.sweep() >= 1
    assert await registry_db["recipient_claims"].find_one({"_id": orphan}) is None


class _Filters(monitoring.CommandListener):
    """The filters of the update commands a client sends to `recipient_claims`."""

    def __init__(self) -> None:
        self.filters: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "update" and event.command.get("update") == "recipient_claims":
            self.filters += [dict(update["q"]) for update in event.command["updates"]]

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_confirmations_find_each_claim_by_its_id_alone(
    registry_db: Any, clock: ManualClock, module_env: dict[str, Any]
) -> None:
    # The stand-in server (and any server without a fitting index) scans every claim for a filter that
    # names another field next to `_id`: the confirmation of each registration would grow with history.
    watched = _Filters()
    client = connect(module_env["mongodb_url"], event_listeners=[watched])
    try:
        store = ClaimStore(client[registry_db.name], clock, timedelta(seconds=30), gather_seconds=0.05)
        owners = {f"rcp_ids_{n}_{uuid.uuid4().hex[:6]}": keys(2) for n in range(3)}
        for owner, wanted in owners.items():
            await store.claim_many(wanted, owner)
            store.confirm_soon(wanted, owner)
        await store.confirmations_sent()
        assert await store.confirm(keys(1), "rcp_ids_nothing") == [ANY]  # a key never claimed: lost
    finally:
        await client.close()
    assert len(watched.filters) == 7 and all(list(f) == ["_id"] and isinstance(f["_id"], str) for f in watched.filters)
    stored = [c async for c in registry_db["recipient_claims"].find({"recipient_id": {"$in": list(owners)}})]
    assert len(stored) == 6 and all(is_confirmed(c) for c in stored)


async def test_of_two_recipients_confirming_one_key_together_the_one_not_holding_it_is_reported(
    store: ClaimStore, registry_db: Any, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    (key,) = keys(1)
    await store.claim_many([key], "rcp_late")
    clock.advance(timedelta(seconds=RegistrySettings().claim_grace_seconds + 1))
    assert (await store.claim(key, "rcp_taker")).new
    store.confirm_soon([key], "rcp_late")
    store.confirm_soon([key], "rcp_taker")  # both in one batch
    with caplog.at_level(logging.ERROR, logger="ksbb_registry.adapters.claims"):
        await store.confirmations_sent()
    reported = [r.args[0] for r in caplog.records if "lost duplicate claims" in r.msg]  # type: ignore[index]
    assert reported == ["rcp_late"]
    claim = await registry_db["recipient_claims"].find_one({"_id": key})
    assert claim["recipient_id"] == "rcp_taker" and is_confirmed(claim)
