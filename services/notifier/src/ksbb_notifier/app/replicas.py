"""Replica use cases: keep the facts of other services the filters and e-mails need, and contacts."""

from __future__ import annotations

from typing import Any

from ksbb_contracts.events.registry import OrganisationPublic, RecipientPublic, public_state_digest, snapshot_repair
from ksbb_kit.repairs import note_repair

from ksbb_notifier.app.ports import ReplicaStore


class Replicas:
    """Public snapshots (newest version wins; the registry's digest repairs a version it reused or a state it
    restated, ADR 0005) and confidential contacts (latest record wins, tombstones erase)."""

    def __init__(self, store: ReplicaStore) -> None:
        self._store = store

    async def organisation(self, organisation: OrganisationPublic, *, restated: bool = False) -> None:
        """Keep the public organisation snapshot."""
        data = organisation.model_dump(mode="json")
        fields = {"name": data["name"], "status": data["status"], "state_digest": public_state_digest(organisation)}
        if not await self._store.keep_organisation(data["organisation_id"], fields, data["version"]):
            await self._repair("organisation", data["organisation_id"], fields, data["version"], restated=restated)

    async def recipient(self, recipient: RecipientPublic, *, restated: bool = False) -> None:
        """Keep the recipient facts the filters and e-mails need."""
        data = recipient.model_dump(mode="json")
        fields = {
            "name": data["name"],
            "kind": data["kind"],
            "organisation_id": data["organisation_id"],
            "kelurahan_code": data["kelurahan_code"],
            "status": data["status"],
            "state_digest": public_state_digest(recipient),
        }
        if not await self._store.keep_recipient(data["recipient_id"], fields, data["version"]):
            await self._repair("recipient", data["recipient_id"], fields, data["version"], restated=restated)

    async def _repair(self, kind: str, owner_id: str, fields: dict[str, Any], version: int, *, restated: bool) -> None:
        """A replica that holds this version or a newer one takes the snapshot only as a repair (`snapshot_repair`)."""
        while True:
            held = await self._store.snapshot_held(kind, owner_id)
            held_version = int((held or {}).get("version") or 0)
            repair = snapshot_repair(
                held_version, (held or {}).get("state_digest"), version, fields["state_digest"], restated=restated
            )
            if repair is None and held is not None and held_version >= version:
                return  # a redelivery, an older snapshot or the same state
            if await self._store.replace_snapshot(kind, owner_id, held, {**fields, "version": version}):
                if repair:
                    note_repair(f"notifier.{kind}s", owner_id, repair)
                return

    async def contact(self, owner_id: str, kind: str, fields: dict[str, Any]) -> None:
        """Store a confidential contact (compacted topics: the latest record per key wins)."""
        await self._store.save_contact(owner_id, kind, fields)

    async def erase_contact(self, owner_id: str) -> None:
        """A tombstone: forget the contact entirely."""
        await self._store.erase_contact(owner_id)
