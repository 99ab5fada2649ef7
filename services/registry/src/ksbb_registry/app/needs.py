"""Use cases of needs: post, read, change, cancel, list; close them with their recipient; recurring series;
the ledger quantities the pledges service publishes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import asdict, dataclass

from ksbb_contracts.vocab import Item, NeedStatus, Priority, RecipientStatus
from ksbb_kit.auth import Principal, Role
from ksbb_kit.ids import derived_id
from ksbb_kit.jobs import StuckItems, for_each_item
from ksbb_kit.repairs import note_repair

from ksbb_registry.app.access import may_act_for, require
from ksbb_registry.app.ports import Clock, Decide, ListQuery, NeedStore, Page, Precondition, RecipientStore
from ksbb_registry.domain import needs as rules
from ksbb_registry.domain.change import Change
from ksbb_registry.domain.errors import NotFound, RuleBroken
from ksbb_registry.domain.needs import Ledger, Need, NeedPatch, NewNeed
from ksbb_registry.domain.recipients import Recipient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NeedFilters:
    """Optional filters of the need list (each one an exact match)."""

    recipient_id: str | None = None
    organisation_id: str | None = None
    status: NeedStatus | None = None
    item: Item | None = None
    priority: Priority | None = None
    kota_code: str | None = None
    kecamatan_code: str | None = None
    kelurahan_code: str | None = None
    series_id: str | None = None

    def given(self) -> dict[str, object]:
        """The filters that were set."""
        return {name: value for name, value in asdict(self).items() if value is not None}


def _missing(need_id: str) -> NotFound:
    """The error when a need to change does not exist."""
    return NotFound("need", need_id, message=f"{need_id} does not exist", field="id")


class NeedService:
    """Needs of recipient units and the rules that keep them consistent with their recipients."""

    def __init__(self, needs: NeedStore, recipients: RecipientStore, clock: Clock) -> None:
        self.needs = needs
        self.recipients = recipients
        self.clock = clock

    async def get(self, need_id: str) -> Need:
        """A need (NotFound otherwise)."""
        need = await self.needs.get(need_id)
        if need is None:
            raise NotFound("need", need_id)
        return need

    async def read(self, need_id: str, principal: Principal) -> Need:
        """A need the caller may see: admins, its organisation's staff, its recipient's account."""
        need = await self.get(need_id)
        require(
            principal.is_admin
            or principal.is_facilitator_of(need.organisation_id)
            or principal.is_recipient(need.recipient_id)
        )
        return need

    async def post(
        self, need_id: str, recipient_id: str, command: NewNeed, principal: Principal
    ) -> tuple[Need, bool]:
        """Post a need for an active recipient (its account, its facilitators, admins).

        Round trips: the recipient read next to the new need's outbox marker, then the need with its events,
        then the recipient's status again. A retried create (same id) gets the need it created: from the
        insert, or, when the recipient would refuse it now, from one more read."""
        async with contextlib.AsyncExitStack() as stack:
            recipient, insert = await asyncio.gather(
                self.recipients.get(recipient_id), stack.enter_async_context(self.needs.announced(need_id))
            )
            try:
                if recipient is None:
                    raise NotFound("recipient", recipient_id)
                require(may_act_for(principal, recipient))
                change = rules.post(need_id, recipient, command, principal.subject, self.clock.now())
            except RuleBroken:
                existing = await self.needs.get(need_id)
                if existing is not None:
                    return existing, False  # a retried create with the same Idempotency-Key
                raise
            created = await insert(change)
        # A suspension between our check and the insert may have missed this need: close it now.
        latest = await self.recipients.get(recipient_id)
        if latest is not None and latest.status is not RecipientStatus.ACTIVE:
            await self.close_needs_of(latest)
            return await self.get(need_id), created[1]
        return created

    async def change(
        self, need_id: str, patch: NeedPatch, principal: Principal, precondition: Precondition | None = None
    ) -> Need:
        """Change an open need's quantity, priority, dates or notes."""
        changes = patch.changes()
        await self.read(need_id, principal)

        def decide(current: Need, version: int) -> Change[Need] | None:
            if precondition:
                precondition(current.need_id, current.version)
            return rules.revise(current, changes, version, self.clock.now())

        return await self._update(need_id, decide)

    async def cancel(
        self, need_id: str, reason: str, principal: Principal, precondition: Precondition | None = None
    ) -> Need:
        """Cancel an open need (and stop its series)."""
        await self.read(need_id, principal)

        def decide(current: Need, version: int) -> Change[Need]:
            if precondition:
                precondition(current.need_id, current.version)
            return rules.cancel(current, reason, version, self.clock.now())

        return await self._update(need_id, decide)

    async def find(
        self, principal: Principal, filters: NeedFilters, page: Page
    ) -> tuple[list[Need], str | None]:
        """Needs visible to the caller (admins: all; facilitators: their organisation's; recipients: their own)."""
        equals = filters.given()
        if principal.role is Role.FACILITATOR:
            require(
                equals.get("organisation_id") in (None, principal.org_id),
                "facilitators list their own organisation's needs only",
            )
            equals["organisation_id"] = principal.org_id
        elif principal.role is Role.RECIPIENT:
            require(
                equals.get("recipient_id") in (None, principal.recipient_id),
                "a recipient lists its own needs only",
            )
            equals["recipient_id"] = principal.recipient_id
        else:
            require(principal.is_admin)
        return await self.needs.find(ListQuery(equals), page)

    async def recipients_with_open_needs(self, organisation_id: str | None) -> list[str]:
        """Ids of recipients (of one organisation, if given) that have an open need."""
        return await self.needs.recipients_with_open_needs(organisation_id)

    async def close_needs_of(self, recipient: Recipient) -> int:
        """Close every open need of a suspended/archived recipient, each with its own NeedClosed event."""
        if recipient.status is RecipientStatus.ACTIVE:
            await self.recipients.need_closure_done(recipient.recipient_id)
            return 0
        reason = rules.closure_reason(recipient.status)
        closed = 0
        for need_id in await self.needs.open_need_ids(recipient.recipient_id):

            def decide(current: Need, version: int) -> Change[Need] | None:
                return rules.close(current, reason, version, self.clock.now())

            outcome = await self.needs.update(need_id, decide)
            if outcome is None:
                raise _missing(need_id)
            closed += int(outcome[1])
        # Clear the mark only if the recipient did not change meanwhile; otherwise the sweep retries.
        await self.recipients.need_closure_done(recipient.recipient_id, version=recipient.version)
        return closed

    async def close_pending(self, *, stuck: StuckItems | None = None) -> int:
        """Repair: close open needs of recipients whose suspension/archive did not finish closing them."""
        run = await for_each_item(self.recipients.awaiting_need_closure(), self.close_needs_of,
                                  job="need-closure", item_id=lambda r: r.recipient_id, stuck=stuck)
        return sum(run.results)

    async def open_due_periods(self, *, stuck: StuckItems | None = None) -> int:
        """Open the next period's need of every recurring series whose period has started.

        Series by series: one that cannot be continued (a date out of range) is marked stuck; the others open.
        """
        now = self.clock.now()

        async def open_next(previous: Need) -> int:
            recipient = await self.recipients.get(previous.recipient_id)
            if recipient is None or recipient.status is not RecipientStatus.ACTIVE:
                return 0  # resumes when the recipient is active again
            start = rules.due_period(previous, now.date())
            if start is None:
                return 0
            need_id = derived_id("need", previous.series_id or previous.need_id, start.isoformat())
            _, created = await self.needs.insert(rules.next_period(previous, start, need_id, now))
            # The series continues from the new period; the previous need stops pointing at it.
            await self.needs.end_series_link(previous.need_id)
            return int(created)

        run = await for_each_item(self.needs.series_due(now), open_next, job="need-recurrence",
                                  item_id=lambda need: need.need_id, stuck=stuck)
        return sum(run.results)

    async def apply_ledger(self, need_id: str, ledger: Ledger, *, restated: bool = False) -> bool:
        """Store the pledges service's quantities on a need; fulfil it when deliveries reach the request.

        The pledges service is authoritative: figures at a version already held are replaced when they
        differ (a repair, counted and logged once), and a `restated` state replaces any differing figures.
        """
        repairs: list[str] = []

        def decide(current: Need, version: int) -> Change[Need] | None:
            reason = rules.ledger_repair(current.ledger, ledger, restated=restated)
            repairs[:] = [reason] if reason else []
            return rules.record_ledger(current, ledger, version, self.clock.now(), restated=restated)

        outcome = await self.needs.update(need_id, decide)
        if outcome is None:
            log.warning("ledger event for unknown need %s ignored", need_id)
            return False
        if outcome[1] and repairs:
            note_repair("registry.needs.ledger", need_id, repairs[0])
        return outcome[1]

    async def _recipient(self, recipient_id: str) -> Recipient:
        recipient = await self.recipients.get(recipient_id)
        if recipient is None:
            raise NotFound("recipient", recipient_id)
        return recipient

    async def _update(self, need_id: str, decide: Decide[Need]) -> Need:
        outcome = await self.needs.update(need_id, decide)
        if outcome is None:
            raise _missing(need_id)
        return outcome[0]
