"""MongoDB store of the durable e-mail outbox (collection `emails`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_notifier.adapters.mongo import (
    EPOCH,
    Document,
    DueIndex,
    due_filter,
    insert_ignoring_duplicates,
    lease_guard,
    update_by_id,
)
from ksbb_notifier.adapters.retention import RetentionBuckets, delete_finished
from ksbb_notifier.domain.mailing import QueuedEmail

#: Statuses of an e-mail that is done (the retention sweep may delete it).
FINISHED = ("sent", "skipped", "failed")


def email_document(email: QueuedEmail) -> Document:
    """The stored form of a queued e-mail (not leased)."""
    return {
        "_id": email.id,
        "kind": email.kind,
        "to_kind": email.to_kind,
        "to_id": email.to_id,
        "context": email.context,
        "status": email.status,
        "attempts": email.attempts,
        "next_attempt_at": email.next_attempt_at,
        "leased_until": EPOCH,
        "created_at": email.created_at,
    }


def email_from(doc: Document) -> QueuedEmail:
    """A queued e-mail from its stored form."""
    return QueuedEmail(
        id=doc["_id"],
        kind=doc["kind"],
        to_kind=doc["to_kind"],
        to_id=doc["to_id"],
        context=doc.get("context", {}),
        status=doc["status"],
        attempts=doc.get("attempts", 0),
        next_attempt_at=doc["next_attempt_at"],
        created_at=doc["created_at"],
        lease_token=doc.get("lease_token"),
    )


class MongoEmailQueue:
    """Queued e-mails in MongoDB, leased one at a time so several instances never send the same one."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._emails = db["emails"]
        #: Pending e-mails only: what the sender's poll reads (see `DueIndex`).
        self._due = DueIndex(db["email_due"])
        #: E-mails by creation minute: what the retention sweep reads (`RetentionBuckets`).
        self._retained = RetentionBuckets(db["retention"], "emails")

    async def create_indexes(self) -> None:
        """The index of the claim query."""
        await self._emails.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self._due.adopt(self._emails)
        await self._retained.adopt(self._emails)

    async def add_many(self, emails: Sequence[QueuedEmail]) -> int:
        """Queue e-mails in one write (ids already queued are left alone); how many were new."""
        await self._due.put([{"_id": e.id, "at": e.next_attempt_at} for e in emails if e.status == "pending"])
        await self._retained.note([(e.id, e.created_at) for e in emails])
        return await insert_ignoring_duplicates(self._emails, [email_document(e) for e in emails])

    async def add(self, email: QueuedEmail) -> bool:
        """Queue an e-mail; False if one with its id exists already."""
        if email.status == "pending":
            await self._due.put([{"_id": email.id, "at": email.next_attempt_at}])
        await self._retained.note([(email.id, email.created_at)])
        return bool(await insert_ignoring_duplicates(self._emails, [email_document(email)]))

    async def claim_due(self, now: datetime, lease_until: datetime) -> QueuedEmail | None:
        """Lease the oldest due pending e-mail, or None (candidates come from the due index)."""
        while candidates := await self._due.due(now, 5):
            for candidate in candidates:
                doc = await self._emails.find_one_and_update(
                    {"_id": candidate["_id"], **due_filter(now)},
                    {"$set": {"leased_until": lease_until, "lease_token": uuid.uuid4().hex}},
                    return_document=ReturnDocument.AFTER,
                )
                if doc is not None:
                    return email_from(doc)
            await self._due.correct(self._emails, candidates, now)
        return None

    async def settle(self, email: QueuedEmail, changes: dict[str, Any]) -> None:
        """Change a leased e-mail and release the lease."""
        await update_by_id(
            self._emails, lease_guard(email.id, email.lease_token), {"$set": {**changes, "leased_until": EPOCH}}
        )
        if changes.get("status", email.status) == "pending":
            await self._due.put([{"_id": email.id, "at": changes.get("next_attempt_at", email.next_attempt_at)}])
        else:
            await self._due.remove([email.id])

    async def sweep_finished(self, cutoff: datetime) -> int:
        """Delete sent, skipped and failed e-mails created before `cutoff`; how many (read through their
        creation-minute buckets: the e-mail history is never scanned)."""
        deleted = 0

        async def expire(ids: list[str]) -> list[str]:
            nonlocal deleted
            gone, kept = await delete_finished(self._emails, ids, finished=FINISHED, cutoff=cutoff)
            deleted += gone
            return [d["_id"] for d in kept]

        await self._retained.sweep(cutoff, expire)
        return deleted
