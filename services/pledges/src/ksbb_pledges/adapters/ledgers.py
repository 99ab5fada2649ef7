"""Need ledgers in MongoDB: each decision becomes ONE conditional single-document update, events included.

The update is guarded by the ledger's revision `rev` as read before deciding and carries the changed
pledge(s), the recomputed quantities and the outgoing events (outbox). Concurrent writers — even in
other processes — that read the same revision lose the race, re-read and decide again, so a need can
never be committed beyond its requested quantity. The per-pledge copies are written after each change
(and repaired by a sweep when a crash came in between).

The document holds only live pledges. A pledge that settles leaves `pledges` in the decision's own write,
parked in `leaving`; right after, its copy is written (an idempotent, version-guarded upsert) and only
then is it pulled from `leaving`. A crash in between leaves it parked: the next write on the ledger, or
the copies sweep, finishes the move — so a settled pledge is always in the ledger or in its copy (nothing
is lost), and the quantities never change outside the guarded write (nothing is counted twice). Reads of
one pledge look in the ledger, then in `leaving`, then in the copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from ksbb_contracts.vocab import NeedStatus
from ksbb_kit.outbox import PendingWrite, new_document, with_outbox
from prometheus_client import Counter
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ksbb_pledges.adapters.copies import MongoPledgeCopies, pledge_of_copy
from ksbb_pledges.adapters.outbox import OutboxEntries
from ksbb_pledges.domain.errors import LedgerBusy, UnknownNeed
from ksbb_pledges.domain.ledger import LedgerChange, is_live
from ksbb_pledges.domain.lifecycle import CONFIRMED, PLEDGED
from ksbb_pledges.domain.pledge import Ledger, Pledge

R = TypeVar("R")
#: Decisions taken again: the revision guard missed (`revision`: another writer came first), the ledger was
#: created by another writer first (`created`), or a refusal was decided on remembered facts (`remembered`).
DECISIONS_REDONE = Counter(
    "ksbb_ledger_decisions_redone_total", "Ledger decisions decided again on a fresh read", ["reason"]
)
#: Every ledger field except the live pledges and the outbox bookkeeping (focused reads; `leaving` is
#: empty but for a moment after a pledge settled).
LEDGER_SCALARS = (
    "_id",
    "recipient_id",
    "organisation_id",
    "kelurahan_code",
    "item",
    "unit",
    "priority",
    "needed_by",
    "requested",
    "status",
    "need_version",
    "need_digest",
    "recipient_version",
    "recipient_blocked",
    "recipient_digest",
    "committed",
    "in_transit",
    "delivered",
    "ledger_version",
    "rev",
    "live_pledges",
    "leaving",
    "created_at",
    "updated_at",
    "last_delivered_at",
)
LEDGER_FIELDS_HIDDEN = {"_outbox": 0, "_outbox_pending": 0, "_outbox_lease": 0, "_applied": 0}
#: A ledger without its pledges (open needs, matching).
LEDGER_WITHOUT_PLEDGES = {**LEDGER_FIELDS_HIDDEN, "pledges": 0, "leaving": 0}
#: Ledgers whose facts this process remembers as it last wrote them (a few hundred bytes each).
KNOWN_LEDGERS = 10_000
#: Revision-guard misses in a row after which a decision gives up (503, try again) instead of holding the
#: need's lock: with the growing back-off that is about a second of other writers always getting in first.
MAX_DECISION_ATTEMPTS = 64
#: What is left to do once a decision is written: its copies, outside the need's lock.
FollowUp = Callable[[], Awaitable[None]] | None


class MongoLedgerStore:
    """Reads need ledgers and writes decisions on them atomically; keeps the per-pledge copies in step."""

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        *,
        outbox: OutboxEntries,
        pending: PendingWrite,
    ) -> None:
        self.ledgers = db["ledgers"]
        # The copies follow every write; their listing and repair are the copies store's own business.
        self.copies = MongoPledgeCopies(db)
        self._outbox = outbox
        self._pending = pending
        # One writer per need inside this process: contenders queue here instead of losing optimistic
        # races against each other; other processes are still held off by the revision guard.
        self._need_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # A ledger's facts as this process last wrote them: a new pledge on it is decided without reading
        # it first. Safe because the write is guarded by the revision: had anyone else written since, the
        # guard misses and the ledger is read again.
        self._known: OrderedDict[str, Ledger] = OrderedDict()

    async def create_indexes(self) -> None:
        """Indexes the queries need (no partial or TTL indexes: the CI server lacks them)."""
        # Every guarded write names `_id` and `rev` and nothing else: this index answers it on any server
        # (the stand-in looks a write's documents up only through an index with exactly its fields).
        await self.ledgers.create_index([("_id", ASCENDING), ("rev", ASCENDING)], unique=True)
        await self.ledgers.create_index([("pledges.pledge_id", ASCENDING)])
        await self.ledgers.create_index([("recipient_id", ASCENDING)])
        await self.ledgers.create_index([("status", ASCENDING), ("item", ASCENDING)])
        await self.copies.create_indexes()

    # -- reading ----------------------------------------------------------------------------------

    async def get(self, need_id: str, *, focus: str | None = None) -> Ledger | None:
        """A ledger without outbox bookkeeping; with `focus`, its pledges are only that one, wherever it is."""
        if focus is None:
            doc = await self.ledgers.find_one({"_id": need_id}, projection=LEDGER_FIELDS_HIDDEN)
            return await self._complete(doc)
        return (await self._focused(need_id, focus, look_in_copies=True))[0]

    async def ledger_of_pledge(self, pledge_id: str) -> Ledger | None:
        """The ledger of a pledge with only that pledge in `pledges` (live, leaving, or settled in its copy)."""
        copy = await self.copies.get(pledge_id)
        if copy is not None:
            doc, _ = await self._focused(copy["need_id"], pledge_id, look_in_copies=True, copy=copy)
            if doc is not None and doc["pledges"]:
                return doc
        # No copy yet (a crash came between the ledger write and the copy): the ledgers themselves know.
        doc = await self.ledgers.find_one({"pledges.pledge_id": pledge_id}, projection=_focused_on(pledge_id))
        return await self._complete(doc)

    async def need_of_pledge(self, pledge_id: str) -> str | None:
        """The need a pledge was made for, as its per-pledge copy says (None when there is no copy)."""
        copy = await self.copies.get(pledge_id)
        return copy["need_id"] if copy is not None else None

    async def pledges_of_need(self, need_id: str) -> list[Pledge]:
        """Every pledge a need ever had, oldest first: the ledger's live and leaving ones, the settled copies."""
        doc = await self.get(need_id)
        held = [*(doc or {}).get("pledges", []), *(doc or {}).get("leaving", [])]
        found = {p["pledge_id"]: p for p in await self.copies.of_need(need_id)}
        found.update({p["pledge_id"]: p for p in held})  # the ledger's state is never older than a copy
        return sorted(found.values(), key=lambda p: (p["created_at"], p["pledge_id"]))

    async def need_ids_of_recipient(self, recipient_id: str) -> AsyncIterator[str]:
        """Every need of a recipient that has a ledger."""
        async for ledger in self.ledgers.find({"recipient_id": recipient_id}, projection={"_id": 1}):
            yield ledger["_id"]

    async def waiting_pledges(self) -> AsyncIterator[tuple[str, list[Pledge]]]:
        """(need id, pledges) of each ledger with a pledge waiting for confirmation or dispatch."""
        waiting = [PLEDGED.value, CONFIRMED.value]
        cursor = self.ledgers.find({"pledges.status": {"$in": waiting}}, projection={"_id": 1, "pledges": 1})
        async for candidate in cursor:
            yield candidate["_id"], candidate["pledges"]

    async def organisation_of_recipient(self, recipient_id: str) -> str | None:
        """The facilitating organisation named by any ledger of the recipient."""
        some = await self.ledgers.find_one({"recipient_id": recipient_id}, projection={"organisation_id": 1})
        return (some or {}).get("organisation_id")

    async def open_needs(self, item: str) -> list[Ledger]:
        """Open, unblocked needs of an item with something remaining (without their pledges)."""
        query = {
            "status": NeedStatus.OPEN.value,
            "item": item,
            "recipient_blocked": {"$ne": True},
            "$expr": {"$lt": ["$committed", "$requested"]},
        }
        return [ledger async for ledger in self.ledgers.find(query, projection=LEDGER_WITHOUT_PLEDGES)]

    async def pledges_of_offer(self, offer_id: str) -> dict[str, Pledge]:
        """The pledges already made from an offer, by need id (live ones from the ledgers, settled from copies)."""
        found = await self.copies.of_offer(offer_id)
        query = {"$or": [{"pledges.offer_id": offer_id}, {"leaving.offer_id": offer_id}]}
        async for ledger in self.ledgers.find(query, projection={"pledges": 1, "leaving": 1}):
            for pledge in [*ledger.get("pledges", []), *ledger.get("leaving", [])]:
                if pledge.get("offer_id") == offer_id:
                    found[ledger["_id"]] = pledge
        return found

    async def recipient_history(self) -> dict[str, tuple[int, datetime | None]]:
        """Per recipient: units received so far and when the last delivery happened (anti-stacking)."""
        pipeline = [
            {
                "$group": {
                    "_id": "$recipient_id",
                    "received": {"$sum": "$delivered"},
                    "last": {"$max": "$last_delivered_at"},
                }
            }
        ]
        history: dict[str, tuple[int, datetime | None]] = {}
        async for row in await self.ledgers.aggregate(pipeline):
            history[row["_id"]] = (int(row.get("received") or 0), row.get("last"))
        return history

    # -- changing ---------------------------------------------------------------------------------

    async def apply(
        self,
        need_id: str,
        decide: Callable[[Ledger], LedgerChange[R]],
        *,
        create: Callable[[], Ledger] | None = None,
        focus: str | None = None,
        look_in_copies: bool = True,
        new_pledge: bool = False,
    ) -> R:
        """Write one decision on a ledger atomically, deciding again on a fresh read when another writer won.

        `decide` sees the current document and returns a LedgerChange (or raises to refuse); `create`,
        when given, builds the document for a need the ledger does not know yet; `focus` reads only that
        pledge of the ledger (a decision about one pledge must then append or replace just that one) —
        also when it settled already (then from `leaving` or, unless `look_in_copies` is off, from its
        copy). `new_pledge` says the focused pledge id was just made up, so it cannot exist anywhere yet.

        Only the ledger write holds the need's lock; the copies are written after it is released, so the
        next decision on a busy need does not wait for them (their version guard keeps the order). A decision
        about one pledge (`focus`) announces its outcome unless refused, so its outbox marker is left before
        queueing for the lock: on a busy need the lock then covers one guarded write instead of two round
        trips (the marker counts every writer that marked it, so no writer's events go unannounced whatever
        order the writes land in; a refusal only costs the relay one look at the ledger).
        """
        lock = self._need_locks.get(need_id)
        if lock is None:
            lock = self._need_locks[need_id] = asyncio.Lock()
        early = focus is not None
        marked = self._pending("ledgers", need_id, None) if early else contextlib.nullcontext()
        async with marked, lock:
            result, follow_up = await self._apply(
                need_id, decide, create=create, focus=focus, look_in_copies=look_in_copies, new_pledge=new_pledge,
                marked=early,
            )
        if follow_up is not None:
            await follow_up()
        return result

    async def _apply(
        self,
        need_id: str,
        decide: Callable[[Ledger], LedgerChange[R]],
        *,
        create: Callable[[], Ledger] | None,
        focus: str | None,
        look_in_copies: bool,
        new_pledge: bool,
        marked: bool,
    ) -> tuple[R, FollowUp]:
        attempt = 0
        while True:
            attempt += 1
            if attempt > MAX_DECISION_ATTEMPTS:
                raise LedgerBusy(need_id, MAX_DECISION_ATTEMPTS)
            known = self._known.get(need_id) if new_pledge and attempt == 1 else None
            doc: Ledger | None
            if known is not None:
                doc, resident = {**known, "pledges": [], "leaving": list(known["leaving"])}, True
            elif focus is None:
                doc, resident = await self.get(need_id), True
            else:
                doc, resident = await self._focused(need_id, focus, look_in_copies=look_in_copies and not new_pledge)
            if doc is None:
                if create is None:
                    raise UnknownNeed(need_id)
                fresh = create()
                change = decide(fresh)
                if change.noop:
                    return change.result, None
                document = _stored(change.applied_to(fresh), change.departing())
                entries = self._outbox(*change.events)
                try:
                    async with self._announced(need_id, entries, marked=marked):
                        await self.ledgers.insert_one(new_document(document, entries))
                except DuplicateKeyError:
                    DECISIONS_REDONE.labels("created").inc()
                    continue  # another writer created it first: decide again on theirs
                return change.result, self._written(document, change, parked=[])
            try:
                change = decide(doc)
            except Exception:
                if known is None:
                    raise
                # Refusals are decided on what the database holds, never on what this process remembers.
                self._known.pop(need_id, None)
                DECISIONS_REDONE.labels("remembered").inc()
                continue
            parked = list(doc.get("leaving", []))  # moves a crash interrupted: finished after this write
            if change.noop:
                return change.result, functools.partial(self.copies.move_out, doc, parked) if parked else None
            if focus is not None and change.pledges is not None:
                raise AssertionError("a focused read cannot replace the whole pledge list")
            if change.replaced is not None and not resident:
                raise AssertionError("a settled pledge does not change any more")
            departing = change.departing()
            guard: dict[str, Any] = {"_id": need_id, "rev": doc["rev"]}
            array_filters: list[dict[str, Any]] | None = None
            update: dict[str, Any] = {"$set": dict(change.set_fields), "$inc": {"rev": 1}}
            if change.pledges is not None:
                gone = {p["pledge_id"] for p in departing}
                update["$set"]["pledges"] = [p for p in change.pledges if p["pledge_id"] not in gone]
            elif change.appended is not None:
                if not departing:  # a pledge taken back already settled goes straight to `leaving`
                    update["$push"] = {"pledges": change.appended}
            elif change.replaced is not None:
                # The revision guard says the pledge is still where the read found it; the guard stays
                # `_id` and `rev` alone, so the unique index on both answers it (no scan on any server).
                pledge = change.replaced[1]
                if departing:
                    update["$pull"] = {"pledges": {"pledge_id": pledge["pledge_id"]}}
                else:
                    update["$set"]["pledges.$[replaced]"] = pledge
                    array_filters = [{"replaced.pledge_id": pledge["pledge_id"]}]
            if departing:
                update.setdefault("$push", {})["leaving"] = {"$each": departing}
            entries = self._outbox(*change.events)
            try:
                async with self._announced(need_id, entries, marked=marked):
                    result = await self.ledgers.update_one(
                        guard, with_outbox(update, entries), array_filters=array_filters
                    )
            except BaseException:
                self._known.pop(need_id, None)
                raise
            if result.matched_count == 1:
                after = {**doc, **change.set_fields, "rev": doc["rev"] + 1, "leaving": [*parked, *departing]}
                return change.result, self._written(after, change, parked)
            self._known.pop(need_id, None)  # somebody else wrote it: read it again
            DECISIONS_REDONE.labels("revision").inc()
            if known is None:
                # Lost a race: back off a little (more with every loss) so contenders spread out.
                await asyncio.sleep(random.uniform(0, min(0.001 * attempt, 0.02)))

    def _announced(
        self, need_id: str, entries: list[dict[str, Any]], *, marked: bool
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """The outbox bookkeeping around one ledger write (none left to do when `apply` marked it already)."""
        return contextlib.nullcontext() if marked else self._pending("ledgers", need_id, entries)

    def _written(self, ledger: Ledger, change: LedgerChange[Any], parked: list[Pledge]) -> FollowUp:
        """Remember the ledger as written; what is left: its copies, and settled pledges leaving for good."""
        facts = {k: v for k, v in ledger.items() if k != "pledges"}
        self._known[ledger["_id"]] = facts
        self._known.move_to_end(ledger["_id"])
        while len(self._known) > KNOWN_LEDGERS:
            self._known.popitem(last=False)
        leaving = [*change.departing(), *parked]

        async def follow_up() -> None:
            await self.copies.sync(ledger, change.changed())
            if leaving:
                await self.copies.move_out(ledger, leaving)
                gone = {p["pledge_id"] for p in leaving}
                known = self._known.get(ledger["_id"])
                if known is not None and known["rev"] == ledger["rev"]:
                    known["leaving"] = [p for p in known["leaving"] if p["pledge_id"] not in gone]

        return follow_up

    async def _focused(
        self, need_id: str, pledge_id: str, *, look_in_copies: bool, copy: dict[str, Any] | None = None
    ) -> tuple[Ledger | None, bool]:
        """A ledger with only one pledge in `pledges`, and whether the ledger still holds it as live.

        A pledge no longer live in the ledger is shown from `leaving`, else from its copy (a settled pledge
        moved out); `look_in_copies=False` skips the copy for an id that cannot have one yet.
        """
        doc = await self._complete(
            await self.ledgers.find_one({"_id": need_id}, projection=_focused_on(pledge_id))
        )
        if doc is None or doc["pledges"]:
            return doc, doc is not None
        parked = [p for p in doc["leaving"] if p["pledge_id"] == pledge_id]
        if parked:
            doc["pledges"] = parked
        elif look_in_copies:
            copy = copy or await self.copies.get(pledge_id)
            if copy is not None and copy["need_id"] == need_id:
                doc["pledges"] = [pledge_of_copy(copy)]
        return doc, False

    async def _complete(self, doc: Ledger | None) -> Ledger | None:
        """Fill in what a ledger written before pledges left it lacks: the lists and the live-pledge count."""
        if doc is None:
            return None
        doc.setdefault("pledges", [])
        doc.setdefault("leaving", [])
        if "live_pledges" not in doc:
            whole = await self.ledgers.find_one({"_id": doc["_id"]}, projection={"pledges.status": 1})
            doc["live_pledges"] = sum(map(is_live, (whole or {}).get("pledges", [])))
        return doc


def _stored(document: Ledger, departing: list[Pledge]) -> Ledger:
    """A new ledger as stored: settled pledges wait in `leaving` until their copies exist."""
    gone = {p["pledge_id"] for p in departing}
    return {
        **document,
        "pledges": [p for p in document["pledges"] if p["pledge_id"] not in gone],
        "leaving": departing,
    }


def _focused_on(pledge_id: str) -> dict[str, Any]:
    """A projection of a ledger's facts and `leaving` with only one of its live pledges."""
    projection: dict[str, Any] = dict.fromkeys(LEDGER_SCALARS, 1)
    projection["pledges"] = {"$elemMatch": {"pledge_id": pledge_id}}
    return projection
