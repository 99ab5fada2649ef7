"""MongoDB store of the durable e-mail outbox (collection `emails`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DeleteOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_notifier.adapters.mongo import (
    EPOCH,
    Document,
    DueIndex,
    due_filter,
    insert_ignoring_duplicates,
    insert_new,
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
    """Queued e-mails in MongoDB, each leased atomically on its own so several instances never send the same one."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._emails = db["emails"]
        #: Pending e-mails only: what the sender's poll reads (see `DueIndex`).
        self._due = DueIndex(db["email_due"])
        #: E-mails by creation minute: what the retention sweep reads (`RetentionBuckets`).
        self._retained = RetentionBuckets(db["retention"], "emails")
        #: E-mails this instance stored leased to itself (`add_many` with a lease) and until when: due, but
        #: its own polls skip their entries (another instance's claim fails on the lease instead).
        self._holding: dict[str, datetime] = {}

    async def create_indexes(self) -> None:
        """The index of the claim query."""
        await self._emails.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self._due.adopt(self._emails)
        await self._retained.adopt(self._emails)

    async def add_many(
        self, emails: Sequence[QueuedEmail], *, lease_until: datetime | None = None
    ) -> list[QueuedEmail]:
        """Queue e-mails in one write (ids already queued are left alone); the ones that were new.

        With `lease_until` they are stored leased to the caller (one fresh token): it sends them without a
        claim, and no other instance can claim them until the lease runs out (a crash loses none).
        """
        await self._due.put([{"_id": e.id, "at": e.next_attempt_at} for e in emails if e.status == "pending"])
        await self._retained.note([(e.id, e.created_at) for e in emails])
        if lease_until is None:
            documents = [email_document(e) for e in emails]
        else:
            token = uuid.uuid4().hex
            emails = [replace(e, lease_token=token) for e in emails]
            documents = [{**email_document(e), "leased_until": lease_until, "lease_token": token} for e in emails]
        new_ids = set(await insert_new(self._emails, documents))
        new = [e for e in emails if e.id in new_ids]
        if lease_until is not None:
            self._holding.update((e.id, lease_until) for e in new)
        return new

    async def add(self, email: QueuedEmail) -> bool:
        """Queue an e-mail; False if one with its id exists already."""
        if email.status == "pending":
            await self._due.put([{"_id": email.id, "at": email.next_attempt_at}])
        await self._retained.note([(email.id, email.created_at)])
        return bool(await insert_ignoring_duplicates(self._emails, [email_document(email)]))

    async def claim_due_many(self, now: datetime, lease_until: datetime, limit: int) -> list[QueuedEmail]:
        """Lease up to `limit` due pending e-mails at once; the ones this call won (oldest queued first).

        One read of the due index, then one findAndModify per candidate by `_id` and the due condition, all
        sent at once under one token: each e-mail is leased atomically on its own, so two instances racing
        for the same ones win each at most once. Candidates lost to another instance (or finished) have their
        entries corrected (moved to when they are due, or dropped once finished).
        """
        for held in [i for i, until in self._holding.items() if until <= now]:
            del self._holding[held]
        while candidates := await self._due.due(now, limit, exclude_ids=sorted(self._holding)):
            token = uuid.uuid4().hex
            lease = {"$set": {"leased_until": lease_until, "lease_token": token}}
            leased = await asyncio.gather(*(
                self._emails.find_one_and_update(
                    {"_id": c["_id"], **due_filter(now)}, lease, return_document=ReturnDocument.AFTER
                )
                for c in candidates
            ))
            won = [email_from(d) for d in leased if d is not None and d.get("lease_token") == token]
            won_ids = {e.id for e in won}
            lost = [c for c in candidates if c["_id"] not in won_ids]
            if lost:
                await self._due.correct(self._emails, lost, now)
            if won:
                return won
        return []

    async def settle_many(self, settled: Sequence[tuple[QueuedEmail, dict[str, Any]]]) -> None:
        """`settle` for many leased e-mails at once: each change guarded by its own lease token (sent
        together), then their due-index moves in one write. Raises after writing the others when one failed."""
        if not settled:
            return
        for email, _ in settled:
            self._holding.pop(email.id, None)
        written = await asyncio.gather(
            *(
                update_by_id(self._emails, lease_guard(email.id, email.lease_token),
                             {"$set": {**changes, "leased_until": EPOCH}})
                for email, changes in settled
            ),
            return_exceptions=True,
        )
        follows: list[UpdateOne | DeleteOne] = []
        for (email, changes), outcome in zip(settled, written, strict=True):
            if isinstance(outcome, BaseException):
                continue  # its lease runs out and a later pass sends it again
            if changes.get("status", email.status) == "pending":
                at = changes.get("next_attempt_at", email.next_attempt_at)
                follows.append(UpdateOne({"_id": email.id}, {"$set": {"_id": email.id, "at": at}}, upsert=True))
            else:
                follows.append(DeleteOne({"_id": email.id}))
        await self._due.apply(follows)
        failures = [outcome for outcome in written if isinstance(outcome, BaseException)]
        if failures:
            raise RuntimeError(f"{len(failures)} of {len(settled)} e-mail outcomes not written: {failures[0]}")

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
