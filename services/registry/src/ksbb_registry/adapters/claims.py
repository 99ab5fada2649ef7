"""Race-free duplicate detection: one `recipient_claims` document per duplicate key, its `_id` being the key.

The unique `_id` makes "is this unit already registered?" and "register it" one atomic step: a second
registration's insert fails with DuplicateKeyError instead of passing a read-then-insert check. No
transactions are needed (mongo-java-server has none); a crash between the claim and the recipient write
leaves an orphan claim that is taken over atomically (compare-and-set on the stale holder) once it is older
than the grace period, or removed by `sweep`.

Round trips: a registration's keys are claimed in one write when they are free (the common case), and
released in one write; only a key that is already taken costs a read of its claim. The confirmations of
registrations are gathered for a moment and sent as one write for many (`confirm_soon`): an unconfirmed
claim of a written recipient is never taken over (its holder exists and carries the key), and one left
unconfirmed by a crash is confirmed by the sweep.

A claim not yet backed by its recipient lists its holder in `awaiting`; every write that sets the holder
sets `awaiting` with it. Confirming pulls the holder out of that list, filtered by `_id` alone: the pull
changes nothing when another recipient holds the claim by then, so the guard costs no second filter field.
(mongo-java-server looks a document up by its index only when `_id` is the whole filter; any other field
next to it makes every confirmation a scan of all claims.) Claims written before `awaiting` existed carry
`confirmed: false` until confirmed (see `is_confirmed`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from ksbb_contracts.vocab import RecipientStatus
from ksbb_kit.jobs import StuckItems, for_each_item
from pymongo import ASCENDING, DeleteOne, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ksbb_registry.adapters.store import Doc
from ksbb_registry.app.ports import ClaimResult, Clock
from ksbb_registry.domain.duplicates import NAME_CLAIM, RW_CLAIM, claim_keys, is_rw_claim

#: The holder of a claim not yet backed by its written recipient (a list of at most that one id).
AWAITING = "awaiting"
CLAIM_INDEXES = [
    IndexModel([("confirmed", ASCENDING), ("claimed_at", ASCENDING)], name="confirmed_claimed_at"),
    IndexModel([(AWAITING, ASCENDING), ("claimed_at", ASCENDING)], name="awaiting_claimed_at"),
    # The writes guarded by the holder (release, takeover, hand-over) look a claim up by `_id` and holder:
    # unique (as `_id` alone is) so that mongo-java-server uses it instead of scanning every claim.
    IndexModel([("_id", ASCENDING), ("recipient_id", ASCENDING)], unique=True, name="id_holder"),
]
#: Claims not yet backed by their recipient (written by this code, or by older code).
UNCONFIRMED: Doc = {"$or": [{AWAITING: {"$exists": True, "$ne": []}}, {"confirmed": False}]}
_ARCHIVED = RecipientStatus.ARCHIVED.value
#: Marks a database whose pre-existing recipients have had their keys claimed (never a duplicate key).
BACKFILL_MARKER = "meta:backfill-v1"
DUPLICATE_KEY = 11000
#: How long registrations' confirmations are gathered before they are sent together (seconds).
CONFIRM_GATHER_SECONDS = 0.2
#: At most this many recipients' confirmations go in one write.
CONFIRM_BATCH = 500

log = logging.getLogger(__name__)


def is_confirmed(claim: Doc) -> bool:
    """Whether a stored claim is backed by its written recipient (nobody awaits it, no older flag says no)."""
    return not claim.get(AWAITING) and claim.get("confirmed") is not False


def new_claim(key: str, recipient_id: str, now: datetime) -> Doc:
    """A claim document of a key just claimed for a recipient not written yet."""
    return {"_id": key, "recipient_id": recipient_id, "claimed_at": now, AWAITING: [recipient_id]}


def _taken_by(holder: str, now: datetime, *, confirmed: bool) -> Doc:
    """The update handing a claim to another holder: one with a written recipient (an heir) or one awaiting it."""
    if confirmed:
        return {"$set": {"recipient_id": holder, "claimed_at": now, "confirmed": True, AWAITING: []}}
    return {"$set": {"recipient_id": holder, "claimed_at": now, AWAITING: [holder]}, "$unset": {"confirmed": ""}}


def claim_query(claim_id: str) -> Doc:
    """Recipient filter matching the recipients whose fields carry this claim id."""
    if is_rw_claim(claim_id):
        return {"rw_key": claim_id.removeprefix(RW_CLAIM)}
    return {"identity_key": claim_id.removeprefix(NAME_CLAIM)}


class ClaimStore:
    """Claims of duplicate keys by recipients (see the module docstring)."""

    def __init__(
        self,
        db: AsyncDatabase[Doc],
        clock: Clock,
        grace: timedelta,
        attempts: int = 8,
        *,
        gather_seconds: float = CONFIRM_GATHER_SECONDS,
    ) -> None:
        self.claims = db["recipient_claims"]
        self.recipients = db["recipients"]
        self.stuck = StuckItems(db, clock)
        self.now = clock.now
        self.grace = grace
        self.attempts = attempts
        self.gather_seconds = gather_seconds
        #: recipient id -> keys whose confirmation `confirm_soon` has not sent yet
        self._to_confirm: dict[str, list[str]] = {}
        self._confirming: asyncio.Task[None] | None = None

    async def setup(self) -> None:
        """Create the sweep's index (the unique `_id` index exists on every collection) and backfill once."""
        await self.claims.create_indexes(CLAIM_INDEXES)
        await self.backfill()

    async def backfill(self) -> int:
        """Claim the keys of recipients written before claims existed (oldest first; runs once per database)."""
        if await self.claims.find_one({"_id": BACKFILL_MARKER}) is not None:
            return 0
        claimed = 0
        live = self.recipients.find(
            {"status": {"$ne": _ARCHIVED}},
            projection={"identity_key": 1, "rw_key": 1},
            sort=[("created_at", ASCENDING), ("_id", ASCENDING)],
        )
        async for doc in live:
            for key in claim_keys(doc.get("identity_key"), doc.get("rw_key")):
                try:
                    await self.claims.insert_one(
                        {"_id": key, "recipient_id": doc["_id"], "claimed_at": self.now(), "confirmed": True}
                    )
                    claimed += 1
                except DuplicateKeyError:
                    pass  # an older recipient (or a newer registration) holds it already
        try:
            await self.claims.insert_one(
                {"_id": BACKFILL_MARKER, "claimed_at": self.now(), "confirmed": True}
            )
        except DuplicateKeyError:
            pass  # another instance finished the backfill at the same time
        return claimed

    async def claim_many(self, keys: Sequence[str], recipient_id: str) -> list[ClaimResult]:
        """Claim every key for `recipient_id` (one write when all are free); a result per key, in order."""
        keys = list(keys)
        if not keys:
            return []
        now = self.now()
        fresh = [new_claim(key, recipient_id, now) for key in keys]
        try:
            await self.claims.insert_many(fresh, ordered=False)
            return [ClaimResult(key, held=True, new=True) for key in keys]
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            taken = {keys[e["index"]] for e in errors}
        return [
            await self.claim(key, recipient_id, known_taken=True) if key in taken
            else ClaimResult(key, held=True, new=True)
            for key in keys
        ]

    async def claim(self, key: str, recipient_id: str, *, known_taken: bool = False) -> ClaimResult:
        """Claim `key` for `recipient_id`, taking over a stale claim; otherwise report its live holder.

        `known_taken` skips the first insert when a batch claim just found the key taken.
        """
        for attempt in range(self.attempts):
            if not (known_taken and attempt == 0):
                try:
                    await self.claims.insert_one(new_claim(key, recipient_id, self.now()))
                    return ClaimResult(key, held=True, new=True)
                except DuplicateKeyError:
                    pass
            claim = await self.claims.find_one({"_id": key})
            if claim is None:
                continue  # released in between: try the insert again
            holder = claim["recipient_id"]
            if holder == recipient_id:
                return ClaimResult(key, held=True)  # a retried create/update with the same id
            stale, found = await self._staleness(claim)
            if not stale:
                # The holder's name goes with the answer: the refusal names it without reading it again.
                return ClaimResult(key, held=False, holder=holder, holder_name=found.get("name") if found else None)
            # The holder crashed before writing, was archived or moved away from this key. A live
            # recipient registered under an admin override may still carry the key: it inherits the claim.
            heir = await self._live_carrier(key, exclude=[recipient_id, holder])
            new_holder = heir or recipient_id
            taken = await self.claims.find_one_and_update(
                {"_id": key, "recipient_id": holder},
                _taken_by(new_holder, self.now(), confirmed=heir is not None),
            )
            if taken is None:
                continue  # somebody else changed the claim first: look again
            if heir is not None:
                return ClaimResult(key, held=False, holder=heir)
            return ClaimResult(key, held=True, new=True)
        return ClaimResult(key, held=False, holder=None)

    async def confirm(self, keys: list[str], recipient_id: str) -> list[str]:
        """Mark claims as backed by a written recipient (one write); returns keys no longer held (lost to a
        takeover, found with one more read only when some are)."""
        return (await self._confirm_batch({recipient_id: list(keys)})).get(recipient_id, []) if keys else []

    def confirm_soon(self, keys: list[str], recipient_id: str) -> None:
        """Confirm these claims shortly, in one write with other registrations' (see the module docstring)."""
        if not keys:
            return
        self._to_confirm.setdefault(recipient_id, []).extend(keys)
        if self._confirming is None or self._confirming.done():
            self._confirming = asyncio.create_task(self._confirm_gathered())

    async def confirmations_sent(self) -> None:
        """Wait until every confirmation asked for so far has been written (or has failed and been logged)."""
        while self._confirming is not None and not self._confirming.done():
            await asyncio.shield(self._confirming)

    async def _confirm_gathered(self) -> None:
        """Send the gathered confirmations, batch after batch, until none are left."""
        while self._to_confirm:
            await asyncio.sleep(self.gather_seconds)
            batch = dict(list(self._to_confirm.items())[:CONFIRM_BATCH])
            for recipient_id in batch:
                del self._to_confirm[recipient_id]
            try:
                for recipient_id, lost in (await self._confirm_batch(batch)).items():
                    log.error(
                        "recipient %s lost duplicate claims %s to a takeover (grace too short?)", recipient_id, lost
                    )
            except Exception:
                log.exception("claim confirmation of %d recipients failed; the claims sweep confirms", len(batch))

    async def _confirm_batch(self, batch: dict[str, list[str]]) -> dict[str, list[str]]:
        """One write confirming every recipient's claims, each filtered by `_id` alone (see the module
        docstring); the keys each recipient no longer holds, found with one read only when a pull missed."""
        asked = list(dict.fromkeys((key, recipient_id) for recipient_id, keys in batch.items() for key in keys))
        if not asked:
            return {}
        result = await self.claims.bulk_write(
            [UpdateOne({"_id": key}, {"$pull": {AWAITING: holder}}) for key, holder in asked], ordered=False
        )
        if result.modified_count == len(asked):
            return {}
        # Some pull changed nothing: confirmed already (a retry), written by older code, or lost to a takeover.
        stored = {c["_id"]: c async for c in self.claims.find({"_id": {"$in": list({k for k, _ in asked})}})}
        lost: dict[str, list[str]] = {}
        for key, holder in asked:
            claim = stored.get(key)
            if claim is None or claim.get("recipient_id") != holder:
                lost.setdefault(holder, []).append(key)
            elif claim.get("confirmed") is False and not claim.get(AWAITING):
                await self.claims.update_one(  # an older claim: guarded the older way (rare)
                    {"_id": key, "recipient_id": holder}, {"$set": {"confirmed": True}}
                )
        return lost

    async def release(self, keys: list[str], recipient_id: str) -> None:
        """Drop the given claims if (and only if) `recipient_id` still holds them (one write; a delete per key,
        each filtered by `_id` and holder, which the `id_holder` index answers)."""
        if keys:
            await self.claims.bulk_write(
                [DeleteOne({"_id": key, "recipient_id": recipient_id}) for key in dict.fromkeys(keys)], ordered=False
            )

    async def release_all(self, recipient_id: str) -> int:
        """Free every claim of an archived recipient (a live override duplicate inherits it)."""
        freed = 0
        async for claim in self.claims.find({"recipient_id": recipient_id}):
            await self._hand_over_or_drop(claim["_id"], recipient_id)
            freed += 1
        return freed

    async def sweep(self) -> int:
        """Remove (or hand to a live carrier) unconfirmed claims older than the grace period whose holder is stale."""
        cutoff = self.now() - self.grace

        async def repair(claim: Doc) -> int:
            if not await self._is_stale(claim):
                # The holder exists and carries the key: the confirm step was lost; confirm it now.
                await self._confirm_batch({claim["recipient_id"]: [claim["_id"]]})
                return 0
            await self._hand_over_or_drop(claim["_id"], claim["recipient_id"])
            return 1

        # Claim by claim: one that cannot be repaired is marked stuck (`ksbb jobs stuck`), the others are.
        unconfirmed = self.claims.find({**UNCONFIRMED, "claimed_at": {"$lt": cutoff}})
        run = await for_each_item(unconfirmed, repair, job="recipient-claims", item_id=lambda c: str(c["_id"]),
                                  stuck=self.stuck)
        return sum(run.results)

    async def _hand_over_or_drop(self, key: str, holder: str) -> None:
        """Give a claim of a stale holder to a live carrier of the key, or delete it (only if still held)."""
        heir = await self._live_carrier(key, exclude=[holder])
        if heir is not None:
            await self.claims.update_one(
                {"_id": key, "recipient_id": holder},
                _taken_by(heir, self.now(), confirmed=True),
            )
        else:
            await self.claims.delete_one({"_id": key, "recipient_id": holder})

    async def _is_stale(self, claim: Doc) -> bool:
        """A claim is stale when its holder is archived, or (after the grace period) missing or off the key."""
        return (await self._staleness(claim))[0]

    async def _staleness(self, claim: Doc) -> tuple[bool, Doc | None]:
        """Whether a claim is stale (see `_is_stale`), and its holder as read (status, keys and name), if any."""
        holder = await self.recipients.find_one(
            {"_id": claim["recipient_id"]}, projection={"status": 1, "identity_key": 1, "rw_key": 1, "name": 1}
        )
        if holder is not None and holder["status"] == _ARCHIVED:
            return True, holder  # archived units free their keys (archive is final)
        if holder is not None and claim["_id"] in claim_keys(
            holder.get("identity_key"), holder.get("rw_key")
        ):
            return False, holder
        # Missing holder or holder without this key: a create/update may be between its claim and its write.
        return bool(claim["claimed_at"] < self.now() - self.grace), holder

    async def _live_carrier(self, key: str, exclude: list[str]) -> str | None:
        """A non-archived recipient (e.g. registered by admin override) whose fields carry `key`."""
        query: Doc = {**claim_query(key), "status": {"$ne": _ARCHIVED}, "_id": {"$nin": exclude}}
        found = await self.recipients.find_one(query, projection={"_id": 1}, sort=[("_id", ASCENDING)])
        return found["_id"] if found else None
