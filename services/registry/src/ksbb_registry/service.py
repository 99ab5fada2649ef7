"""Registry use cases: every state change and its events as one guarded single-document write."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ksbb_contracts import Event
from ksbb_contracts.events.pledges import NeedLedgerChanged
from ksbb_contracts.events.registry import (
    Beneficiaries,
    NeedCancelled,
    NeedChanged,
    NeedClosed,
    NeedFulfilled,
    NeedOpened,
    NeedPublic,
    OrganisationContactRecorded,
    OrganisationPublic,
    OrganisationRegistered,
    OrganisationReinstated,
    OrganisationSuspended,
    OrganisationUpdated,
    RecipientActivated,
    RecipientArchived,
    RecipientContactRecorded,
    RecipientPublic,
    RecipientRegistered,
    RecipientReinstated,
    RecipientSuspended,
    RecipientUpdated,
    RecipientVerified,
)
from ksbb_contracts.topics import REGISTRY_CONTACTS
from ksbb_contracts.vocab import (
    Item,
    NeedStatus,
    OrganisationStatus,
    RecipientKind,
    RecipientStatus,
    Recurrence,
)
from ksbb_kit.auth import Principal
from ksbb_kit.errors import ApiError
from ksbb_kit.http import check_if_match, decode_cursor, encode_cursor
from ksbb_kit.ids import derived_id
from ksbb_kit.outbox import new_document, tombstone_entry
from ksbb_kit.runtime import ServiceRuntime
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from ksbb_registry.adapters.claims import ClaimResult, ClaimStore
from ksbb_registry.adapters.store import HIDDEN, Change, Doc, ensure_indexes, mutate
from ksbb_registry.api import schemas
from ksbb_registry.domain import rules
from ksbb_registry.domain.rules import Action, Actor

log = logging.getLogger(__name__)

TRANSITION_EVENTS: dict[Action, type[Event]] = {
    Action.VERIFY: RecipientVerified,
    Action.ACTIVATE: RecipientActivated,
    Action.SUSPEND: RecipientSuspended,
    Action.REINSTATE: RecipientReinstated,
    Action.ARCHIVE: RecipientArchived,
}


def forbidden(message: str = "you may not do this") -> ApiError:
    """403 for an authenticated caller lacking the right."""
    return ApiError(403, "forbidden", message)


def actor_for(principal: Principal, organisation_id: str) -> Actor | None:
    """The caller's standing towards a recipient of an organisation."""
    if principal.is_admin:
        return Actor.ADMIN
    if principal.is_facilitator_of(organisation_id):
        return Actor.OWN_FACILITATOR
    return None


def may_manage(principal: Principal, recipient: Doc) -> bool:
    """Admins and the responsible organisation's facilitators manage a recipient."""
    return actor_for(principal, recipient["organisation_id"]) is not None


def may_act_for(principal: Principal, recipient: Doc) -> bool:
    """Managers plus the recipient's own account (needs, contact, reading)."""
    return may_manage(principal, recipient) or principal.is_recipient(recipient["_id"])


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class RegistryService:
    """The registry's use cases over its MongoDB collections, emitting events through the outbox."""

    def __init__(
        self, runtime: ServiceRuntime, *, report_limit_per_hour: int = 5, claim_grace_seconds: float = 30.0
    ) -> None:
        self.runtime = runtime
        db = runtime.db
        self.organisations = db["organisations"]
        self.recipients = db["recipients"]
        self.needs = db["needs"]
        self.reports = db["reports"]
        self.report_rate = db["report_rate"]
        self.report_limit_per_hour = report_limit_per_hour
        self.claims = ClaimStore(
            db["recipient_claims"], self.recipients, self.now, timedelta(seconds=claim_grace_seconds)
        )

    async def setup(self) -> None:
        """Create indexes."""
        await ensure_indexes(self.runtime.db)
        await self.claims.setup()

    # -- helpers -----------------------------------------------------------------------------

    def now(self) -> datetime:
        """Current time from the injectable clock."""
        return self.runtime.clock.now()

    def _events(self, *events: Event) -> list[Doc]:
        return self.runtime.events(*events)

    async def _mutate(self, collection: Any, doc_id: str, decide: Any, not_found: str) -> tuple[Doc, bool]:
        return await mutate(
            collection, doc_id, decide, now=self.now(), wake=self.runtime.relay.wake, not_found=not_found
        )

    async def _insert(self, collection: Any, document: Doc, entries: list[Doc]) -> tuple[Doc, bool]:
        """Insert a new aggregate with its first events; an existing id (retried create) returns it."""
        try:
            await collection.insert_one(new_document(document, entries))
        except DuplicateKeyError:
            existing = await collection.find_one({"_id": document["_id"]}, projection=HIDDEN)
            if existing is None:
                raise
            return existing, False
        self.runtime.relay.wake()
        return {k: v for k, v in document.items()}, True

    # -- organisations -----------------------------------------------------------------------

    @staticmethod
    def organisation_public(doc: Doc, version: int | None = None) -> OrganisationPublic:
        """The public snapshot carried by organisation events."""
        return OrganisationPublic(
            organisation_id=doc["_id"],
            name=doc["name"],
            kind=doc["kind"],
            area_codes=doc["area_codes"],
            status=doc["status"],
            version=version or doc["version"],
        )

    @staticmethod
    def _organisation_contact(doc: Doc) -> OrganisationContactRecorded:
        contact = doc["contact"]
        return OrganisationContactRecorded(
            organisation_id=doc["_id"],
            contact_name=contact.get("name"),
            email=contact["email"],
            phone=contact.get("phone"),
        )

    async def get_organisation(self, organisation_id: str) -> Doc:
        """An organisation or 404."""
        doc = await self.organisations.find_one({"_id": organisation_id}, projection=HIDDEN)
        if doc is None:
            raise ApiError(
                404,
                "organisation_not_found",
                f"organisation {organisation_id} does not exist",
                field="organisation_id",
            )
        return doc

    async def create_organisation(
        self, organisation_id: str, body: schemas.OrganisationCreate
    ) -> tuple[Doc, bool]:
        """Register a facilitator organisation (admins)."""
        now = self.now()
        doc: Doc = {
            "_id": organisation_id,
            "name": body.name,
            "kind": body.kind.value,
            "contact": body.contact.model_dump(),
            "area_codes": rules.validate_area_codes(body.area_codes),
            "status": OrganisationStatus.ACTIVE.value,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        entries = self._events(
            OrganisationRegistered(organisation=self.organisation_public(doc)),
            self._organisation_contact(doc),
        )
        return await self._insert(self.organisations, doc, entries)

    async def update_organisation(
        self, organisation_id: str, body: schemas.OrganisationUpdate, if_match: str | None
    ) -> Doc:
        """Change an organisation's facts or contact."""
        changes = body.model_dump(exclude_unset=True)
        if "area_codes" in changes and changes["area_codes"] is not None:
            changes["area_codes"] = rules.validate_area_codes(changes["area_codes"])
        if "kind" in changes and changes["kind"] is not None:
            changes["kind"] = changes["kind"].value if hasattr(changes["kind"], "value") else changes["kind"]
        changes = {k: v for k, v in changes.items() if v is not None}

        def decide(doc: Doc, version: int) -> Change | None:
            check_if_match(if_match, doc["_id"], doc["version"])
            updated = {k: v for k, v in changes.items() if doc.get(k) != v}
            if not updated:
                return None
            after = {**doc, **updated}
            events: list[Event] = []
            if any(k in updated for k in ("name", "kind", "area_codes")):
                events.append(OrganisationUpdated(organisation=self.organisation_public(after, version)))
            if "contact" in updated:
                events.append(self._organisation_contact(after))
            return Change(set=updated, entries=self._events(*events))

        doc, _ = await self._mutate(self.organisations, organisation_id, decide, "organisation_not_found")
        return doc

    async def set_organisation_status(
        self, organisation_id: str, target: OrganisationStatus, reason: str, principal: Principal
    ) -> Doc:
        """Suspend or reinstate an organisation (admins)."""

        def decide(doc: Doc, version: int) -> Change | None:
            if doc["status"] == target.value:
                raise ApiError(
                    409, "illegal_transition", f"organisation is already {target.value}", field="status"
                )
            after = {**doc, "status": target.value}
            event_cls = (
                OrganisationSuspended if target is OrganisationStatus.SUSPENDED else OrganisationReinstated
            )
            entry = {"at": self.now(), "actor": principal.subject, "status": target.value, "reason": reason}
            return Change(
                set={"status": target.value},
                push={"status_history": entry},
                entries=self._events(event_cls(organisation=self.organisation_public(after, version))),
            )

        doc, _ = await self._mutate(self.organisations, organisation_id, decide, "organisation_not_found")
        return doc

    async def list_organisations(
        self, principal: Principal, *, status: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Doc], str | None]:
        """Organisations visible to the caller."""
        query: Doc = {}
        if status:
            query["status"] = status
        if not principal.is_admin:
            query["_id"] = principal.org_id
        return await self._page(self.organisations, query, limit, cursor)

    # -- recipients --------------------------------------------------------------------------

    @staticmethod
    def recipient_public(doc: Doc, version: int | None = None) -> RecipientPublic:
        """The public snapshot carried by recipient events (never contact or notes)."""
        return RecipientPublic(
            recipient_id=doc["_id"],
            name=doc["name"],
            kind=doc["kind"],
            kind_description=doc.get("kind_description"),
            organisation_id=doc["organisation_id"],
            kelurahan_code=doc["kelurahan_code"],
            rw=doc.get("rw"),
            rt=doc.get("rt"),
            beneficiaries=Beneficiaries(**doc["beneficiaries"]),
            status=doc["status"],
            version=version or doc["version"],
        )

    @staticmethod
    def _recipient_contact(doc: Doc) -> RecipientContactRecorded:
        contact = doc["contact"]
        return RecipientContactRecorded(
            recipient_id=doc["_id"],
            organisation_id=doc["organisation_id"],
            contact_name=contact["name"],
            phone=contact["phone"],
            email=contact.get("email"),
            street_address=doc.get("street_address"),
        )

    def _audit(
        self,
        principal: Principal | None,
        action: str,
        from_status: str | None,
        to_status: str | None,
        reason: str | None = None,
        document_refs: list[str] | None = None,
    ) -> Doc:
        return {
            "at": self.now(),
            "actor": principal.subject if principal else "system",
            "role": principal.role.value if principal else "system",
            "action": action,
            "from_status": from_status,
            "to_status": to_status,
            "reason": reason,
            "document_refs": document_refs or [],
        }

    async def get_recipient(self, recipient_id: str) -> Doc:
        """A recipient or 404 (with its audit trail)."""
        doc = await self.recipients.find_one({"_id": recipient_id}, projection=HIDDEN)
        if doc is None:
            raise ApiError(
                404, "recipient_not_found", f"recipient {recipient_id} does not exist", field="recipient_id"
            )
        return doc

    async def _claim_all(
        self, keys: list[str], recipient_id: str, *, stop_at_conflict: bool
    ) -> tuple[list[ClaimResult], list[ClaimResult]]:
        """Claim duplicate keys in a fixed order; returns (held, conflicting)."""
        held: list[ClaimResult] = []
        conflicts: list[ClaimResult] = []
        for key in keys:
            result = await self.claims.claim(key, recipient_id)
            (held if result.held else conflicts).append(result)
            if conflicts and stop_at_conflict:
                break
        return held, conflicts

    async def _duplicate_error(self, conflict: ClaimResult) -> ApiError:
        """409 pointing to the recipient holding a duplicate key."""
        if conflict.holder is None:
            return ApiError(409, "concurrent_update", "the duplicate key is changing too often; try again")
        holder = await self.recipients.find_one({"_id": conflict.holder}, projection={"name": 1})
        named = f" ({holder['name']})" if holder else ""
        return ApiError(
            409,
            "duplicate_recipient",
            f"this looks like recipient {conflict.holder}{named}",
            field=rules.claim_field(conflict.key),
            details={"existing_recipient_id": conflict.holder},
        )

    async def sweep_recipient_claims(self) -> int:
        """Repair duplicate-key claims left by a crash between the claim and the recipient write."""
        return await self.claims.sweep()

    async def create_recipient(
        self, recipient_id: str, body: schemas.RecipientCreate, principal: Principal
    ) -> tuple[Doc, bool]:
        """Register a recipient for an organisation (its facilitators or admins)."""
        existing = await self.recipients.find_one({"_id": recipient_id}, projection=HIDDEN)
        if existing is not None:
            return existing, False  # a retried create with the same Idempotency-Key
        if actor_for(principal, body.organisation_id) is None:
            raise forbidden("facilitators register recipients for their own organisation only")
        if body.duplicate_override_reason and not principal.is_admin:
            raise forbidden("only admins may override duplicate detection")
        organisation = await self.organisations.find_one(
            {"_id": body.organisation_id}, projection={"status": 1}
        )
        if organisation is None:
            raise ApiError(
                422,
                "unknown_organisation",
                f"organisation {body.organisation_id} does not exist",
                field="organisation_id",
            )
        if organisation["status"] != OrganisationStatus.ACTIVE.value:
            raise ApiError(
                409, "organisation_suspended", "the organisation is suspended", field="organisation_id"
            )
        location = rules.validate_location(
            body.kelurahan_code, kecamatan_code=body.kecamatan_code, kota_code=body.kota_code
        )
        rules.validate_kind(body.kind, body.kind_description, body.rw)
        if body.coordinates:
            rules.validate_coordinates(body.coordinates.lat, body.coordinates.lon)
        identity = rules.identity_key(body.name, body.street_address)
        rw_unit = rules.rw_key(body.kind, location.kelurahan_code, body.rw)
        keys = rules.claim_keys(identity, rw_unit)
        override = body.duplicate_override_reason
        # Claim first, insert second: the unique claim id is what makes concurrent registrations race-free.
        held, conflicts = await self._claim_all(keys, recipient_id, stop_at_conflict=not override)
        if conflicts and (not override or any(c.holder is None for c in conflicts)):
            # A concurrent retry with the same Idempotency-Key may have just created this very recipient.
            created_meanwhile = await self.recipients.find_one({"_id": recipient_id}, projection=HIDDEN)
            if created_meanwhile is not None:
                return created_meanwhile, False
            await self.claims.release([c.key for c in held if c.new], recipient_id)
            raise await self._duplicate_error(next(c for c in conflicts if not override or c.holder is None))
        now = self.now()
        audit = [self._audit(principal, "register", None, RecipientStatus.REGISTERED.value)]
        if conflicts:
            # Admin override: registered without the contested keys (their holders keep them).
            holders = list(dict.fromkeys(c.holder for c in conflicts if c.holder))
            audit.append(self._audit(principal, "duplicate_override", None, None, override, holders))
        doc: Doc = {
            "_id": recipient_id,
            "name": body.name,
            "kind": body.kind.value,
            "kind_description": body.kind_description,
            "organisation_id": body.organisation_id,
            "kelurahan_code": location.kelurahan_code,
            "kecamatan_code": location.kecamatan_code,
            "kota_code": location.kota_code,
            "rw": body.rw,
            "rt": body.rt,
            "street_address": body.street_address,
            "coordinates": body.coordinates.model_dump() if body.coordinates else None,
            "beneficiaries": body.beneficiaries.model_dump(),
            "contact": body.contact.model_dump(),
            "notes": body.notes,
            "status": RecipientStatus.REGISTERED.value,
            "version": 1,
            "identity_key": identity,
            "rw_key": rw_unit,
            "audit": audit,
            "created_at": now,
            "updated_at": now,
        }
        entries = self._events(
            RecipientRegistered(recipient=self.recipient_public(doc), occurred_at=now),
            self._recipient_contact(doc),
        )
        try:
            result = await self._insert(self.recipients, doc, entries)
        except BaseException:
            await self.claims.release([c.key for c in held if c.new], recipient_id)
            raise
        lost = await self.claims.confirm([c.key for c in held], recipient_id)
        if lost:
            log.error("recipient %s lost duplicate claims %s to a takeover (grace too short?)", recipient_id, lost)
        return result

    async def update_recipient(
        self, recipient_id: str, body: schemas.RecipientUpdate, principal: Principal, if_match: str | None
    ) -> Doc:
        """Change a recipient's facts (managers) or contact (also its own account)."""
        changes = body.model_dump(exclude_unset=True)
        changes = {
            k: v for k, v in changes.items() if v is not None or k in ("kind_description", "notes", "rt")
        }
        current = await self.get_recipient(recipient_id)
        if not may_act_for(principal, current):
            raise forbidden()
        if not may_manage(principal, current) and set(changes) - {"contact"}:
            raise forbidden("a recipient account may change only its contact")
        if "organisation_id" in changes and not principal.is_admin:
            raise forbidden("only admins move a recipient to another organisation")
        if "organisation_id" in changes and not await self.organisations.find_one(
            {"_id": changes["organisation_id"]}
        ):
            raise ApiError(
                422, "unknown_organisation", "organisation does not exist", field="organisation_id"
            )
        if "coordinates" in changes:
            rules.validate_coordinates(changes["coordinates"]["lat"], changes["coordinates"]["lon"])
        if "kelurahan_code" in changes:
            location = rules.validate_location(changes["kelurahan_code"])
            changes.update(kecamatan_code=location.kecamatan_code, kota_code=location.kota_code)
        merged = {**current, **changes}
        rules.validate_kind(RecipientKind(merged["kind"]), merged.get("kind_description"), merged.get("rw"))
        to_claim: list[str] = []
        to_release: list[str] = []
        if {"name", "street_address", "kelurahan_code", "rw"} & set(changes):
            changes["identity_key"] = rules.identity_key(merged["name"], merged["street_address"])
            changes["rw_key"] = rules.rw_key(
                RecipientKind(merged["kind"]), merged["kelurahan_code"], merged.get("rw")
            )
            old_keys = rules.claim_keys(current.get("identity_key"), current.get("rw_key"))
            new_keys = rules.claim_keys(changes["identity_key"], changes["rw_key"])
            to_claim = [k for k in new_keys if k not in old_keys]
            to_release = [k for k in old_keys if k not in new_keys]
        # Claim the new keys first, then write the recipient, then release the old keys.
        held, conflicts = await self._claim_all(to_claim, recipient_id, stop_at_conflict=True)
        newly_held = [c.key for c in held if c.new]
        if conflicts:
            await self.claims.release(newly_held, recipient_id)
            raise await self._duplicate_error(conflicts[0])
        key_fields = ("identity_key", "rw_key")
        public_fields = {
            "name",
            "kind_description",
            "organisation_id",
            "kelurahan_code",
            "rw",
            "rt",
            "beneficiaries",
        }

        def decide(doc: Doc, version: int) -> Change | None:
            check_if_match(if_match, doc["_id"], doc["version"])
            if doc["status"] == RecipientStatus.ARCHIVED.value:
                raise ApiError(
                    409, "recipient_archived", "an archived recipient cannot change", field="status"
                )
            if to_claim or to_release:
                if any(doc.get(k) != current.get(k) for k in key_fields):
                    # The claims were decided on keys that a concurrent update has just changed.
                    raise ApiError(409, "concurrent_update", "the recipient changed meanwhile; try again")
            updated = {k: v for k, v in changes.items() if doc.get(k) != v}
            if not updated:
                return None
            after = {**doc, **updated}
            events: list[Event] = []
            if public_fields & set(updated):
                events.append(
                    RecipientUpdated(recipient=self.recipient_public(after, version), occurred_at=self.now())
                )
            if {"contact", "street_address", "organisation_id"} & set(updated):
                events.append(self._recipient_contact(after))
            audit = self._audit(
                principal,
                "update",
                doc["status"],
                doc["status"],
                "changed: " + ", ".join(sorted(k for k in updated if not k.endswith("_key"))),
            )
            return Change(set=updated, push={"audit": audit}, entries=self._events(*events))

        try:
            doc, wrote = await self._mutate(self.recipients, recipient_id, decide, "recipient_not_found")
        except BaseException:
            await self.claims.release(newly_held, recipient_id)
            raise
        if not wrote:
            await self.claims.release(newly_held, recipient_id)
            return doc
        await self.claims.confirm(to_claim, recipient_id)
        await self.claims.release(to_release, recipient_id)
        return doc

    async def transition_recipient(
        self,
        recipient_id: str,
        action: Action,
        body: schemas.TransitionRequest,
        principal: Principal,
        if_match: str | None = None,
    ) -> Doc:
        """Move a recipient through its lifecycle (see the transition table)."""
        current = await self.get_recipient(recipient_id)
        if not may_act_for(principal, current) and not principal.is_admin:
            raise forbidden()

        def decide(doc: Doc, version: int) -> Change | None:
            check_if_match(if_match, doc["_id"], doc["version"])
            source = RecipientStatus(doc["status"])
            target = rules.transition(
                action, source, actor_for(principal, doc["organisation_id"]), body.reason
            )
            after = {**doc, "status": target.value}
            now = self.now()
            change = Change(
                set={"status": target.value},
                push={
                    "audit": self._audit(
                        principal, action.value, source.value, target.value, body.reason, body.document_refs
                    )
                },
            )
            events: list[Event] = [
                TRANSITION_EVENTS[action](recipient=self.recipient_public(after, version), occurred_at=now)
            ]
            change.entries = self._events(*events)
            if action is Action.VERIFY:
                change.set["verification"] = {
                    "by": principal.subject,
                    "at": now,
                    "note": body.reason,
                    "document_refs": body.document_refs,
                }
            if action in (Action.SUSPEND, Action.ARCHIVE):
                change.set["pending_need_closure"] = True
            if action is Action.ARCHIVE:
                change.set["contact"] = None
                change.entries.append(tombstone_entry(REGISTRY_CONTACTS.name, doc["_id"]))
            return change

        doc, _ = await self._mutate(self.recipients, recipient_id, decide, "recipient_not_found")
        if doc["status"] == RecipientStatus.ARCHIVED.value:
            await self.claims.release_all(recipient_id)  # archived units free their duplicate keys
        if doc.get("pending_need_closure"):
            await self.close_needs_of(doc)
        return doc

    async def list_recipients(
        self, principal: Principal, filters: Doc, has_open_needs: bool | None, limit: int, cursor: str | None
    ) -> tuple[list[Doc], str | None]:
        """Recipients visible to the caller, filtered, sorted by id."""
        query = {k: v for k, v in filters.items() if v is not None}
        if not principal.is_admin:
            if query.get("organisation_id") not in (None, principal.org_id):
                raise forbidden("facilitators list their own organisation's recipients only")
            query["organisation_id"] = principal.org_id
        if has_open_needs is not None:
            need_query: Doc = {"status": NeedStatus.OPEN.value}
            if "organisation_id" in query:
                need_query["organisation_id"] = query["organisation_id"]
            with_needs = await self.needs.distinct("recipient_id", need_query)
            query["_id"] = {"$in": with_needs} if has_open_needs else {"$nin": with_needs}
        return await self._page(self.recipients, query, limit, cursor, projection={**HIDDEN, "audit": 0})

    async def _page(
        self, collection: Any, query: Doc, limit: int, cursor: str | None, projection: Doc | None = None
    ) -> tuple[list[Doc], str | None]:
        if cursor:
            values = decode_cursor(cursor)
            if len(values) != 1 or not isinstance(values[0], str):
                raise ApiError(422, "invalid_cursor", "cursor is not valid", field="cursor")
            id_filter = {"$gt": values[0]}
            query = {"$and": [query, {"_id": id_filter}]} if "_id" in query else {**query, "_id": id_filter}
        docs = (
            await collection.find(query, projection=projection or HIDDEN)
            .sort("_id", ASCENDING)
            .limit(limit + 1)
            .to_list()
        )
        next_cursor = encode_cursor([docs[limit - 1]["_id"]]) if len(docs) > limit else None
        return docs[:limit], next_cursor

    # -- needs -------------------------------------------------------------------------------

    @staticmethod
    def need_public(doc: Doc, version: int | None = None) -> NeedPublic:
        """The public snapshot carried by need events."""
        return NeedPublic(
            need_id=doc["_id"],
            recipient_id=doc["recipient_id"],
            organisation_id=doc["organisation_id"],
            kelurahan_code=doc["kelurahan_code"],
            rw=doc.get("rw"),
            item=doc["item"],
            item_description=doc.get("item_description"),
            quantity=doc["quantity"],
            unit=doc["unit"],
            priority=doc["priority"],
            needed_by=doc["needed_by"],
            recurrence=doc["recurrence"],
            series_id=doc.get("series_id"),
            period_start=doc.get("period_start"),
            status=doc["status"],
            version=version or doc["version"],
        )

    async def get_need(self, need_id: str) -> Doc:
        """A need or 404."""
        doc = await self.needs.find_one({"_id": need_id}, projection=HIDDEN)
        if doc is None:
            raise ApiError(404, "need_not_found", f"need {need_id} does not exist", field="need_id")
        return doc

    async def create_need(
        self, need_id: str, recipient_id: str, body: schemas.NeedCreate, principal: Principal
    ) -> tuple[Doc, bool]:
        """Post a need for an active recipient (its account, its facilitators, admins)."""
        existing = await self.needs.find_one({"_id": need_id}, projection=HIDDEN)
        if existing is not None:
            return existing, False
        recipient = await self.get_recipient(recipient_id)
        if not may_act_for(principal, recipient):
            raise forbidden()
        if recipient["status"] != RecipientStatus.ACTIVE.value:
            raise ApiError(
                409,
                "recipient_not_active",
                f"needs may only be posted for an active recipient (this one is {recipient['status']})",
                field="recipient_id",
            )
        if body.item is Item.OTHER and not body.item_description:
            raise ApiError(
                422,
                "description_required",
                "item 'other' needs an item_description",
                field="item_description",
            )
        today = self.now().date()
        if body.needed_by < today:
            raise ApiError(422, "needed_by_in_past", "needed_by lies in the past", field="needed_by")
        unit = body.unit or next(e.unit for e in rules.CATALOGUE if e.item is body.item)
        recurring = body.recurrence is not Recurrence.NONE
        following = rules.following_period(today, body.recurrence)
        now = self.now()
        doc: Doc = {
            "_id": need_id,
            "recipient_id": recipient_id,
            "organisation_id": recipient["organisation_id"],
            "kelurahan_code": recipient["kelurahan_code"],
            "kecamatan_code": recipient["kecamatan_code"],
            "kota_code": recipient["kota_code"],
            "rw": recipient.get("rw"),
            "item": body.item.value,
            "item_description": body.item_description,
            "quantity": body.quantity,
            "unit": unit,
            "priority": body.priority.value,
            "needed_by": body.needed_by.isoformat(),
            "recurrence": body.recurrence.value,
            "series_id": need_id if recurring else None,
            "period_start": today.isoformat() if recurring else None,
            "series_next_at": _start_of(following) if following else None,
            "status": NeedStatus.OPEN.value,
            "status_reason": None,
            "notes": body.notes,
            "ledger": {
                "requested": body.quantity,
                "committed": 0,
                "in_transit": 0,
                "delivered": 0,
                "ledger_version": 0,
            },
            "created_by": principal.subject,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        created = await self._insert(
            self.needs, doc, self._events(NeedOpened(need=self.need_public(doc), occurred_at=now))
        )
        # A suspension between our check and the insert may have missed this need: close it now.
        latest = await self.recipients.find_one({"_id": recipient_id}, projection={"status": 1})
        if latest is not None and latest["status"] != RecipientStatus.ACTIVE.value:
            await self.close_needs_of(await self.get_recipient(recipient_id))
            return await self.get_need(need_id), created[1]
        return created

    async def update_need(
        self, need_id: str, body: schemas.NeedUpdate, principal: Principal, if_match: str | None
    ) -> Doc:
        """Change an open need's quantity, priority, dates or notes."""
        changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
        if "needed_by" in changes:
            changes["needed_by"] = changes["needed_by"].isoformat()
        if "priority" in changes:
            changes["priority"] = changes["priority"].value
        await self._need_for_caller(need_id, principal)

        def decide(doc: Doc, version: int) -> Change | None:
            check_if_match(if_match, doc["_id"], doc["version"])
            if doc["status"] != NeedStatus.OPEN.value:
                raise ApiError(409, "need_not_open", f"the need is {doc['status']}", field="status")
            if "quantity" in changes:
                rules.check_quantity_change(changes["quantity"], doc["ledger"]["committed"])
            updated = {k: v for k, v in changes.items() if doc.get(k) != v}
            if not updated:
                return None
            after = {**doc, **updated}
            public_changed = set(updated) - {"notes"}
            events = (
                [NeedChanged(need=self.need_public(after, version), occurred_at=self.now())]
                if public_changed
                else []
            )
            return Change(set=updated, entries=self._events(*events))

        doc, _ = await self._mutate(self.needs, need_id, decide, "need_not_found")
        return doc

    async def cancel_need(self, need_id: str, reason: str, principal: Principal, if_match: str | None) -> Doc:
        """Cancel an open need (and stop its series)."""
        await self._need_for_caller(need_id, principal)

        def decide(doc: Doc, version: int) -> Change | None:
            check_if_match(if_match, doc["_id"], doc["version"])
            if doc["status"] != NeedStatus.OPEN.value:
                raise ApiError(409, "need_not_open", f"the need is {doc['status']}", field="status")
            after = {**doc, "status": NeedStatus.CANCELLED.value}
            return Change(
                set={"status": NeedStatus.CANCELLED.value, "status_reason": reason},
                unset=["series_next_at"],
                entries=self._events(
                    NeedCancelled(
                        need=self.need_public(after, version), reason=reason, occurred_at=self.now()
                    )
                ),
            )

        doc, _ = await self._mutate(self.needs, need_id, decide, "need_not_found")
        return doc

    async def _need_for_caller(self, need_id: str, principal: Principal) -> Doc:
        need = await self.get_need(need_id)
        if not (
            principal.is_admin
            or principal.is_facilitator_of(need["organisation_id"])
            or principal.is_recipient(need["recipient_id"])
        ):
            raise forbidden()
        return need

    async def need_for_reader(self, need_id: str, principal: Principal) -> Doc:
        """A need the caller may read."""
        return await self._need_for_caller(need_id, principal)

    async def list_needs(
        self, principal: Principal, filters: Doc, limit: int, cursor: str | None
    ) -> tuple[list[Doc], str | None]:
        """Needs visible to the caller, filtered, sorted by id."""
        query = {k: v for k, v in filters.items() if v is not None}
        if principal.role.value == "facilitator":
            if query.get("organisation_id") not in (None, principal.org_id):
                raise forbidden("facilitators list their own organisation's needs only")
            query["organisation_id"] = principal.org_id
        elif principal.role.value == "recipient":
            if query.get("recipient_id") not in (None, principal.recipient_id):
                raise forbidden("a recipient lists its own needs only")
            query["recipient_id"] = principal.recipient_id
        elif not principal.is_admin:
            raise forbidden()
        return await self._page(self.needs, query, limit, cursor)

    async def close_needs_of(self, recipient: Doc) -> int:
        """Close every open need of a suspended/archived recipient, each with its own NeedClosed event."""
        status = recipient["status"]
        if status == RecipientStatus.ACTIVE.value:
            await self.recipients.update_one(
                {"_id": recipient["_id"]}, {"$unset": {"pending_need_closure": ""}}
            )
            return 0
        reason = "recipient_archived" if status == RecipientStatus.ARCHIVED.value else "recipient_suspended"
        closed = 0
        async for need in self.needs.find(
            {"recipient_id": recipient["_id"], "status": NeedStatus.OPEN.value}, projection={"_id": 1}
        ):

            def decide(doc: Doc, version: int) -> Change | None:
                if doc["status"] != NeedStatus.OPEN.value:
                    return None
                after = {**doc, "status": NeedStatus.CLOSED.value}
                return Change(
                    set={"status": NeedStatus.CLOSED.value, "status_reason": reason},
                    unset=["series_next_at"],
                    entries=self._events(
                        NeedClosed(
                            need=self.need_public(after, version), reason=reason, occurred_at=self.now()
                        )
                    ),
                )

            _, wrote = await self._mutate(self.needs, need["_id"], decide, "need_not_found")
            closed += int(wrote)
        # Clear the flag only if the recipient did not change meanwhile; otherwise the sweep retries.
        await self.recipients.update_one(
            {"_id": recipient["_id"], "version": recipient["version"]},
            {"$unset": {"pending_need_closure": ""}},
        )
        return closed

    async def sweep_need_closures(self) -> int:
        """Repair: close open needs of recipients whose suspension/archive did not finish closing them."""
        closed = 0
        async for recipient in self.recipients.find({"pending_need_closure": True}, projection=HIDDEN):
            closed += await self.close_needs_of(recipient)
        return closed

    async def open_due_periods(self) -> int:
        """Open the next period's need of every recurring series whose period has started."""
        now = self.now()
        today = now.date()
        opened = 0
        async for previous in self.needs.find({"series_next_at": {"$lte": now}}, projection=HIDDEN):
            recipient = await self.recipients.find_one(
                {"_id": previous["recipient_id"]}, projection={"status": 1}
            )
            if recipient is None or recipient["status"] != RecipientStatus.ACTIVE.value:
                continue  # resumes when the recipient is active again
            recurrence = Recurrence(previous["recurrence"])
            period_start = date.fromisoformat(previous["period_start"])
            start = rules.next_period_start(period_start, recurrence, today)
            if start is None:
                continue
            shift = start - period_start
            following = rules.following_period(start, recurrence)
            need_id = derived_id("need", previous["series_id"], start.isoformat())
            doc = {
                **{
                    k: previous[k]
                    for k in (
                        "recipient_id",
                        "organisation_id",
                        "kelurahan_code",
                        "kecamatan_code",
                        "kota_code",
                        "rw",
                        "item",
                        "item_description",
                        "quantity",
                        "unit",
                        "priority",
                        "recurrence",
                        "series_id",
                        "notes",
                    )
                },
                "_id": need_id,
                "needed_by": (date.fromisoformat(previous["needed_by"]) + shift).isoformat(),
                "period_start": start.isoformat(),
                "series_next_at": _start_of(following) if following else None,
                "status": NeedStatus.OPEN.value,
                "status_reason": None,
                "ledger": {
                    "requested": previous["quantity"],
                    "committed": 0,
                    "in_transit": 0,
                    "delivered": 0,
                    "ledger_version": 0,
                },
                "created_by": "system:recurrence",
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            _, created = await self._insert(
                self.needs, doc, self._events(NeedOpened(need=self.need_public(doc), occurred_at=now))
            )
            opened += int(created)
            # The series continues from the new period; the previous need stops pointing at it.
            await self.needs.update_one({"_id": previous["_id"]}, {"$unset": {"series_next_at": ""}})
        return opened

    async def apply_ledger(self, event: NeedLedgerChanged) -> bool:
        """Store the pledges service's quantities on a need; fulfil it when deliveries reach the request."""

        def decide(doc: Doc, version: int) -> Change | None:
            if doc["ledger"].get("ledger_version", 0) >= event.ledger_version:
                return None  # stale or redelivered
            ledger = {
                "requested": event.requested,
                "committed": event.committed,
                "in_transit": event.in_transit,
                "delivered": event.delivered,
                "ledger_version": event.ledger_version,
            }
            change = Change(set={"ledger": ledger})
            if doc["status"] == NeedStatus.OPEN.value and rules.is_fulfilled(
                event.requested, event.delivered
            ):
                after = {**doc, "status": NeedStatus.FULFILLED.value}
                change.set["status"] = NeedStatus.FULFILLED.value
                change.set["status_reason"] = "delivered"
                change.entries = self._events(
                    NeedFulfilled(need=self.need_public(after, version), occurred_at=self.now())
                )
            return change

        try:
            _, wrote = await self._mutate(self.needs, event.need_id, decide, "need_not_found")
        except ApiError as exc:
            if exc.status == 404:
                log.warning("ledger event for unknown need %s ignored", event.need_id)
                return False
            raise
        return wrote

    # -- reports -----------------------------------------------------------------------------

    async def check_report_rate(self, client: str) -> None:
        """At most `report_limit_per_hour` reports per client address and clock hour; 429 otherwise."""
        now = self.now()
        window_start = now.replace(minute=0, second=0, microsecond=0)
        window_end = window_start + timedelta(hours=1)
        counter = await self.report_rate.find_one_and_update(
            {"_id": f"{client}|{window_start.isoformat()}"},
            {"$inc": {"count": 1}, "$setOnInsert": {"window_end": window_end}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        if counter is not None and counter["count"] > self.report_limit_per_hour:
            retry_after = max(1, int((window_end - now).total_seconds()))
            raise ApiError(
                429,
                "rate_limited",
                "too many reports from this address; try again later",
                headers={"Retry-After": str(retry_after)},
            )

    async def sweep_rate_counters(self) -> int:
        """Forget rate-limit windows that ended (no TTL indexes on the CI server)."""
        result = await self.report_rate.delete_many({"window_end": {"$lt": self.now()}})
        return result.deleted_count

    async def create_report(self, report_id: str, recipient_id: str, body: schemas.ReportCreate) -> Doc:
        """Store a public concern about a recipient."""
        recipient = await self.get_recipient(recipient_id)
        doc: Doc = {
            "_id": report_id,
            "recipient_id": recipient_id,
            "organisation_id": recipient["organisation_id"],
            "text": body.text,
            "contact": body.contact,
            "status": "open",
            "created_at": self.now(),
        }
        try:
            await self.reports.insert_one(doc)
        except DuplicateKeyError:
            found = await self.reports.find_one({"_id": report_id})
            assert found is not None
            return found
        return doc

    async def list_reports(
        self,
        principal: Principal,
        *,
        recipient_id: str | None,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Doc], str | None]:
        """Reports the caller reviews (admins: all; facilitators: their organisation's)."""
        query: Doc = {"recipient_id": recipient_id, "status": status}
        query = {k: v for k, v in query.items() if v is not None}
        if not principal.is_admin:
            query["organisation_id"] = principal.org_id
        return await self._page(self.reports, query, limit, cursor)

    async def resolve_report(self, report_id: str, body: schemas.ReportResolve, principal: Principal) -> Doc:
        """Mark a report resolved with its outcome."""
        report = await self.reports.find_one({"_id": report_id})
        if report is None:
            raise ApiError(404, "report_not_found", f"report {report_id} does not exist", field="report_id")
        if not (principal.is_admin or principal.is_facilitator_of(report["organisation_id"])):
            raise forbidden()
        resolved = await self.reports.find_one_and_update(
            {"_id": report_id, "status": "open"},
            {
                "$set": {
                    "status": "resolved",
                    "resolved_at": self.now(),
                    "resolved_by": principal.subject,
                    "outcome": body.outcome,
                    "resolution_note": body.note,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        if resolved is None:
            raise ApiError(409, "report_resolved", "the report is already resolved", field="status")
        return resolved


