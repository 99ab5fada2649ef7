"""Pledges: creating them (retry-safe), reading and listing them, the recipient contact, and transitions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ksbb_kit.auth import Principal
from ksbb_kit.clock import Clock
from ksbb_kit.http import fingerprint
from ksbb_kit.ids import derived_id, new_id

from ksbb_pledges.app.access import (
    actors_of,
    check_may_act,
    check_sees_pledge,
    check_sees_recipient,
    donor_id_for,
    listing_scope,
)
from ksbb_pledges.app.ledger import LedgerService
from ksbb_pledges.app.ports import LedgerStore, Page, PledgeCopies, Replicas
from ksbb_pledges.domain.contact import DEFAULT_ACCESS_AFTER_DELIVERY, check_contact_visible
from ksbb_pledges.domain.errors import ContactUnknown, IdempotencyKeyReused, PledgeNotFound
from ksbb_pledges.domain.ledger import LedgerChange, Reservation, transition
from ksbb_pledges.domain.pledge import Ledger, Pledge, check_planned_date, new_pledge


@dataclass(frozen=True)
class PledgeRequest:
    """What a donor pledges: how much of which need, delivered how and when."""

    need_id: str
    quantity: int
    planned_date: date
    mode: str
    note: str | None = None

    def fingerprint(self) -> str:
        """A hash of the request, telling a retry from another request under the same Idempotency-Key."""
        return fingerprint(
            {
                "need_id": self.need_id,
                "quantity": self.quantity,
                "planned_date": self.planned_date.isoformat(),
                "mode": self.mode,
                "note": self.note,
            }
        )


@dataclass(frozen=True)
class Receipt:
    """What arrived of a dispatched pledge."""

    received_quantity: int
    proof_ref: str | None = None


class PledgeService:
    """Every use case of a single pledge; reservations and changes go through the ledger store."""

    def __init__(
        self,
        ledger: LedgerService,
        store: LedgerStore,
        copies: PledgeCopies,
        replicas: Replicas,
        clock: Clock,
        *,
        contact_after_delivery: timedelta = DEFAULT_ACCESS_AFTER_DELIVERY,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.copies = copies
        self.replicas = replicas
        self.clock = clock
        self.contact_after_delivery = contact_after_delivery

    async def create(self, principal: Principal, request: PledgeRequest, idempotency_key: str | None) -> Reservation:
        """Reserve a donor's pledge on the need's ledger; a retried create (same key) finds the first one."""
        subject = principal.subject
        pledge_id = derived_id("plg", subject, idempotency_key) if idempotency_key else new_id("plg")
        # A retry finds its pledge's copy by id (no scan); a pledge whose copy a crash delayed is still
        # found by the reservation itself, in the need's ledger.
        made_for = await self.store.need_of_pledge(pledge_id) if idempotency_key else None
        if made_for is not None and made_for != request.need_id:
            raise IdempotencyKeyReused("another need")
        check_planned_date(request.planned_date, self.clock.now().date())
        pledge = new_pledge(
            pledge_id=pledge_id,
            donor_id=donor_id_for(subject),
            quantity=request.quantity,
            mode=request.mode,
            planned_date=request.planned_date,
            now=self.clock.now(),
            request_hash=request.fingerprint(),
            note=request.note,
        )
        return await self.ledger.reserve(
            request.need_id, pledge, has_copy=made_for is not None, new_id=not idempotency_key
        )

    async def mine(self, principal: Principal, cursor: str | None, limit: int) -> Page:
        """A donor's own pledges; every pledge for an admin."""
        donor_id = listing_scope(principal, "facilitators and recipients list pledges per need or recipient")
        return await self.copies.page(donor_id=donor_id, cursor=cursor, limit=limit)

    async def of_recipient(self, recipient_id: str, principal: Principal, cursor: str | None, limit: int) -> Page:
        """A recipient's pledges, for the recipient, its facilitators and admins."""
        organisation_id = await self.replicas.recipient_organisation(recipient_id)
        if organisation_id is None:
            organisation_id = await self.store.organisation_of_recipient(recipient_id)
        check_sees_recipient(principal, recipient_id, organisation_id)
        return await self.copies.page(recipient_id=recipient_id, cursor=cursor, limit=limit)

    async def visible(self, pledge_id: str, principal: Principal) -> tuple[Ledger, Pledge]:
        """A pledge with its ledger, for anyone related to it (donor, recipient, facilitator, admin)."""
        ledger = await self.store.ledger_of_pledge(pledge_id)
        if ledger is None:
            raise PledgeNotFound(pledge_id)
        pledge = next(p for p in ledger["pledges"] if p["pledge_id"] == pledge_id)
        check_sees_pledge(principal, ledger, pledge)
        return ledger, pledge

    async def recipient_contact(self, pledge_id: str, principal: Principal) -> dict[str, Any]:
        """The recipient's contact person, for the donor of a live pledge or of one delivered recently."""
        ledger, pledge = await self.visible(pledge_id, principal)
        access_ends_at = check_contact_visible(
            actors_of(principal, ledger, pledge),
            pledge["status"],
            delivered_at=pledge.get("delivered_at"),
            now=self.clock.now(),
            after_delivery=self.contact_after_delivery,
        )
        contact = await self.replicas.recipient_contact(ledger["recipient_id"])
        if not contact:
            raise ContactUnknown(ledger["recipient_id"])
        return {**contact, "recipient_id": ledger["recipient_id"], "access_ends_at": access_ends_at}

    async def confirm(self, pledge_id: str, principal: Principal) -> tuple[Ledger, Pledge]:
        """The recipient (or its facilitator) confirms a pledge."""
        return await self._move(pledge_id, "confirm", principal)

    async def dispatch(self, pledge_id: str, principal: Principal) -> tuple[Ledger, Pledge]:
        """The goods are on their way (the donor; the facilitator for a distribution partner)."""
        return await self._move(pledge_id, "dispatch", principal)

    async def deliver(self, pledge_id: str, principal: Principal, receipt: Receipt) -> tuple[Ledger, Pledge]:
        """The recipient (or its facilitator) records what arrived."""
        return await self._move(
            pledge_id,
            "deliver",
            principal,
            received_quantity=receipt.received_quantity,
            proof_ref=receipt.proof_ref,
        )

    async def cancel(self, pledge_id: str, principal: Principal, reason: str | None) -> tuple[Ledger, Pledge]:
        """The donor withdraws before dispatch."""
        return await self._move(pledge_id, "cancel", principal, reason=reason or "donor_cancelled")

    async def reject(self, pledge_id: str, principal: Principal, reason: str) -> tuple[Ledger, Pledge]:
        """The recipient (or its facilitator) turns a pledge down."""
        return await self._move(pledge_id, "reject", principal, reason=reason)

    async def _move(
        self,
        pledge_id: str,
        action: str,
        principal: Principal,
        *,
        received_quantity: int | None = None,
        proof_ref: str | None = None,
        reason: str | None = None,
    ) -> tuple[Ledger, Pledge]:
        """One transition, atomically on the pledge's ledger: permission first, then the state."""
        located = await self.store.ledger_of_pledge(pledge_id)
        if located is None:
            raise PledgeNotFound(pledge_id)

        def decide(ledger: Ledger) -> LedgerChange[tuple[Ledger, Pledge]]:
            pledge = ledger["pledges"][0]  # the focused read holds just this pledge
            by = check_may_act(principal, ledger, pledge, action)
            return transition(
                ledger,
                pledge,
                action,
                by=by,
                now=self.clock.now(),
                received_quantity=received_quantity,
                proof_ref=proof_ref,
                reason=reason,
            )

        return await self.store.apply(located["_id"], decide, focus=pledge_id)
