"""What the registry tells this service: needs into ledgers, recipients and organisations into replicas."""

from __future__ import annotations

from ksbb_contracts.events.registry import NeedPublic, OrganisationPublic, RecipientPublic
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


class RegistryFacts:
    """Applies registry snapshots by version, so redelivered or out-of-order events change nothing."""

    def __init__(self, ledgers: LedgerStore, replicas: Replicas, clock: Clock) -> None:
        self.ledgers = ledgers
        self.replicas = replicas
        self.clock = clock

    async def need(self, need: NeedPublic, reason: str | None = None, *, restated: bool = False) -> None:
        """Upsert a need's ledger; a need that stops being open releases its live reservations (`reason`).

        The registry is authoritative: a snapshot at the held version with other content, or a `restated`
        one that differs, replaces the need's terms (a repair, counted and logged once).
        """
        status, recipient_version = await self.replicas.recipient_status(need.recipient_id)
        now = self.clock.now()
        repairs: list[str] = []

        def create() -> Ledger:
            return new_ledger(
                need, recipient_blocked=recipient_blocked(status), recipient_version=recipient_version, now=now
            )

        def decide(ledger: Ledger) -> LedgerChange[None]:
            repair = need_repair(ledger, need, restated=restated)
            repairs[:] = [repair] if repair else []
            return apply_need(ledger, need, reason, self.clock.now(), restated=restated)

        await self.ledgers.apply(need.need_id, decide, create=create)
        if repairs:
            note_repair("pledges.ledgers.need_version", need.need_id, repairs[0])

    async def recipient(self, recipient: RecipientPublic) -> None:
        """Block or unblock the recipient's ledgers, then update its replica."""
        blocked = recipient_blocked(recipient.status)
        reason = BLOCKING_REASONS.get(recipient.status, "recipient_unblocked")
        # Ledgers first, replica last: a crash in between redelivers the event, and the replica's
        # version check would otherwise drop it before the ledgers saw it.
        await self._block(recipient.recipient_id, recipient.version, blocked, reason)
        await self.replicas.upsert_recipient(
            recipient.recipient_id,
            recipient.version,
            {
                "status": recipient.status.value,
                "organisation_id": recipient.organisation_id,
                "kelurahan_code": recipient.kelurahan_code,
                "households": recipient.beneficiaries.households,
                "name": recipient.name,
            },
        )
        # A need opened concurrently may have created its ledger from the old replica after the first
        # pass; a second (version-checked, so otherwise idempotent) pass catches it.
        await self._block(recipient.recipient_id, recipient.version, blocked, reason)

    async def organisation(self, organisation: OrganisationPublic) -> None:
        """Update an organisation's replica."""
        await self.replicas.upsert_organisation(
            organisation.organisation_id,
            organisation.version,
            {"name": organisation.name, "status": organisation.status.value, "kind": organisation.kind.value},
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

    async def _block(self, recipient_id: str, version: int, blocked: bool, reason: str) -> None:
        def decide(ledger: Ledger) -> LedgerChange[None]:
            return block_recipient(ledger, version, blocked, reason, self.clock.now())

        async for need_id in self.ledgers.need_ids_of_recipient(recipient_id):
            await self.ledgers.apply(need_id, decide)
