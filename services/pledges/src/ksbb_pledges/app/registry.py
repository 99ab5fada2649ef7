"""What the registry tells this service: needs into ledgers, recipients and organisations into replicas."""

from __future__ import annotations

from typing import Any

from ksbb_contracts.events.registry import NeedPublic, OrganisationPublic, RecipientPublic, public_state_digest
from ksbb_kit.clock import Clock
from ksbb_kit.repairs import note_repair

from ksbb_pledges.app.ports import LedgerStore, Replicas
from ksbb_pledges.domain.ledger import (
    BLOCKING_REASONS,
    LedgerChange,
    apply_need,
    block_recipient,
    new_ledger,
    recipient_blocked,
)
from ksbb_pledges.domain.need_replica import need_repair
from ksbb_pledges.domain.pledge import Ledger
from ksbb_pledges.domain.registry_replicas import blocking_repair, replica_repair, replica_takes

#: The views of registry aggregates this service keeps (labels of `ksbb_view_repairs_total`).
RECIPIENT_REPLICA = "pledges.recipients"
ORGANISATION_REPLICA = "pledges.organisations"
LEDGER_BLOCKING = "pledges.ledgers.recipient_version"


class RegistryFacts:
    """Applies registry snapshots by version, so redelivered or out-of-order events change nothing; the
    registry's digest repairs a view that holds a version it reused or a state it restated (ADR 0005)."""

    def __init__(self, ledgers: LedgerStore, replicas: Replicas, clock: Clock) -> None:
        self.ledgers = ledgers
        self.replicas = replicas
        self.clock = clock

    async def need(self, need: NeedPublic, reason: str | None = None, *, restated: bool = False) -> None:
        """Upsert a need's ledger; a need that stops being open releases its live reservations (`reason`).

        The registry is authoritative: a snapshot at the held version with other content, or a `restated`
        one that differs, replaces the need's terms (a repair, counted and logged once).
        """
        replica = await self.replicas.recipient_held(need.recipient_id) or {}
        now = self.clock.now()
        repairs: list[str] = []

        def create() -> Ledger:
            return new_ledger(
                need,
                recipient_blocked=recipient_blocked(replica.get("status")),
                recipient_version=int(replica.get("version") or 0),
                recipient_digest=replica.get("state_digest"),
                now=now,
            )

        def decide(ledger: Ledger) -> LedgerChange[None]:
            repair = need_repair(ledger, need, restated=restated)
            repairs[:] = [repair] if repair else []
            return apply_need(ledger, need, reason, self.clock.now(), restated=restated)

        await self.ledgers.apply(need.need_id, decide, create=create)
        if repairs:
            note_repair("pledges.ledgers.need_version", need.need_id, repairs[0])

    async def recipient(self, recipient: RecipientPublic, *, restated: bool = False) -> None:
        """Block or unblock the recipient's ledgers, then update its replica.

        The registry is authoritative: a snapshot at the held version with other content, or a `restated`
        one that differs, replaces the replica and the ledgers' blocking (a repair, counted and logged once).
        """
        blocked = recipient_blocked(recipient.status)
        reason = BLOCKING_REASONS.get(recipient.status, "recipient_unblocked")
        digest = public_state_digest(recipient)
        # Ledgers first, replica last: a crash in between redelivers the event, and the replica's
        # version check would otherwise drop it before the ledgers saw it.
        await self._block(recipient, blocked, reason, digest, restated=restated)
        await self._keep(
            RECIPIENT_REPLICA,
            recipient.recipient_id,
            recipient.version,
            digest,
            {
                "status": recipient.status.value,
                "organisation_id": recipient.organisation_id,
                "kelurahan_code": recipient.kelurahan_code,
                "households": recipient.beneficiaries.households,
                "name": recipient.name,
            },
            restated=restated,
        )
        # A need opened concurrently may have created its ledger from the old replica after the first
        # pass; a second (version- and digest-checked, so otherwise idempotent) pass catches it.
        await self._block(recipient, blocked, reason, digest, restated=restated)

    async def organisation(self, organisation: OrganisationPublic, *, restated: bool = False) -> None:
        """Update an organisation's replica (newer versions, or a repair by the registry's rule)."""
        await self._keep(
            ORGANISATION_REPLICA,
            organisation.organisation_id,
            organisation.version,
            public_state_digest(organisation),
            {"name": organisation.name, "status": organisation.status.value, "kind": organisation.kind.value},
            restated=restated,
        )

    async def recipient_contact(self, recipient_id: str, contact: dict[str, str | None]) -> None:
        """Keep a recipient's confidential contact person (for the donors who pledge to it)."""
        await self.replicas.record_recipient_contact(recipient_id, contact)

    async def organisation_contact(self, organisation_id: str, contact: dict[str, str | None]) -> None:
        """Keep an organisation's confidential contact person."""
        await self.replicas.record_organisation_contact(organisation_id, contact)

    async def contact_erased(self, key: str) -> None:
        """Forget a contact person the registry erased (a tombstone on its compacted topic)."""
        await self.replicas.erase_contact(key)

    async def _keep(
        self, view: str, key: str, version: int, digest: str, fields: dict[str, Any], *, restated: bool
    ) -> None:
        """Read the replica, decide by version and digest (`replica_takes`), write it as read; again if it moved."""
        read, write = (
            (self.replicas.organisation_held, self.replicas.replace_organisation)
            if view == ORGANISATION_REPLICA
            else (self.replicas.recipient_held, self.replicas.replace_recipient)
        )
        while True:
            held = await read(key)
            if not replica_takes(held, version, digest, restated=restated):
                return  # stale or redelivered snapshot
            if await write(key, held, {**fields, "version": version, "state_digest": digest}):
                repair = replica_repair(held, version, digest, restated=restated)
                if repair:
                    note_repair(view, key, repair)
                return

    async def _block(
        self, recipient: RecipientPublic, blocked: bool, reason: str, digest: str, *, restated: bool
    ) -> None:
        repaired: list[str] = []

        def decide(ledger: Ledger) -> LedgerChange[None]:
            repair = blocking_repair(ledger, recipient.version, digest, restated=restated)
            repaired[:] = [repair] if repair else []
            return block_recipient(
                ledger, recipient.version, blocked, reason, self.clock.now(), digest=digest, restated=restated
            )

        async for need_id in self.ledgers.need_ids_of_recipient(recipient.recipient_id):
            repaired.clear()
            await self.ledgers.apply(need_id, decide)
            if repaired:
                note_repair(LEDGER_BLOCKING, need_id, repaired[0])
