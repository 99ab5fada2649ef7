"""Integration: registrations and need posts in few round trips, with the same guarantees.

The use cases are wired as the composition root wires them, on a client that watches the commands it sends
(MongoDB-wire server): a registration sends its duplicate-key claims and outbox marker together, then the
recipient; confirmations of many registrations go in one write; an active organisation read a moment ago is
reused, a change through the store is seen at once and one elsewhere within the cache age; a need post reads
its recipient next to its marker, and a retried post gets the need it created, with its event once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
import pytest_asyncio
from ksbb_contracts import TYPE_HEADER
from ksbb_contracts.events.registry import Beneficiaries
from ksbb_contracts.vocab import Item, OrganisationKind, OrganisationStatus, RecipientKind, RecipientStatus
from ksbb_kit.auth import Principal, Role
from ksbb_kit.clock import ManualClock
from ksbb_kit.ids import new_id
from ksbb_kit.mongo import connect
from ksbb_kit.outbox import MARKERS, OUTBOX, OutboxRelay, outbox_entries
from ksbb_kit.testing.waiting import eventually
from ksbb_registry import bootstrap
from ksbb_registry.adapters.claims import AWAITING, ClaimStore, is_confirmed
from ksbb_registry.adapters.members import identity_directory
from ksbb_registry.adapters.organisations import ORGANISATION_DOCUMENTS, OrganisationCollection
from ksbb_registry.api.deps import Services
from ksbb_registry.domain.errors import DuplicateRecipient, OrganisationNotActive, RecipientNotActive
from ksbb_registry.domain.needs import Ledger, NewNeed
from ksbb_registry.domain.organisations import NewOrganisation, OrganisationContact
from ksbb_registry.domain.recipients import ContactPerson, NewRecipient
from ksbb_registry.settings import RegistrySettings
from pymongo import monitoring

from .conftest import KELURAHAN

pytestmark = pytest.mark.integration

ADMIN = Principal(subject="admin-round-trips", role=Role.ADMIN)
CONCURRENT = 12
OPENED = "ksbb.need.opened.v1"


class Commands(monitoring.CommandListener):
    """The commands a client sent, as (name, collection)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        #: (collection, the fields of the filter, sorted) of every write that looks documents up
        self.write_filters: list[tuple[str, tuple[str, ...]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        collection = str(event.command.get(event.command_name))
        self.sent.append((event.command_name, collection))
        filters = {
            "update": [u["q"] for u in event.command.get("updates", [])],
            "delete": [d["q"] for d in event.command.get("deletes", [])],
            "findAndModify": [event.command.get("query", {})],
        }.get(event.command_name, [])
        self.write_filters += [(collection, tuple(sorted(f))) for f in filters]

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def during(self) -> _Window:
        """A window on the commands sent from now on."""
        return _Window(self, len(self.sent))


@dataclass
class _Window:
    commands: Commands
    start: int

    def sent(self) -> list[tuple[str, str]]:
        return self.commands.sent[self.start :]


class Published:
    """A record publisher that keeps what the relay gave it (in place of Kafka)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, Any, Any]] = []

    async def send(self, topic: str, key: Any, value: Any, headers: Any) -> None:
        self.records.append((topic, key, headers.get(TYPE_HEADER)))


@dataclass
class Wired:
    """The registry's stores and use cases on a watched client."""

    services: Services
    stores: bootstrap.Stores
    db: Any
    commands: Commands
    relay: OutboxRelay
    published: Published


@pytest_asyncio.fixture(loop_scope="session")
async def wired(registry_db: Any, clock: ManualClock, module_env: dict[str, Any]) -> AsyncIterator[Wired]:
    """Stores and use cases wired like `bootstrap.build` does, watched, on a database of their own (so that the
    running service's relay never publishes what these tests inspect)."""
    commands = Commands()
    settings = RegistrySettings()
    client = connect(module_env["mongodb_url"], event_listeners=[commands])
    db = client[f"{registry_db.name}_rt{uuid.uuid4().hex[:6]}"]
    published = Published()
    relay = OutboxRelay(db, bootstrap.OUTBOX_COLLECTIONS, published, clock=clock)
    stores, setup = bootstrap.mongo_stores(
        db, clock, outbox=lambda *events: outbox_entries(events, source="/ksbb/registry", clock=clock),
        pending=relay.pending, claim_grace_seconds=settings.claim_grace_seconds,
    )
    services = bootstrap.use_cases(
        stores, clock, report_limit_per_hour=5, idempotency=None,  # type: ignore[arg-type]
        accounts=identity_directory(settings),
    )
    await setup()
    try:
        yield Wired(services, stores, db, commands, relay, published)
    finally:
        await client.drop_database(db.name)
        await client.close()


async def new_organisation(services: Services) -> str:
    """A new (active) organisation's id."""
    organisation, _ = await services.organisations.register(
        new_id("org"),
        NewOrganisation(name=f"Yayasan {uuid.uuid4().hex[:6]}", kind=OrganisationKind.NGO,
                        contact=OrganisationContact(email="uji@lembaga.example")),
    )
    assert organisation.status is OrganisationStatus.ACTIVE
    return organisation.organisation_id


def registration(organisation_id: str, rw: int | None = None) -> NewRecipient:
    """A registration with its own name, address and RW."""
    tag = uuid.uuid4().hex[:8]
    return NewRecipient(
        name=f"RW Uji {tag}",
        kind=RecipientKind.RW_RENTAN,
        organisation_id=organisation_id,
        kelurahan_code=KELURAHAN[int(tag, 16) % len(KELURAHAN)],
        rw=rw if rw is not None else int(tag, 16) % 99 + 1,
        street_address=f"Jl. Uji No. {tag}",
        beneficiaries=Beneficiaries(households=30, people=120),
        contact=ContactPerson(name="Ibu Uji", phone="+6281234567890"),
    )


def claims_of(sent: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [command for command in sent if command[1] == "recipient_claims"]


async def test_a_registration_claims_and_marks_together_then_inserts_and_confirms_in_one_write(
    wired: Wired,
) -> None:
    services = wired.services
    organisation_id = await new_organisation(services)
    await services.recipients.register(new_id("rcp"), registration(organisation_id), ADMIN)  # reads it once
    window = wired.commands.during()
    recipient, created = await services.recipients.register(new_id("rcp"), registration(organisation_id), ADMIN)
    answered = window.sent()
    assert created
    assert sorted(answered[:2]) == [("findAndModify", MARKERS), ("insert", "recipient_claims")], answered
    assert answered[2:] == [("insert", "recipients")], "the organisation read a moment ago was reused"

    await wired.stores.claims.confirmations_sent()  # type: ignore[attr-defined]
    assert claims_of(window.sent()[3:]) == [("update", "recipient_claims")]
    stored = [c async for c in wired.db["recipient_claims"].find({"recipient_id": recipient.recipient_id})]
    assert len(stored) == 2 and all(is_confirmed(claim) for claim in stored)


async def test_concurrent_duplicate_registrations_let_exactly_one_through_with_the_cache_warm(wired: Wired) -> None:
    services = wired.services
    organisation_id = await new_organisation(services)
    await services.recipients.register(new_id("rcp"), registration(organisation_id), ADMIN)
    same = registration(organisation_id)
    outcomes = await asyncio.gather(
        *(services.recipients.register(new_id("rcp"), same, ADMIN) for _ in range(CONCURRENT)),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if isinstance(o, tuple)]
    refused = [o for o in outcomes if isinstance(o, DuplicateRecipient)]
    assert len(winners) == 1 and len(refused) == CONCURRENT - 1, outcomes
    winner = winners[0][0].recipient_id
    assert {r.existing_recipient_id for r in refused} == {winner}
    await wired.stores.claims.confirmations_sent()  # type: ignore[attr-defined]
    claims = [c async for c in wired.db["recipient_claims"].find({"_id": {"$in": list(_keys_of(same))}})]
    assert [(c["recipient_id"], is_confirmed(c)) for c in claims] == [(winner, True)] * 2
    assert await wired.db["recipients"].count_documents({"name": same.name}) == 1


def _keys_of(command: NewRecipient) -> list[str]:
    from ksbb_registry.domain import duplicates
    from ksbb_registry.domain import recipients as rules

    location = rules.validate_new(command)
    return duplicates.claim_keys(*rules.keys_of(command, location))


async def test_confirmations_asked_for_together_are_one_write_and_a_lost_claim_is_left_alone(
    wired: Wired, clock: ManualClock
) -> None:
    store = ClaimStore(wired.db, clock, timedelta(seconds=30), gather_seconds=0.2)
    tag = uuid.uuid4().hex[:8]
    owners = {f"rcp_{tag}_{n}": [f"name:confirm-{tag}-{n}", f"rw:confirm-{tag}/{n}"] for n in range(5)}
    for owner, keys in owners.items():
        assert all(result.new for result in await store.claim_many(keys, owner))
    # One claim was taken over meanwhile (its owner's grace ran out): its confirmation must not touch it.
    lost_key = owners[f"rcp_{tag}_0"][0]
    await wired.db["recipient_claims"].update_one(
        {"_id": lost_key}, {"$set": {"recipient_id": "rcp_newcomer", AWAITING: ["rcp_newcomer"]}}
    )
    window = wired.commands.during()
    for owner, keys in owners.items():
        store.confirm_soon(keys, owner)
    await store.confirmations_sent()
    updates = [c for c in claims_of(window.sent()) if c[0] == "update"]
    assert updates == [("update", "recipient_claims")], window.sent()
    stored = {c["_id"]: c async for c in wired.db["recipient_claims"].find({"_id": {"$regex": f"confirm-{tag}"}})}
    assert stored[lost_key]["recipient_id"] == "rcp_newcomer" and not is_confirmed(stored[lost_key])
    assert all(is_confirmed(c) for key, c in stored.items() if key != lost_key)


async def test_a_suspension_through_the_store_is_seen_at_once_and_one_elsewhere_within_the_cache_age(
    wired: Wired, clock: ManualClock
) -> None:
    services = wired.services
    organisation_id = await new_organisation(services)
    await services.recipients.register(new_id("rcp"), registration(organisation_id), ADMIN)  # remembered
    await services.organisations.set_status(organisation_id, OrganisationStatus.SUSPENDED, "audit", ADMIN)
    with pytest.raises(OrganisationNotActive):
        await services.recipients.register(new_id("rcp"), registration(organisation_id), ADMIN)
    await services.organisations.set_status(organisation_id, OrganisationStatus.ACTIVE, "audit done", ADMIN)
    await services.recipients.register(new_id("rcp"), registration(organisation_id), ADMIN)  # at once again

    # Another replica (its own store) suspends it: this store sees that within its cache age.
    elsewhere = OrganisationCollection(
        wired.db["organisations"], ORGANISATION_DOCUMENTS, clock=clock,
        outbox=lambda *events: outbox_entries(events, source="/ksbb/registry", clock=clock),
        pending=wired.relay.pending,
    )
    other_replica = type(services.organisations)(elsewhere, clock)
    await other_replica.set_status(organisation_id, OrganisationStatus.SUSPENDED, "elsewhere", ADMIN)
    store = wired.stores.organisations
    assert isinstance(store, OrganisationCollection) and store.active_for <= 5

    async def refused() -> bool:
        try:
            await services.recipients.register(new_id("rcp"), registration(organisation_id), ADMIN)
        except OrganisationNotActive:
            return True
        return False

    await eventually(refused, within=store.active_for + 10, what="the suspension seen by the other replica")


async def test_a_retried_need_post_gets_its_need_with_one_event_also_after_the_recipient_was_suspended(
    wired: Wired,
) -> None:
    services = wired.services
    organisation_id = await new_organisation(services)
    recipient, _ = await services.recipients.register(new_id("rcp"), registration(organisation_id), ADMIN)
    await _step(services, recipient.recipient_id, "verify", reason="dokumen diperiksa")
    await _step(services, recipient.recipient_id, "activate")
    command = NewNeed(item=Item.SEMBAKO, quantity=10, needed_by=date.today() + timedelta(days=7))
    need_id = new_id("ned")
    await wired.stores.claims.confirmations_sent()  # type: ignore[attr-defined]
    window = wired.commands.during()
    _, created = await services.needs.post(need_id, recipient.recipient_id, command, ADMIN)
    sent = window.sent()
    assert created
    assert sorted(sent[:2]) == [("find", "recipients"), ("findAndModify", MARKERS)], sent
    assert sent[2:] == [("insert", "needs"), ("find", "recipients")], sent

    again, created_again = await services.needs.post(need_id, recipient.recipient_id, command, ADMIN)
    assert (again.need_id, created_again) == (need_id, False)
    await _step(services, recipient.recipient_id, "suspend", reason="laporan warga")
    after_suspension, created_late = await services.needs.post(need_id, recipient.recipient_id, command, ADMIN)
    assert (after_suspension.need_id, created_late) == (need_id, False), "a retry is answered, not refused"
    stored = await wired.db["needs"].find_one({"_id": need_id})
    assert [e["type"] for e in stored[OUTBOX]] == [OPENED, "ksbb.need.closed.v1"], "no second event for a retry"

    fresh = new_id("ned")
    with pytest.raises(RecipientNotActive):
        await services.needs.post(fresh, recipient.recipient_id, command, ADMIN)
    assert await wired.db["needs"].find_one({"_id": fresh}) is None
    marker = await wired.db[MARKERS].find_one({"_id": f"needs/{fresh}"})
    assert marker is not None and marker["open"] == 1, "the refused post's marker waits for the relay"
    await wired.relay.publish_written()
    assert await wired.db[MARKERS].find_one({"_id": f"needs/{fresh}"}) is None, "nothing written: marker dropped"
    opened = [r for r in wired.published.records if r[2] == OPENED]
    assert [key for _, key, _ in opened] == [need_id], "the need's event published once; the refused one's never"


async def _step(services: Services, recipient_id: str, action: str, reason: str | None = None) -> None:
    from ksbb_registry.domain.lifecycle import Action

    await services.recipients.transition(recipient_id, Action(action), ADMIN, reason=reason, document_refs=[])
    if action == "suspend":
        assert (await services.recipients.get(recipient_id)).status is RecipientStatus.SUSPENDED


async def test_a_refused_duplicate_names_its_holder_as_the_claim_read_it(wired: Wired) -> None:
    services = wired.services
    organisation_id = await new_organisation(services)
    first = registration(organisation_id)
    holder, _ = await services.recipients.register(new_id("rcp"), first, ADMIN)
    same_rw = first.model_copy(update={"name": f"Lain {uuid.uuid4().hex[:6]}", "street_address": "Jl. Lain 1"})
    window = wired.commands.during()
    with pytest.raises(DuplicateRecipient) as refused:
        await services.recipients.register(new_id("rcp"), same_rw, ADMIN)
    assert (refused.value.existing_recipient_id, refused.value.field) == (holder.recipient_id, "rw")
    assert f"({holder.name})" in str(refused.value), str(refused.value)
    sent = window.sent()
    assert sorted(sent[:2]) == [("findAndModify", MARKERS), ("insert", "recipient_claims")], sent
    # The taken claim, its holder (is it live?), our own id (a concurrent retry may have created it), the
    # name claim given back; the holder is not read a second time for the refusal.
    assert sent[2:] == [
        ("find", "recipient_claims"), ("find", "recipients"), ("find", "recipients"), ("delete", "recipient_claims")
    ], sent
    assert await wired.db["recipient_claims"].find_one({"_id": _keys_of(same_rw)[0]}) is None


async def test_every_guarded_write_finds_its_document_by_id_or_a_unique_index(wired: Wired) -> None:
    # mongo-java-server looks a write's filter up in an index only when the filter is `_id` alone or has
    # exactly the fields of a unique index; any other filter scans the whole collection on every write.
    services = wired.services
    organisation_id = await new_organisation(services)
    first = registration(organisation_id)
    recipient, _ = await services.recipients.register(new_id("rcp"), first, ADMIN)
    await _step(services, recipient.recipient_id, "verify", reason="dokumen diperiksa")
    await _step(services, recipient.recipient_id, "activate")
    command = NewNeed(item=Item.SEMBAKO, quantity=10, needed_by=date.today() + timedelta(days=7))
    need, _ = await services.needs.post(new_id("ned"), recipient.recipient_id, command, ADMIN)
    await services.needs.apply_ledger(need.need_id, Ledger(requested=10, committed=4, ledger_version=1))
    with pytest.raises(DuplicateRecipient):
        await services.recipients.register(new_id("rcp"), first.model_copy(update={"name": "Lain"}), ADMIN)
    await _step(services, recipient.recipient_id, "suspend", reason="laporan warga")
    await wired.stores.claims.confirmations_sent()  # type: ignore[attr-defined]
    written = set(wired.commands.write_filters)
    assert {("needs", ("_id", "version")), ("recipients", ("_id", "version"))} <= written, written
    assert ("recipient_claims", ("_id", "recipient_id")) in written, written
    for collection in {name for name, _ in written}:
        indexes = [ix async for ix in await wired.db[collection].list_indexes()]
        unique = {tuple(sorted(ix["key"])) for ix in indexes if ix.get("unique")}
        for name, fields in written:
            if name == collection and name != MARKERS:  # the markers are the kit outbox's own
                assert fields == ("_id",) or fields in unique, (collection, fields, unique)
