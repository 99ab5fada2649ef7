"""Replica use cases: keep the facts of other services the filters and e-mails need, and contacts."""

from __future__ import annotations

from typing import Any

from ksbb_contracts.events.registry import OrganisationPublic, RecipientPublic

from ksbb_notifier.app.ports import ReplicaStore


class Replicas:
    """Public snapshots (newest version wins) and confidential contacts (latest record wins, tombstones erase)."""

    def __init__(self, store: ReplicaStore) -> None:
        self._store = store

    async def organisation(self, organisation: OrganisationPublic) -> None:
        """Keep the public organisation snapshot."""
        data = organisation.model_dump(mode="json")
        await self._store.keep_organisation(
            data["organisation_id"], {"name": data["name"], "status": data["status"]}, data["version"]
        )

    async def recipient(self, recipient: RecipientPublic) -> None:
        """Keep the recipient facts the filters and e-mails need."""
        data = recipient.model_dump(mode="json")
        await self._store.keep_recipient(
            data["recipient_id"],
            {
                "name": data["name"],
                "kind": data["kind"],
                "organisation_id": data["organisation_id"],
                "kelurahan_code": data["kelurahan_code"],
                "status": data["status"],
            },
            data["version"],
        )

    async def contact(self, owner_id: str, kind: str, fields: dict[str, Any]) -> None:
        """Store a confidential contact (compacted topics: the latest record per key wins)."""
        await self._store.save_contact(owner_id, kind, fields)

    async def erase_contact(self, owner_id: str) -> None:
        """A tombstone: forget the contact entirely."""
        await self._store.erase_contact(owner_id)
