"""Folding a batch of events per document gives what applying them one by one gives (properties)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ksbb_contracts.events import MatchAccepted, MatchDeclined, MatchProposed, OfferCreated
from ksbb_contracts.events.pledges import ProposedAllocation
from ksbb_contracts.vocab import Item
from ksbb_publisher.domain.projection import (
    DocKey,
    OfferChange,
    batch_updates,
    fold,
    fold_offer_changes,
    offer_change,
    offer_created_change,
)

from .support import NOW
from .test_projection_rules import versioned_parts

pytestmark = pytest.mark.unit


def applied(updates: dict[DocKey, dict[str, Any]], state: dict[DocKey, dict[str, Any]]) -> dict[DocKey, dict[str, Any]]:
    """The documents after setting each update's fields (what the store's `$set` does)."""
    result = {key: dict(doc) for key, doc in state.items()}
    for key, fields in updates.items():
        result[key] = {**result.get(key, {"_id": key[1]}), **fields}
    return result


@settings(deadline=None)
@given(st.data())
def test_a_batch_update_on_the_stored_documents_equals_folding_the_events(data: st.DataObject) -> None:
    parts = data.draw(st.permutations(data.draw(versioned_parts())))
    cut = data.draw(st.integers(min_value=0, max_value=len(parts)))
    stored = fold(parts[:cut])
    batch = parts[cut:]
    assert applied(batch_updates(batch, stored), stored) == fold(batch, stored)


@settings(deadline=None)
@given(st.data())
def test_a_batch_writes_only_documents_it_changes(data: st.DataObject) -> None:
    parts = data.draw(versioned_parts())
    stored = fold(parts)
    redelivered = data.draw(st.lists(st.sampled_from(parts), max_size=20))
    assert batch_updates(redelivered, stored) == {}, "a batch of redeliveries and stale events writes nothing"
    updates = batch_updates(parts, {})
    assert set(updates) == set(fold(parts)), "one write per document, however many events it got"


def offer_events(offer_id: str) -> list[Any]:
    """An offer's lifecycle: created, proposed, declined, proposed again, accepted."""
    common = {"offer_id": offer_id, "donor_id": "donor_1", "occurred_at": NOW}
    first = [ProposedAllocation(need_id="need_1", recipient_id="rcp_1", quantity=10)]
    second = [ProposedAllocation(need_id="need_2", recipient_id="rcp_2", quantity=10)]
    return [
        OfferCreated(**common, item=Item.SEMBAKO, quantity=10, area_codes=["31.71"], available_until=NOW.date()),
        MatchProposed(**common, allocations=first),
        MatchDeclined(**common),
        MatchProposed(**common, allocations=second),
        MatchAccepted(**common, pledge_ids=["plg_1"]),
    ]


def changes_of(offer_id: str) -> list[OfferChange]:
    """Each event of the lifecycle as an offer change, with a stable event id."""
    events = offer_events(offer_id)
    return [offer_created_change(events[0], f"{offer_id}_e0")] + [
        offer_change(event, f"{offer_id}_e{i}") for i, event in enumerate(events[1:], start=1)
    ]


def one_by_one(changes: list[OfferChange], state: dict[str, dict[str, Any]], seen: set[str]) -> None:
    """The reference: apply each change unless its event id was applied."""
    for change in changes:
        if change.event_id in seen:
            continue
        seen.add(change.event_id)
        state.setdefault(change.offer_id, {}).update(change.fields)


@settings(deadline=None)
@given(st.data())
def test_offer_changes_folded_in_a_batch_equal_applying_them_once_each_in_order(data: st.DataObject) -> None:
    lifecycles = {offer_id: changes_of(offer_id) for offer_id in ("off_1", "off_2")}
    # Per offer the events keep their order (one Kafka key); offers interleave and redeliveries repeat any.
    batch: list[OfferChange] = []
    cursors = dict.fromkeys(lifecycles, 0)
    while any(cursors[o] < len(lifecycles[o]) for o in cursors):
        offer_id = data.draw(st.sampled_from([o for o in cursors if cursors[o] < len(lifecycles[o])]))
        batch.append(lifecycles[offer_id][cursors[offer_id]])
        cursors[offer_id] += 1
        if data.draw(st.booleans()):
            batch.append(data.draw(st.sampled_from(batch)))  # a redelivery of something earlier
    cut = data.draw(st.integers(min_value=0, max_value=len(batch)))
    state: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    one_by_one(batch[:cut], state, seen)
    expected = {offer_id: dict(doc) for offer_id, doc in state.items()}
    one_by_one(batch[cut:], expected, set(seen))

    applied_ids = {offer_id: [e for e in seen if e.startswith(offer_id)] for offer_id in state}
    folded = fold_offer_changes(batch[cut:], applied_ids)
    result = {offer_id: dict(doc) for offer_id, doc in state.items()}
    for offer_id, update in folded.items():
        result.setdefault(offer_id, {}).update(update.fields)
        assert not set(update.event_ids) & seen, "an event id is applied once"
    assert result == expected
