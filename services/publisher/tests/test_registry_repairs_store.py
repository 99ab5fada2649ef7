"""A repair of a need's, recipient's or organisation's public state at the same version reaches the stored read
models and changes their fingerprint (export ETags), on the real database."""

from __future__ import annotations

import uuid

import pytest
from ksbb_contracts.events.registry import NeedChanged, OrganisationUpdated, RecipientUpdated
from ksbb_kit.mongo import connect
from ksbb_kit.testing.factories import make_event
from ksbb_kit.testing.infra import Infra
from ksbb_publisher.adapters.projection_store import MongoProjectionStore
from ksbb_publisher.adapters.read_models import MongoReadModels
from ksbb_publisher.domain.projection import need_part, organisation_part, recipient_part
from prometheus_client import REGISTRY

from .support import NOW, need, recipient

pytestmark = pytest.mark.integration
KELURAHAN = "31.71.01.1001"


def repairs(view: str, reason: str) -> float:
    """`ksbb_view_repairs_total` of one view and reason in this process."""
    return REGISTRY.get_sample_value("ksbb_view_repairs_total", {"view": view, "reason": reason}) or 0.0


async def test_same_version_repairs_and_restated_states_are_stored_counted_and_change_the_fingerprint(
    infra: Infra,
) -> None:
    client = connect(infra.mongodb_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_registry_repairs"]
    try:
        store, read_models = MongoProjectionStore(db), MongoReadModels(db)
        await store.apply_part(need_part(need("need_1", "rcp_1", "org_1", KELURAHAN, quantity=40, version=3), NOW))
        await store.apply_part(recipient_part(recipient("rcp_1", "org_1", KELURAHAN, "RW 03", households=40,
                                                        version=4), NOW))
        before, same = await read_models.revision(), repairs("publisher.needs.version", "same_version_other_figures")
        # Redelivered: nothing changes.
        await store.apply_part(need_part(need("need_1", "rcp_1", "org_1", KELURAHAN, quantity=40, version=3), NOW))
        assert await read_models.revision() == before
        # The same version with other content: repaired, counted, and the fingerprint moves.
        await store.apply_part(need_part(need("need_1", "rcp_1", "org_1", KELURAHAN, quantity=55, version=3,
                                              cls=NeedChanged), NOW))
        assert (await db.needs.find_one({"_id": "need_1"}) or {})["quantity"] == 55
        assert repairs("publisher.needs.version", "same_version_other_figures") == same + 1
        assert await read_models.revision() != before
        # An older restated recipient state that differs replaces a newer view; an older change does not.
        older = recipient("rcp_1", "org_1", KELURAHAN, "RW 03", households=12, version=3, cls=RecipientUpdated)
        await store.apply_part(recipient_part(older, NOW))
        assert (await db.recipients.find_one({"_id": "rcp_1"}) or {})["beneficiaries"]["households"] == 40
        restated = repairs("publisher.recipients.version", "restated")
        await store.apply_part(recipient_part(older.model_copy(update={"restated": True}), NOW))
        stored = await db.recipients.find_one({"_id": "rcp_1"}) or {}
        assert (stored["version"], stored["beneficiaries"]["households"]) == (3, 12)
        assert repairs("publisher.recipients.version", "restated") == restated + 1
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_an_organisation_s_public_state_is_repaired_at_its_version_and_when_ahead(infra: Infra) -> None:
    client = connect(infra.mongodb_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_registry_repairs"]

    def updated(version: int, name: str, *, restated: bool = False) -> OrganisationUpdated:
        return make_event(OrganisationUpdated, restated=restated,
                          organisation={"organisation_id": "org_1", "name": name, "version": version})

    try:
        store, read_models = MongoProjectionStore(db), MongoReadModels(db)
        await store.apply_part(organisation_part(updated(3, "Lembaga Lama")))
        before = await read_models.revision()
        same = repairs("publisher.organisations.version", "same_version_other_figures")
        restated = repairs("publisher.organisations.version", "restated")
        await store.apply_part(organisation_part(updated(3, "Lembaga Lama")))  # redelivered: nothing changes
        assert await read_models.revision() == before
        await store.apply_part(organisation_part(updated(3, "Lembaga Baru")))  # version 3 reused after a crash
        assert (await db.organisations.find_one({"_id": "org_1"}) or {})["name"] == "Lembaga Baru"
        assert repairs("publisher.organisations.version", "same_version_other_figures") == same + 1
        assert await read_models.revision() != before
        await store.apply_part(organisation_part(updated(2, "Lembaga Benar")))  # an older change: ignored
        assert (await db.organisations.find_one({"_id": "org_1"}) or {})["name"] == "Lembaga Baru"
        await store.apply_part(organisation_part(updated(2, "Lembaga Benar", restated=True)))  # ahead: repaired
        stored = await db.organisations.find_one({"_id": "org_1"}) or {}
        assert (stored["version"], stored["name"]) == (2, "Lembaga Benar")
        assert repairs("publisher.organisations.version", "restated") == restated + 1
    finally:
        await client.drop_database(db.name)
        await client.close()
