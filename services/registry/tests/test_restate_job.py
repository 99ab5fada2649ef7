"""The anti-entropy job re-publishes every need, recipient and organisation, a page at a time, in order with its
changes."""

from __future__ import annotations

from typing import Any

import pytest
from ksbb_contracts import topics
from ksbb_contracts.events.registry import NeedChanged, OrganisationUpdated, RecipientUpdated
from ksbb_contracts.vocab import OrganisationKind, OrganisationStatus
from ksbb_kit.restate_pages import MongoRestatePages
from ksbb_kit.testing.kafka import TopicReader
from ksbb_registry.adapters.needs import NEED_DOCUMENTS, NeedCollection
from ksbb_registry.adapters.organisations import ORGANISATION_DOCUMENTS, OrganisationCollection
from ksbb_registry.adapters.recipients import RECIPIENT_DOCUMENTS, RecipientCollection
from ksbb_registry.app.restate import (
    need_restatement_job,
    organisation_restatement_job,
    recipient_restatement_job,
)
from ksbb_registry.domain.change import Change
from ksbb_registry.domain.organisations import Organisation, OrganisationContact

from .builders import NOW, need, recipient

pytestmark = pytest.mark.integration


def organisation(organisation_id: str, name: str) -> Organisation:
    """An active NGO with a confidential contact."""
    return Organisation(
        organisation_id=organisation_id, name=name, kind=OrganisationKind.NGO, area_codes=["31.71"],
        contact=OrganisationContact(name="Sekretariat", email="sekretariat@uji.example"),
        status=OrganisationStatus.ACTIVE, version=2, created_at=NOW, updated_at=NOW,
    )


async def test_pages_cover_every_need_once_per_pass_and_restated_events_carry_the_current_state(
    service_app: tuple[Any, Any],
) -> None:
    runtime = service_app[0].state.runtime
    writes: dict[str, Any] = {"clock": runtime.clock, "outbox": runtime.events, "pending": runtime.relay.pending}
    store = NeedCollection(runtime.db["needs"], NEED_DOCUMENTS, **writes)
    need_ids = [f"need_restate_{index}" for index in range(5)]
    for index, need_id in enumerate(need_ids):
        await store.insert(Change(after=need(need_id=need_id, quantity=10 + index, version=index + 1)))
    pages = MongoRestatePages(runtime.db, "needs", job="need-restate-test")
    job = need_restatement_job(store, pages, page_size=2)
    topic = runtime.settings.topic(topics.NEEDS.name)
    async with TopicReader(runtime.settings.kafka_bootstrap, [topic]) as reader:
        # 5 needs, 2 per page: 2 full pages, then the last one, which ends the pass.
        assert sorted([doc["_id"] async for doc in runtime.db.needs.find({}, {"_id": 1})]) == need_ids
        runs = [await job.run_page() for _ in range(3)]
        assert runs == [(2, False), (2, False), (1, True)]
        assert await pages.cursor() is None  # the next pass starts again from the first need
        assert await job.run_page() == (2, False)
        assert await pages.cursor() == need_ids[1]

        def restated(envelopes: list[Any]) -> bool:
            # The first two needs were restated twice (the second pass began): wait for both of theirs.
            subjects = [e.subject for e in envelopes if e.data.get("restated")]
            return all(subjects.count(need_id) == (2 if index < 2 else 1) for index, need_id in enumerate(need_ids))

        envelopes = await reader.wait_for(restated, timeout=60)
    for index, need_id in enumerate(need_ids):
        stored = await store.get(need_id)
        assert stored is not None and stored.version == index + 1, "a restatement changes no version"
        events = [NeedChanged.model_validate(e.data) for e in envelopes if e.subject == need_id]
        assert all(e.restated for e in events) and len(events) == (2 if index < 2 else 1)
        latest = events[-1]
        assert (latest.need.version, latest.need.quantity) == (index + 1, 10 + index)
        assert latest.state_digest == latest.need_digest()


async def test_a_page_of_recipients_is_restated_and_a_missing_one_is_skipped(service_app: tuple[Any, Any]) -> None:
    runtime = service_app[0].state.runtime
    writes: dict[str, Any] = {"clock": runtime.clock, "outbox": runtime.events, "pending": runtime.relay.pending}
    store = RecipientCollection(runtime.db["recipients"], RECIPIENT_DOCUMENTS, **writes)
    recipient_ids = [f"rcp_restate_{index}" for index in range(3)]
    for index, recipient_id in enumerate(recipient_ids):
        await store.insert(Change(after=recipient(recipient_id=recipient_id, name=f"RW 0{index} Uji", rw=index + 1)))
    job = recipient_restatement_job(store, MongoRestatePages(runtime.db, "recipients", job="rcp-test"), page_size=10)
    assert await job.restate("rcp_gone") is False
    topic = runtime.settings.topic(topics.RECIPIENTS.name)
    async with TopicReader(runtime.settings.kafka_bootstrap, [topic]) as reader:
        assert await job.run_pass() == 3

        def restated(envelopes: list[Any]) -> bool:
            return {e.subject for e in envelopes if e.data.get("restated")} >= set(recipient_ids)

        envelopes = await reader.wait_for(restated, timeout=60)
    for recipient_id in recipient_ids:
        [event] = [RecipientUpdated.model_validate(e.data) for e in envelopes if e.subject == recipient_id]
        assert event.restated and event.recipient.version == 3 and "contact_name" not in str(event.model_dump())


async def test_a_page_of_organisations_is_restated_with_their_digest_and_no_contact(
    service_app: tuple[Any, Any],
) -> None:
    runtime = service_app[0].state.runtime
    writes: dict[str, Any] = {"clock": runtime.clock, "outbox": runtime.events, "pending": runtime.relay.pending}
    store = OrganisationCollection(runtime.db["organisations"], ORGANISATION_DOCUMENTS, **writes)
    organisation_ids = [f"org_restate_{index}" for index in range(3)]
    for index, organisation_id in enumerate(organisation_ids):
        await store.insert(Change(after=organisation(organisation_id=organisation_id, name=f"Lembaga Uji {index}")))
    pages = MongoRestatePages(runtime.db, "organisations", job="org-test")
    job = organisation_restatement_job(store, pages, page_size=2)
    assert await job.restate("org_gone") is False
    topic = runtime.settings.topic(topics.ORGANISATIONS.name)
    async with TopicReader(runtime.settings.kafka_bootstrap, [topic]) as reader:
        assert await job.run_pass() >= 3  # every organisation of the namespace, in pages of two

        def restated(envelopes: list[Any]) -> bool:
            return {e.subject for e in envelopes if e.data.get("restated")} >= set(organisation_ids)

        envelopes = await reader.wait_for(restated, timeout=60)
    for index, organisation_id in enumerate(organisation_ids):
        [event] = [OrganisationUpdated.model_validate(e.data) for e in envelopes if e.subject == organisation_id]
        stored = await store.get(organisation_id)
        assert stored is not None and event.organisation.version == stored.version, "a restatement changes no version"
        assert event.restated and event.organisation.name == f"Lembaga Uji {index}"
        assert event.state_digest == event.organisation_digest()
        assert "sekretariat" not in str(event.model_dump()).lower(), "the contact stays confidential"
