"""Projection merge rules without Kafka or MongoDB: any order of versioned events gives the same read models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ksbb_contracts import Event
from ksbb_contracts.events import (
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    OfferCreated,
    PledgeCancelled,
    PledgeConfirmed,
    PledgeDispatched,
    PledgeExpired,
    PledgeExpiring,
    PledgeRejected,
    ProposedAllocation,
    RecipientArchived,
    RecipientRegistered,
)
from ksbb_contracts.vocab import Item, RecipientStatus
from ksbb_publisher.app.ports import ReplayedRecord
from ksbb_publisher.app.projection import Projection
from ksbb_publisher.app.rebuild import rebuild_read_models
from ksbb_publisher.domain.projection import (
    VersionedPart,
    donor_part,
    fold,
    ledger_part,
    merge,
    need_part,
    organisation_part,
    pledge_part,
    recipient_part,
)
from ksbb_publisher.handlers import build_router, public_event_types

from .support import (
    NOW,
    MemoryProjectionStore,
    donor,
    envelope_of,
    ledger,
    minutes,
    need,
    organisation,
    pledge,
    recipient,
)

pytestmark = pytest.mark.unit

GAMBIR = "31.71.01.1001"
versions = st.sets(st.integers(min_value=1, max_value=40), min_size=1, max_size=6)


@st.composite
def versioned_parts(draw: st.DrawFn) -> list[VersionedPart]:
    """Parts of every read model, several versions per aggregate; needs get parts from two topics."""
    parts: list[VersionedPart] = []
    for org_id in ("org_1", "org_2"):
        parts += [organisation_part(organisation(org_id, f"Yayasan v{v}", v)) for v in draw(versions)]
    for rcp_id in ("rcp_1", "rcp_2"):
        for v in draw(versions):
            status = draw(st.sampled_from([RecipientStatus.ACTIVE, RecipientStatus.SUSPENDED]))
            event = recipient(rcp_id, "org_1", GAMBIR, f"RW {v:02d}", households=v, version=v, status=status)
            parts.append(recipient_part(event, NOW))
    for need_id in ("need_1", "need_2"):
        for v in draw(versions):
            parts.append(need_part(need(need_id, "rcp_1", "org_1", GAMBIR, quantity=v, version=v), NOW))
        for v in draw(st.sets(st.integers(min_value=1, max_value=40), max_size=6)):
            parts.append(ledger_part(ledger(need_id, "rcp_1", requested=40, committed=v, version=v), NOW))
    for v in draw(versions):
        parts.append(donor_part(donor("donor_1", f"Donatur {v}", show=draw(st.booleans()), version=v)))
    for v in draw(versions):
        parts.append(pledge_part(pledge("plg_1", "need_1", "rcp_1", "org_1", "donor_1", GAMBIR, quantity=v, version=v)))
    return parts


def newest(parts: Sequence[VersionedPart]) -> dict[tuple[str, str, str], VersionedPart]:
    """The part with the highest version per document and version field."""
    best: dict[tuple[str, str, str], VersionedPart] = {}
    for part in parts:
        key = (part.model, part.doc_id, part.version_field)
        if key not in best or part.version > best[key].version:
            best[key] = part
    return best


@settings(deadline=None)
@given(st.data())
def test_any_order_of_versioned_events_gives_the_same_read_models(data: st.DataObject) -> None:
    parts = data.draw(versioned_parts())
    shuffled = data.draw(st.permutations(parts))
    assert fold(shuffled) == fold(parts)


@settings(deadline=None)
@given(st.data())
def test_the_newest_version_of_each_part_wins_and_redeliveries_change_nothing(data: st.DataObject) -> None:
    parts = data.draw(versioned_parts())
    state = fold(data.draw(st.permutations(parts)))
    for (model, doc_id, version_field), part in newest(parts).items():
        doc = state[(model, doc_id)]
        assert doc[version_field] == part.version
        assert {k: doc[k] for k in part.fields if k != "projected_at"} == {
            k: v for k, v in part.fields.items() if k != "projected_at"
        }
    redelivered = data.draw(st.lists(st.sampled_from(parts), max_size=10))
    assert fold(redelivered, state) == state


@settings(deadline=None)
@given(st.data())
def test_folding_in_batches_equals_folding_at_once(data: st.DataObject) -> None:
    parts = data.draw(st.permutations(data.draw(versioned_parts())))
    cut = data.draw(st.integers(min_value=0, max_value=len(parts)))
    assert fold(parts[cut:], fold(parts[:cut])) == fold(parts)


def test_a_stale_version_is_ignored_and_an_equal_one_too() -> None:
    newer = recipient_part(recipient("rcp_1", "org_1", GAMBIR, "RW 03 Gambir", version=2), NOW)
    older = recipient_part(
        recipient(
            "rcp_1", "org_1", GAMBIR, "RW 03", version=1, cls=RecipientRegistered, status=RecipientStatus.REGISTERED
        ),
        NOW,
    )
    doc = merge(None, newer)
    assert doc is not None and doc["status"] == "active" and doc["_id"] == "rcp_1"
    assert merge(doc, older) is None
    assert merge(doc, newer) is None  # a redelivery of the same version


def test_a_ledger_before_its_need_merges_into_one_document() -> None:
    ledger_first = ledger_part(ledger("need_2", "rcp_2", requested=20, committed=5, version=1), NOW)
    opened = need_part(need("need_2", "rcp_2", "org_1", GAMBIR, item=Item.BABY_MILK, quantity=20), NOW)
    for order in ([ledger_first, opened], [opened, ledger_first]):
        doc = fold(order)[("needs", "need_2")]
        assert doc["version"] == 1 and doc["ledger_version"] == 1
        assert doc["item"] == "baby_milk" and doc["progress"]["committed"] == 5


def test_a_donor_name_is_stored_only_when_the_donor_opted_in() -> None:
    assert donor_part(donor("donor_1", "PT Sumber Berkah", show=True)).fields["display_name"] == "PT Sumber Berkah"
    assert donor_part(donor("donor_2", "Nama Rahasia", show=False)).fields["display_name"] is None


def test_recipient_parts_keep_no_rt_and_name_the_areas() -> None:
    fields = recipient_part(recipient("rcp_1", "org_1", GAMBIR, "RW 03 Gambir"), NOW).fields
    assert "rt" not in fields and fields["rw"] == 3
    assert (fields["kota_name"], fields["kelurahan_name"]) == ("Jakarta Pusat", "Gambir")


def test_every_public_event_type_has_exactly_one_handler_and_no_confidential_topic() -> None:
    router = build_router(Projection(MemoryProjectionStore(), _Clock()))
    assert set(router.handlers) == {cls.event_type for cls in public_event_types()}
    assert router.topics() and not any(topic.confidential for topic in router.topics())


class _Clock:
    def now(self) -> Any:
        return NOW


def one_of_each() -> list[Event]:
    """One event of every public type, about one recipient, need, pledge and offer."""
    created = pledge("plg_1", "need_1", "rcp_1", "org_1", "donor_1", GAMBIR)
    public = created.pledge
    later = NOW + minutes(5)
    return [
        organisation("org_1", "Yayasan Peduli Jakarta"),
        recipient("rcp_1", "org_1", GAMBIR, "RW 03 Gambir", version=1, cls=RecipientRegistered,
                  status=RecipientStatus.REGISTERED),
        recipient("rcp_1", "org_1", GAMBIR, "RW 03 Gambir", version=9, cls=RecipientArchived,
                  status=RecipientStatus.ARCHIVED),
        need("need_1", "rcp_1", "org_1", GAMBIR, quantity=40),
        ledger("need_1", "rcp_1", requested=40, committed=10, version=1),
        donor("donor_1", "PT Sumber Berkah", show=True),
        created,
        PledgeConfirmed(pledge=public.model_copy(update={"version": 2}), occurred_at=later),
        PledgeExpiring(pledge=public.model_copy(update={"version": 3}), occurred_at=later, expires_at=later),
        PledgeDispatched(pledge=public.model_copy(update={"version": 4}), occurred_at=later),
        pledge("plg_1", "need_1", "rcp_1", "org_1", "donor_1", GAMBIR, version=5, delivered=10, at=later),
        PledgeCancelled(pledge=public.model_copy(update={"pledge_id": "plg_2"}), occurred_at=later, reason="x"),
        PledgeRejected(pledge=public.model_copy(update={"pledge_id": "plg_3"}), occurred_at=later, reason="x"),
        PledgeExpired(pledge=public.model_copy(update={"pledge_id": "plg_4"}), occurred_at=later, reason="x"),
        OfferCreated(offer_id="off_1", donor_id="donor_1", item=Item.SEMBAKO, quantity=5,
                     available_until=NOW.date(), occurred_at=NOW),
        MatchProposed(offer_id="off_1", donor_id="donor_1", occurred_at=later,
                      allocations=[ProposedAllocation(need_id="need_1", recipient_id="rcp_1", quantity=5)]),
        MatchDeclined(offer_id="off_2", donor_id="donor_1", occurred_at=later),
        MatchAccepted(offer_id="off_1", donor_id="donor_1", pledge_ids=["plg_1"], occurred_at=later),
    ]


async def test_handlers_project_every_kind_of_event_once() -> None:
    store = MemoryProjectionStore()
    announced: list[dict[str, Any]] = []

    async def announce(entries: list[dict[str, Any]]) -> None:
        announced.extend(entries)

    router = build_router(Projection(store, _Clock(), on_feed_entries=announce))
    envelopes = [(event, envelope_of(event)) for event in one_of_each()]
    for event, envelope in envelopes + envelopes:  # everything redelivered once
        await router.handlers[envelope.type](event, envelope)
    assert store.model("organisations")["org_1"]["name"] == "Yayasan Peduli Jakarta"
    assert store.model("recipients")["rcp_1"]["status"] == "archived"
    assert store.model("needs")["need_1"]["progress"]["committed"] == 10
    assert store.model("pledges")["plg_1"]["version"] == 5
    assert {p: d["status"] for p, d in store.model("pledges").items()} == {
        "plg_1": "delivered", "plg_2": "pledged", "plg_3": "pledged", "plg_4": "pledged"
    }
    # Every public pledge event is one feed entry (the expiry reminder is none), announced once.
    kinds = sorted(e["kind"] for e in store.feed)
    assert kinds == sorted(["pledged", "confirmed", "dispatched", "delivered", "cancelled", "rejected", "expired"])
    assert announced == store.feed and [e["seq"] for e in store.feed] == list(range(1, 8))
    assert {o: d["status"] for o, d in store.offers.items()} == {"off_1": "accepted", "off_2": "declined"}
    assert store.offers["off_1"]["quantity"] == 5 and "quantity" not in store.offers["off_2"]


class _Replay:
    def __init__(self, batches: list[list[ReplayedRecord]]) -> None:
        self._batches = batches

    async def size(self, topics: Sequence[str]) -> int:
        return sum(len(batch) for batch in self._batches)

    async def batches(self, topics: Sequence[str]) -> Any:
        for batch in self._batches:
            yield batch


class _Progress:
    def __init__(self) -> None:
        self.total: int | None = None
        self.done = 0

    def start(self, total: int | None) -> None:
        self.total = total

    def advance(self, done: int) -> None:
        self.done += done


async def test_rebuild_applies_records_through_the_live_handlers_and_counts_the_rest() -> None:
    stale = recipient("rcp_1", "org_1", GAMBIR, "RW 03", version=2, status=RecipientStatus.ACTIVE)
    published = [(event, envelope_of(event)) for event in [*one_of_each(), stale]]
    live, rebuilt = MemoryProjectionStore(), MemoryProjectionStore()
    live_router = build_router(Projection(live, _Clock()))
    for event, envelope in published:
        await live_router.handlers[envelope.type](event, envelope)

    schema_violation = envelope_of(stale)
    schema_violation.data["recipient"]["version"] = "x"
    records = [ReplayedRecord(e.topic.name, b"k", envelope.to_bytes()) for e, envelope in published]
    unusable = [
        ReplayedRecord("t", b"k", None),  # a tombstone
        ReplayedRecord("t", b"k", b"not an envelope"),
        ReplayedRecord("t", b"k", schema_violation.to_bytes()),
    ]
    rebuilt.docs[("needs", "gone")] = {"_id": "gone"}  # the rebuild starts from empty read models
    projection = Projection(rebuilt, _Clock())
    router = build_router(projection)
    progress = _Progress()
    counts = await rebuild_read_models(
        rebuilt, _Replay([records[:7], records[7:] + unusable[:2], unusable[2:]]), ["t"], set(router.handlers),
        projection, progress=progress,
    )
    assert progress.total == len(records) + len(unusable) == progress.done, "progress counts every record read"
    assert counts == {"applied": len(published), "skipped": 1, "malformed": 2}
    assert rebuilt.docs == live.docs and rebuilt.offers == live.offers
    assert sorted((e["_id"], e["kind"]) for e in rebuilt.feed) == sorted((e["_id"], e["kind"]) for e in live.feed)
    assert rebuilt.model("recipients")["rcp_1"]["status"] == "archived"  # the stale version changed nothing
