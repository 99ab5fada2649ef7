"""The MongoDB projection store applies exactly the domain's merge rule, in any order and concurrently."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest
from ksbb_contracts.events import MatchAccepted, MatchProposed, OfferCreated, ProposedAllocation
from ksbb_contracts.vocab import Item, RecipientStatus
from ksbb_kit.mongo import connect
from ksbb_kit.testing.infra import Infra
from ksbb_publisher.adapters.projection_store import MongoProjectionStore
from ksbb_publisher.adapters.read_models import MongoReadModels
from ksbb_publisher.domain.projection import (
    READ_MODELS,
    REVISION,
    VersionedPart,
    fold,
    ledger_part,
    need_part,
    offer_change,
    offer_created_change,
    organisation_part,
    recipient_part,
)

from .support import NOW, ledger, minutes, need, organisation, recipient

pytestmark = pytest.mark.integration

GAMBIR = "31.71.01.1001"


def parts() -> list[VersionedPart]:
    """Several versions of an organisation and a recipient, and a need written by two topics."""
    found: list[VersionedPart] = [organisation_part(organisation("org_1", f"Yayasan v{v}", v)) for v in (1, 2, 5)]
    for v, status in ((1, RecipientStatus.REGISTERED), (2, RecipientStatus.ACTIVE), (4, RecipientStatus.SUSPENDED)):
        found.append(recipient_part(recipient("rcp_1", "org_1", GAMBIR, f"RW v{v}", version=v, status=status), NOW))
    found += [need_part(need("need_1", "rcp_1", "org_1", GAMBIR, quantity=10 * v, version=v), NOW) for v in (1, 3)]
    found += [
        ledger_part(ledger("need_1", "rcp_1", requested=30, committed=v, delivered=v, version=v), NOW)
        for v in (1, 2, 6)
    ]
    return found


async def stored(db: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """Every read-model document by (model, id), without the store's revision token."""
    return {(name, d["_id"]): d for name in READ_MODELS async for d in db[name].find({}, {REVISION: 0})}


async def test_every_order_and_concurrent_application_ends_in_the_domain_result(infra: Infra) -> None:
    client = connect(infra.mongodb_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_projection_store"]
    expected = fold(parts())
    try:
        for seed in range(4):
            for name in READ_MODELS:
                await db.drop_collection(name)
            store = MongoProjectionStore(db)
            order = parts() * 2  # every event redelivered once
            random.Random(seed).shuffle(order)
            if seed % 2:
                await asyncio.gather(*(store.apply_part(p) for p in order))
            else:
                for part in order:
                    await store.apply_part(part)
            assert await stored(db) == expected, seed
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_offer_changes_apply_once_per_event_in_offer_order(infra: Infra) -> None:
    client = connect(infra.mongodb_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_offers"]
    try:
        store = MongoProjectionStore(db)
        created = OfferCreated(
            offer_id="off_1", donor_id="donor_1", item=Item.SEMBAKO, quantity=5, area_codes=["31.71"],
            available_until=NOW.date(), occurred_at=NOW,
        )
        proposed = MatchProposed(
            offer_id="off_1", donor_id="donor_1", occurred_at=NOW + minutes(1),
            allocations=[ProposedAllocation(need_id="need_1", recipient_id="rcp_1", quantity=5)],
        )
        accepted = MatchAccepted(offer_id="off_1", donor_id="donor_1", pledge_ids=["plg_1"], occurred_at=NOW)
        assert await store.apply_offer(offer_created_change(created, "evt_1"))
        assert await store.apply_offer(offer_change(proposed, "evt_2"))
        assert not await store.apply_offer(offer_change(proposed, "evt_2"))  # a redelivery
        offer = await db.offers.find_one({"_id": "off_1"})
        assert offer is not None
        assert (offer["status"], offer["quantity"], offer["area_codes"]) == ("proposed", 5, ["31.71"])
        assert await store.apply_offer(offer_change(accepted, "evt_3"))
        assert (await db.offers.find_one({"_id": "off_1"}) or {})["status"] == "accepted"
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_concurrent_batches_of_two_replicas_end_in_the_domain_result(infra: Infra) -> None:
    client = connect(infra.mongodb_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_batches"]
    expected = fold(parts())
    try:
        for seed in range(3):
            for name in READ_MODELS:
                await db.drop_collection(name)
            first, second = MongoProjectionStore(db), MongoProjectionStore(db)
            await first.ensure_indexes()  # the unique revision index makes each conditional write a lookup
            events = parts() * 2
            random.Random(seed).shuffle(events)
            batches = [events[i : i + 3] for i in range(0, len(events), 3)]
            # Both replicas apply every batch at the same time: each write races the other's.
            await asyncio.gather(*(store.apply_parts(batch) for batch in batches for store in (first, second)))
            assert await stored(db) == expected, seed
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_the_read_models_fingerprint_changes_when_a_repair_keeps_the_ledger_version(infra: Infra) -> None:
    """Export ETags come from the fingerprint: a same-version repair (other figures) must not answer 304."""
    client = connect(infra.mongodb_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_fingerprint"]
    try:
        store, read_models = MongoProjectionStore(db), MongoReadModels(db)
        await store.apply_part(ledger_part(ledger("need_1", "rcp_1", requested=30, committed=7, version=3), NOW))
        before = await read_models.revision()
        await store.apply_part(ledger_part(ledger("need_1", "rcp_1", requested=30, committed=9, version=3), NOW))
        assert (await db.needs.find_one({"_id": "need_1"}) or {})["progress"]["committed"] == 9, "repaired"
        assert await read_models.revision() != before
    finally:
        await client.drop_database(db.name)
        await client.close()
