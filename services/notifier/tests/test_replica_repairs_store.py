"""The notifier's recipient and organisation replicas are repaired on the real database: a version the registry
reused with other content, and a replica ahead of a registry that restated an older state (ADR 0005)."""

from __future__ import annotations

import uuid

import pytest
from ksbb_contracts.events.registry import OrganisationPublic, RecipientPublic
from ksbb_kit.mongo import connect
from ksbb_kit.testing.factories import organisation_public, recipient_public
from ksbb_kit.testing.infra import Infra
from ksbb_notifier.adapters.replica_store import MongoReplicaStore
from ksbb_notifier.app.replicas import Replicas

pytestmark = pytest.mark.integration


async def test_replicas_take_a_reused_version_with_other_content_and_a_restated_older_state(infra: Infra) -> None:
    client = connect(infra.mongodb_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_replica_repairs"]
    replicas = Replicas(MongoReplicaStore(db))

    def organisation(version: int, name: str) -> OrganisationPublic:
        return organisation_public(organisation_id="org_1", version=version, name=name)

    def recipient(version: int, name: str) -> RecipientPublic:
        return recipient_public(recipient_id="rcp_1", version=version, name=name)

    async def held(collection: str, key: str) -> tuple[int, str]:
        doc = await db[collection].find_one({"_id": key}) or {}
        return doc.get("version", 0), doc.get("name", "")

    try:
        await replicas.organisation(organisation(3, "Lembaga Lama"))
        await replicas.recipient(recipient(3, "RW Lama"))
        await replicas.organisation(organisation(2, "Lebih Tua"))  # an older change: ignored
        await replicas.recipient(recipient(2, "Lebih Tua"))
        assert (await held("organisations", "org_1"), await held("recipients", "rcp_1")) == (
            (3, "Lembaga Lama"), (3, "RW Lama"))
        await replicas.organisation(organisation(3, "Lembaga Baru"))  # version 3 reused after a crash
        await replicas.recipient(recipient(3, "RW Baru"))
        assert (await held("organisations", "org_1"), await held("recipients", "rcp_1")) == (
            (3, "Lembaga Baru"), (3, "RW Baru"))
        await replicas.organisation(organisation(2, "Lembaga Benar"), restated=True)  # ahead: the owner restates
        await replicas.recipient(recipient(2, "RW Benar"), restated=True)
        assert (await held("organisations", "org_1"), await held("recipients", "rcp_1")) == (
            (2, "Lembaga Benar"), (2, "RW Benar"))
        stored = await db.recipients.find_one({"_id": "rcp_1"}) or {}
        assert stored["state_digest"] and stored["kind"] == recipient(2, "RW Benar").kind.value
    finally:
        await client.drop_database(db.name)
        await client.close()
