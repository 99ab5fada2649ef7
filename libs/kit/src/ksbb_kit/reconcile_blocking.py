"""`ksbb reconcile` for the recipient blocking each pledges ledger keeps, against the registry's recipient.

A ledger keeps the recipient snapshot it last applied (`recipient_version`, `recipient_digest`) and whether
that blocks pledges (`recipient_blocked`). It shows the registry's recipient when the digest is the
registry's and it is blocked exactly when the registry's recipient is suspended or archived (the pledges
service's rule; registered, verified and active recipients take pledges). Like the replicas, versions are
shown but not compared: the registry's version also counts changes it does not publish.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ksbb_contracts.events.registry import RecipientPublic, public_state_digest
from ksbb_contracts.vocab import RecipientStatus
from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_kit.outbox import OUTBOX

#: Recipient statuses whose needs take no pledges (the pledges service's `BLOCKING_REASONS`).
BLOCKING_STATUSES = frozenset({RecipientStatus.SUSPENDED.value, RecipientStatus.ARCHIVED.value})


@dataclass(frozen=True)
class BlockingView:
    """A recipient's blocking as one side shows it: the recipient, the snapshot's version and digest (None:
    not kept, or not a valid state) and whether its needs are blocked."""

    recipient_id: str | None
    version: int
    digest: str | None
    blocked: bool

    def as_dict(self) -> dict[str, Any]:
        """The view as JSON-ready values."""
        return {"recipient_id": self.recipient_id, "version": self.version, "digest": self.digest,
                "blocked": self.blocked}


def same_blocking(owner: BlockingView, view: BlockingView) -> bool:
    """Whether a ledger keeps the registry's recipient: the same recipient, digest and blocking."""
    return (owner.digest is not None and (owner.recipient_id, owner.digest, owner.blocked)
            == (view.recipient_id, view.digest, view.blocked))


def registry_blocking(doc: Mapping[str, Any]) -> BlockingView:
    """The blocking the registry's stored recipient calls for."""
    try:
        digest: str | None = public_state_digest(RecipientPublic.model_validate({**doc, "recipient_id": doc["_id"]}))
    except ValidationError:
        digest = None  # not a valid public state: shown as a difference
    return BlockingView(doc["_id"], int(doc.get("version") or 0), digest, doc.get("status") in BLOCKING_STATUSES)


async def blocking_views(
    registry_db: AsyncDatabase[dict[str, Any]], pledges_db: AsyncDatabase[dict[str, Any]]
) -> tuple[dict[str, BlockingView], dict[str, dict[str, BlockingView]]]:
    """Per need: the blocking its recipient at the registry calls for, and the one its pledges ledger keeps."""
    recipients = {
        doc["_id"]: registry_blocking(doc)
        async for doc in registry_db["recipients"].find({}, {OUTBOX: 0, "audit": 0})
    }
    owned: dict[str, BlockingView] = {}
    held: dict[str, BlockingView] = {}
    fields = {"recipient_id": 1, "recipient_version": 1, "recipient_digest": 1, "recipient_blocked": 1}
    async for ledger in pledges_db["ledgers"].find({}, fields):
        recipient_id = ledger.get("recipient_id")
        held[ledger["_id"]] = BlockingView(recipient_id, int(ledger.get("recipient_version") or 0),
                                           ledger.get("recipient_digest"), bool(ledger.get("recipient_blocked")))
        if recipient_id in recipients:
            owned[ledger["_id"]] = recipients[recipient_id]
    return owned, {"pledges": held}
