"""The need ledger in MongoDB: one document per need holding its pledges — the authoritative copy.

Every change (a reservation, a transition, a registry event, an expiry) is ONE conditional
single-document update guarded by the document's revision `rev`; the update carries the new pledge
list, the recomputed quantities and the outgoing events (outbox). Concurrent writers — even in other
processes — that read the same revision lose the race, re-read and decide again, so a need can never
be committed beyond its requested quantity. The `pledges` collection is a derived per-pledge copy for
listing, written after each change and repaired by a sweep.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ksbb_contracts import Event
from ksbb_contracts.events.pledges import (
    NeedLedgerChanged,
    PledgeCancelled,
    PledgeConfirmed,
    PledgeCreated,
    PledgeDelivered,
    PledgeDispatched,
    PledgeExpired,
    PledgeExpiring,
    PledgePublic,
    PledgeRejected,
)
from ksbb_contracts.events.registry import NeedPublic
from ksbb_contracts.vocab import NeedStatus, PledgeStatus
from ksbb_kit.errors import ApiError
from ksbb_kit.outbox import new_document, with_outbox
from ksbb_kit.runtime import ServiceRuntime
from pymongo import ASCENDING, ReplaceOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ksbb_pledges.domain.lifecycle import (
    CANCELLED,
    EXPIRED,
    RELEASABLE,
    ExpiryPolicy,
    Quantities,
    TransitionRefused,
    check_transition,
    expiry_decision,
    quantities,
)

TRANSITION_EVENTS: dict[str, type[Any]] = {
    "confirm": PledgeConfirmed,
    "dispatch": PledgeDispatched,
    "deliver": PledgeDelivered,
    "cancel": PledgeCancelled,
    "reject": PledgeRejected,
}
#: Every ledger field except the pledge list and the outbox bookkeeping (focused reads).
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
    "recipient_version",
    "recipient_blocked",
    "committed",
    "in_transit",
    "delivered",
    "ledger_version",
    "rev",
    "created_at",
    "updated_at",
    "last_delivered_at",
)
LEDGER_FIELDS_HIDDEN = {"_outbox": 0, "_outbox_pending": 0, "_outbox_lease": 0, "_applied": 0}


@dataclass
class Change:
    """What one decision on a ledger does: need facts, pledge changes, events, a result.

    Pledges change in one of three ways: `appended` (a new reservation, `$push`), `replaced` (one
    pledge's old and new state, positional `$set`), or `pledges` (the whole list, for bulk releases and
    expiry). The first two never move the whole list, so a busy need stays cheap to write.
    """

    pledges: list[dict[str, Any]] | None = None
    appended: dict[str, Any] | None = None
    replaced: tuple[dict[str, Any], dict[str, Any]] | None = None
    changed_pledge_ids: set[str] = field(default_factory=set)
    need_set: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    result: Any = None
    noop: bool = False

    def changed(self) -> list[dict[str, Any]]:
        """The pledges in their new state."""
        if self.appended is not None:
            return [self.appended]
        if self.replaced is not None:
            return [self.replaced[1]]
        return [p for p in self.pledges or [] if p["pledge_id"] in self.changed_pledge_ids]


Decide = Callable[[dict[str, Any]], Change]


def pledge_public(ledger: dict[str, Any], pledge: dict[str, Any]) -> PledgePublic:
    """The public event view of an embedded pledge."""
    return PledgePublic(
        pledge_id=pledge["pledge_id"],
        need_id=ledger["_id"],
        recipient_id=ledger["recipient_id"],
        organisation_id=ledger["organisation_id"],
        donor_id=pledge["donor_id"],
        kelurahan_code=ledger["kelurahan_code"],
        item=ledger["item"],
        quantity=pledge["quantity"],
        delivered_quantity=pledge.get("delivered_quantity"),
        mode=pledge["mode"],
        planned_date=date.fromisoformat(pledge["planned_date"]),
        status=pledge["status"],
        version=pledge["version"],
    )


def advance(pledge: dict[str, Any], status: PledgeStatus, now: datetime, by: str, **facts: Any) -> dict[str, Any]:
    """A copy of an embedded pledge moved to a new state, with its audit entry."""
    entry = {"status": status.value, "at": now, "by": by}
    entry.update({k: v for k, v in facts.items() if k in ("reason", "received_quantity", "proof_ref")})
    return {
        **pledge,
        **facts,
        "status": status.value,
        "version": pledge["version"] + 1,
        "updated_at": now,
        f"{status.value}_at": now,
        "history": [*pledge.get("history", []), entry],
    }


class LedgerStore:
    """Reads and changes need ledgers atomically and keeps the per-pledge copies in step."""

    def __init__(self, runtime: ServiceRuntime, policy: ExpiryPolicy) -> None:
        self.runtime = runtime
        self.policy = policy
        self.ledgers = runtime.db["ledgers"]
        self.copies = runtime.db["pledges"]
        self.recipients = runtime.db["recipients"]
        self.organisations = runtime.db["organisations"]
        # One writer per need inside this process: contenders queue here instead of losing optimistic
        # races against each other; other processes are still held off by the revision guard.
        self._need_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def create_indexes(self) -> None:
        """Indexes the queries need (no partial or TTL indexes: the CI server lacks them)."""
        await self.ledgers.create_index([("pledges.pledge_id", ASCENDING)])
        await self.ledgers.create_index([("recipient_id", ASCENDING)])
        await self.ledgers.create_index([("status", ASCENDING), ("item", ASCENDING)])
        await self.copies.create_index([("donor_id", ASCENDING)])
        await self.copies.create_index([("need_id", ASCENDING)])
        await self.copies.create_index([("recipient_id", ASCENDING)])

    # -- reading ----------------------------------------------------------------------------------

    async def get(self, need_id: str, *, focus: str | None = None) -> dict[str, Any] | None:
        """A ledger without outbox bookkeeping; with `focus`, its pledges are only that one (if present)."""
        if focus is None:
            return await self.ledgers.find_one({"_id": need_id}, projection=LEDGER_FIELDS_HIDDEN)
        projection: dict[str, Any] = dict.fromkeys(LEDGER_SCALARS, 1)
        projection["pledges"] = {"$elemMatch": {"pledge_id": focus}}
        doc = await self.ledgers.find_one({"_id": need_id}, projection=projection)
        if doc is not None:
            doc.setdefault("pledges", [])
        return doc

    async def ledger_of_pledge(self, pledge_id: str) -> dict[str, Any] | None:
        """The ledger holding a pledge (the authoritative copy), with only that pledge in `pledges`."""
        projection: dict[str, Any] = dict.fromkeys(LEDGER_SCALARS, 1)
        projection["pledges"] = {"$elemMatch": {"pledge_id": pledge_id}}
        return await self.ledgers.find_one({"pledges.pledge_id": pledge_id}, projection=projection)

    # -- changing ---------------------------------------------------------------------------------

    async def mutate(
        self,
        need_id: str,
        decide: Decide,
        *,
        create: Callable[[], dict[str, Any]] | None = None,
        focus: str | None = None,
    ) -> Any:
        """Apply one decision to a ledger atomically, retrying from a fresh read when another writer won.

        `decide` sees the current document and returns a Change (or raises ApiError); `create`, when
        given, builds the document for a need the ledger does not know yet; `focus` reads only that
        pledge of the ledger (a decision about one pledge must then append or replace just that one).
        """
        lock = self._need_locks.get(need_id)
        if lock is None:
            lock = self._need_locks[need_id] = asyncio.Lock()
        async with lock:
            return await self._mutate(need_id, decide, create=create, focus=focus)

    async def _mutate(
        self,
        need_id: str,
        decide: Decide,
        *,
        create: Callable[[], dict[str, Any]] | None,
        focus: str | None,
    ) -> Any:
        attempt = 0
        while True:
            attempt += 1
            doc = await self.get(need_id, focus=focus)
            if doc is None:
                if create is None:
                    raise ApiError(404, "need_not_found", f"need {need_id} is not in the ledger", field="need_id")
                doc = create()
                change = decide(doc)
                if change.noop:
                    return change.result
                fields, events = self._apply(doc, change)
                document = {**doc, **fields, "pledges": change.pledges or []}
                try:
                    await self.ledgers.insert_one(new_document(document, self.runtime.events(*events)))
                except DuplicateKeyError:
                    continue  # another writer created it first: decide again on theirs
                await self._after_write(document, change)
                return change.result
            change = decide(doc)
            if change.noop:
                return change.result
            if focus is not None and change.pledges is not None:
                raise AssertionError("a focused read cannot replace the whole pledge list")
            fields, events = self._apply(doc, change)
            guard: dict[str, Any] = {"_id": need_id, "rev": doc["rev"]}
            update: dict[str, Any] = {"$set": dict(fields), "$inc": {"rev": 1}}
            if change.pledges is not None:
                update["$set"]["pledges"] = change.pledges
            elif change.appended is not None:
                update["$push"] = {"pledges": change.appended}
            elif change.replaced is not None:
                guard["pledges.pledge_id"] = change.replaced[1]["pledge_id"]
                update["$set"]["pledges.$"] = change.replaced[1]
            result = await self.ledgers.update_one(guard, with_outbox(update, self.runtime.events(*events)))
            if result.matched_count == 1:
                await self._after_write({**doc, **fields, "rev": doc["rev"] + 1}, change)
                return change.result
            # Lost the race: back off a little (more with every loss) so contenders spread out.
            await asyncio.sleep(random.uniform(0, min(0.001 * attempt, 0.02)))

    def _apply(self, doc: dict[str, Any], change: Change) -> tuple[dict[str, Any], list[Event]]:
        """The fields to set after a change, with new quantities and a ledger event when they moved."""
        now = self.runtime.clock.now()
        fields: dict[str, Any] = {**change.need_set, "updated_at": now}
        if change.pledges is not None:
            q = quantities(change.pledges)
        else:
            # Under the revision guard the stored totals are exact, so a delta keeps them exact.
            before = quantities([change.replaced[0]] if change.replaced else [])
            after = quantities(
                [change.appended] if change.appended else [change.replaced[1]] if change.replaced else []
            )
            q = Quantities(
                doc["committed"] + after.committed - before.committed,
                doc["in_transit"] + after.in_transit - before.in_transit,
                doc["delivered"] + after.delivered - before.delivered,
            )
        fields.update(committed=q.committed, in_transit=q.in_transit, delivered=q.delivered)
        merged = {**doc, **fields}
        events = list(change.events)
        moved = any(
            merged.get(k) != doc.get(k) for k in ("requested", "committed", "in_transit", "delivered", "status")
        )
        if moved or doc.get("ledger_version", 0) == 0:
            fields["ledger_version"] = doc.get("ledger_version", 0) + 1
            events.append(
                NeedLedgerChanged(
                    need_id=doc["_id"],
                    recipient_id=merged["recipient_id"],
                    requested=merged["requested"],
                    committed=q.committed,
                    in_transit=q.in_transit,
                    delivered=q.delivered,
                    ledger_version=fields["ledger_version"],
                    need_status=merged["status"],
                    occurred_at=now,
                )
            )
        return fields, events

    async def _after_write(self, ledger: dict[str, Any], change: Change) -> None:
        self.runtime.relay.wake()
        await self.sync_copies(ledger, change.changed())

    async def sync_copies(self, ledger: dict[str, Any], pledges: Sequence[dict[str, Any]]) -> None:
        """Upsert the derived per-pledge copies, never overwriting a newer one."""
        if pledges:
            operations = [
                ReplaceOne(
                    {"_id": p["pledge_id"], "version": {"$lt": p["version"]}},
                    self._copy(ledger, p),
                    upsert=True,
                )
                for p in pledges
            ]
            try:
                await self.copies.bulk_write(operations, ordered=False)
            except BulkWriteError as exc:
                # Duplicate keys mean a newer copy is already there; anything else is a real failure.
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise

    @staticmethod
    def _copy(ledger: dict[str, Any], pledge: dict[str, Any]) -> dict[str, Any]:
        return {
            **{k: v for k, v in pledge.items() if k not in ("pledge_id", "request_hash")},
            "_id": pledge["pledge_id"],
            "need_id": ledger["_id"],
            "recipient_id": ledger["recipient_id"],
            "organisation_id": ledger["organisation_id"],
            "kelurahan_code": ledger["kelurahan_code"],
            "item": ledger["item"],
            "unit": ledger.get("unit"),
        }

    async def transition(
        self,
        pledge_id: str,
        action: str,
        authorise: Callable[[dict[str, Any], dict[str, Any]], str],
        facts: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Move one pledge through the lifecycle: permission first (403), then the state (409), atomically."""
        facts = dict(facts or {})
        located = await self.ledger_of_pledge(pledge_id)
        if located is None:
            raise ApiError(404, "pledge_not_found", f"pledge {pledge_id} does not exist")

        def decide(doc: dict[str, Any]) -> Change:
            pledge = doc["pledges"][0]  # the focused read holds just this pledge
            by = authorise(doc, pledge)
            try:
                target = check_transition(action, pledge["status"])
            except TransitionRefused as exc:
                raise ApiError(409, exc.code, exc.message, details={"status": pledge["status"]}) from exc
            now = self.runtime.clock.now()
            need_set: dict[str, Any] = {}
            extra: dict[str, Any] = {}
            if action == "deliver":
                received = facts["received_quantity"]
                if received > pledge["quantity"]:
                    raise ApiError(
                        422,
                        "received_exceeds_pledged",
                        f"received {received} but only {pledge['quantity']} were pledged",
                        field="received_quantity",
                    )
                facts["delivered_quantity"] = received
                extra = {"received_quantity": received, "proof_ref": facts.get("proof_ref")}
                if received > 0:
                    need_set["last_delivered_at"] = now
            elif action in ("cancel", "reject"):
                extra = {"reason": facts.get("reason") or ("donor_cancelled" if action == "cancel" else "rejected")}
                facts["reason"] = extra["reason"]
            moved = advance(pledge, target, now, by, **facts)
            event = TRANSITION_EVENTS[action](pledge=pledge_public(doc, moved), occurred_at=now, **extra)
            return Change(
                replaced=(pledge, moved),
                changed_pledge_ids={pledge_id},
                need_set=need_set,
                events=[event],
                result=(doc, moved),
            )

        return await self.mutate(located["_id"], decide, focus=pledge_id)

    async def reserve(
        self, need_id: str, pledge: dict[str, Any], *, allow_partial: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any], bool]:
        """Reserve a new pledge on a need's ledger; returns (ledger, pledge, whether it was a replay)."""
        decide = reserve_decision(self.runtime.clock.now, pledge, allow_partial=allow_partial)
        result: tuple[dict[str, Any], dict[str, Any], bool] = await self.mutate(
            need_id, decide, focus=pledge["pledge_id"]
        )
        return result

    # -- registry facts ---------------------------------------------------------------------------

    async def apply_need(self, need: NeedPublic, reason: str | None) -> None:
        """Upsert a need's facts by version; a need that stops being open releases live reservations."""
        now = self.runtime.clock.now()
        blocked, recipient_version = await self._recipient_state(need.recipient_id)

        def create() -> dict[str, Any]:
            return {
                "_id": need.need_id,
                "recipient_id": need.recipient_id,
                "organisation_id": need.organisation_id,
                "kelurahan_code": need.kelurahan_code,
                "item": need.item.value,
                "unit": need.unit,
                "priority": need.priority.value,
                "needed_by": need.needed_by.isoformat(),
                "requested": 0,
                "status": NeedStatus.OPEN.value,
                "need_version": 0,
                "recipient_version": recipient_version,
                "recipient_blocked": blocked,
                "committed": 0,
                "in_transit": 0,
                "delivered": 0,
                "ledger_version": 0,
                "rev": 1,
                "pledges": [],
                "created_at": now,
                "last_delivered_at": None,
            }

        def decide(doc: dict[str, Any]) -> Change:
            if doc.get("need_version", 0) >= need.version:
                return Change(noop=True)  # stale or redelivered snapshot
            change = Change(
                need_set={
                    "recipient_id": need.recipient_id,
                    "organisation_id": need.organisation_id,
                    "kelurahan_code": need.kelurahan_code,
                    "item": need.item.value,
                    "unit": need.unit,
                    "priority": need.priority.value,
                    "needed_by": need.needed_by.isoformat(),
                    "requested": need.quantity,
                    "status": need.status.value,
                    "need_version": need.version,
                }
            )
            if need.status is not NeedStatus.OPEN:
                self._release(doc, change, reason or f"need_{need.status.value}", now)
            return change

        await self.mutate(need.need_id, decide, create=create)

    async def block_recipient(self, recipient_id: str, version: int, blocked: bool, reason: str) -> None:
        """Mark every ledger of a recipient (un)blocked; blocking releases live reservations."""
        now = self.runtime.clock.now()

        def decide(doc: dict[str, Any]) -> Change:
            if doc.get("recipient_version", 0) >= version:
                return Change(noop=True)
            change = Change(need_set={"recipient_version": version, "recipient_blocked": blocked})
            if blocked:
                self._release(doc, change, reason, now)
            return change

        async for ledger in self.ledgers.find({"recipient_id": recipient_id}, projection={"_id": 1}):
            await self.mutate(ledger["_id"], decide)

    def _release(self, doc: dict[str, Any], change: Change, reason: str, now: datetime) -> None:
        """Cancel every pledged/confirmed pledge of a ledger with a reason (dispatched may still arrive)."""
        pledges = list(change.pledges if change.pledges is not None else doc.get("pledges", []))
        for index, pledge in enumerate(pledges):
            if PledgeStatus(pledge["status"]) in RELEASABLE:
                pledges[index] = advance(pledge, CANCELLED, now, "system", reason=reason)
                change.changed_pledge_ids.add(pledge["pledge_id"])
                change.events.append(
                    PledgeCancelled(pledge=pledge_public(doc, pledges[index]), occurred_at=now, reason=reason)
                )
        change.pledges = pledges

    async def _recipient_state(self, recipient_id: str) -> tuple[bool, int]:
        """Whether the replica says the recipient is blocked, and the replica's version."""
        replica = await self.recipients.find_one({"_id": recipient_id}, projection={"status": 1, "version": 1})
        if replica is None:
            return False, 0
        return replica.get("status") in ("suspended", "archived"), int(replica.get("version") or 0)

    # -- sweeps -----------------------------------------------------------------------------------

    async def sweep_expiry(self) -> dict[str, int]:
        """Expire overdue pledges and remind donors of pledges about to expire; durable (state in Mongo)."""
        counts = {"expired": 0, "reminded": 0}
        now = self.runtime.clock.now()
        waiting = [PledgeStatus.PLEDGED.value, PledgeStatus.CONFIRMED.value]
        cursor = self.ledgers.find({"pledges.status": {"$in": waiting}}, projection={"_id": 1, "pledges": 1})
        async for candidate in cursor:
            if not any(expiry_decision(p, now, self.policy) for p in candidate["pledges"]):
                continue
            done = await self.mutate(candidate["_id"], lambda doc: self._expire(doc, now))
            for action in done or []:
                counts[action] += 1
        return counts

    def _expire(self, doc: dict[str, Any], now: datetime) -> Change:
        pledges = list(doc.get("pledges", []))
        change = Change(result=[])
        for index, pledge in enumerate(pledges):
            decision = expiry_decision(pledge, now, self.policy)
            if decision is None:
                continue
            if decision.action == "expire":
                pledges[index] = advance(pledge, EXPIRED, now, "system", reason=decision.reason)
                change.events.append(
                    PledgeExpired(pledge=pledge_public(doc, pledges[index]), occurred_at=now, reason=decision.reason)
                )
                change.result.append("expired")
            else:
                # Recording the reminder in the same write as its event makes it go out exactly once.
                pledges[index] = {**pledge, "reminded_stage": decision.stage}
                change.events.append(
                    PledgeExpiring(pledge=pledge_public(doc, pledge), occurred_at=now, expires_at=decision.deadline)
                )
                change.result.append("reminded")
            change.changed_pledge_ids.add(pledge["pledge_id"])
        if not change.result:
            return Change(noop=True, result=[])
        change.pledges = pledges
        return change

    async def sweep_copies(self, *, since: datetime | None = None) -> int:
        """Repair per-pledge copies that a crash left behind the ledger; returns how many were rewritten.

        `since` limits the scan to ledgers changed after it (the periodic sweep); None scans all (the
        first sweep after a start, which covers any time the service was down).
        """
        repaired = 0
        query: dict[str, Any] = {} if since is None else {"updated_at": {"$gte": since}}
        async for ledger in self.ledgers.find(query, projection=LEDGER_FIELDS_HIDDEN):
            copies = {
                c["_id"]: c.get("version", 0)
                async for c in self.copies.find({"need_id": ledger["_id"]}, projection={"version": 1})
            }
            stale = [p for p in ledger.get("pledges", []) if copies.get(p["pledge_id"], 0) < p["version"]]
            if stale:
                await self.sync_copies(ledger, stale)
                repaired += len(stale)
        return repaired

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


def new_pledge(
    *,
    pledge_id: str,
    donor_id: str,
    quantity: int,
    mode: str,
    planned_date: date,
    now: datetime,
    request_hash: str,
    offer_id: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """An embedded pledge as first reserved."""
    return {
        "pledge_id": pledge_id,
        "donor_id": donor_id,
        "quantity": quantity,
        "delivered_quantity": None,
        "mode": mode,
        "planned_date": planned_date.isoformat(),
        "status": PledgeStatus.PLEDGED.value,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "request_hash": request_hash,
        "offer_id": offer_id,
        "note": note,
        "reason": None,
        "proof_ref": None,
        "reminded_stage": None,
        "history": [{"status": PledgeStatus.PLEDGED.value, "at": now, "by": "donor"}],
    }


def reserve_decision(
    clock_now: Callable[[], datetime], pledge: dict[str, Any], *, allow_partial: bool = False
) -> Decide:
    """The decision reserving a new pledge on a ledger: open need, recipient not blocked, enough remaining.

    A pledge id already in the ledger is a retried create: the existing pledge is returned unchanged.
    """

    def decide(doc: dict[str, Any]) -> Change:
        for existing in doc.get("pledges", []):
            if existing["pledge_id"] == pledge["pledge_id"]:
                if existing.get("request_hash") != pledge["request_hash"]:
                    raise ApiError(
                        422,
                        "idempotency_key_reused",
                        "this Idempotency-Key was used for a different pledge",
                        field="Idempotency-Key",
                    )
                return Change(noop=True, result=(doc, existing, True))
        if doc["status"] != NeedStatus.OPEN.value:
            raise ApiError(
                409,
                "need_not_open",
                f"the need is {doc['status']}; it takes no pledges",
                details={"available": 0, "need_status": doc["status"]},
            )
        if doc.get("recipient_blocked"):
            raise ApiError(
                409,
                "recipient_unavailable",
                "the recipient is suspended or archived",
                details={"available": 0},
            )
        available = max(doc["requested"] - doc["committed"], 0)
        quantity = pledge["quantity"]
        if quantity > available:
            if not allow_partial or available == 0:
                raise ApiError(
                    409,
                    "over_pledged",
                    f"only {available} still needed",
                    field="quantity",
                    details={"available": available},
                )
            quantity = available
        now = clock_now()
        reserved = {**pledge, "quantity": quantity, "created_at": now, "updated_at": now}
        event = PledgeCreated(pledge=pledge_public(doc, reserved), occurred_at=now)
        return Change(
            appended=reserved,
            changed_pledge_ids={reserved["pledge_id"]},
            events=[event],
            result=(doc, reserved, False),
        )

    return decide
