"""Public views of read-model documents: what of a recipient, need or organisation is shown, and progress."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ksbb_publisher.domain.areas import area_of
from ksbb_publisher.domain.errors import RegistrationsNotPublished

#: Recipient states shown publicly; unverified registrations are not published.
PUBLIC_RECIPIENT_STATUSES = ("verified", "active", "suspended", "archived")
#: Recipients counted in statistics and coverage gaps.
COUNTED_STATUSES = ("verified", "active", "suspended")
#: Pledge states whose donors count as active in statistics.
LIVE_PLEDGE_STATUSES = ("pledged", "confirmed", "dispatched", "delivered")


def require_public_status(status: str | None) -> None:
    """A status filter may only name a published state; unverified registrations are never shown."""
    if status == "registered":
        raise RegistrationsNotPublished()


def progress_of(need: Mapping[str, Any]) -> dict[str, Any]:
    """Requested / committed / in transit / delivered of a need, with remaining quantity and percentages.

    As the pledges service counts them, `committed` holds every live reservation and what was received:
    `in_transit` and `delivered` are parts of it, so what remains is requested minus committed (never
    less than the parts, should a ledger ever say otherwise).
    """
    ledger = need.get("progress") or {}
    requested = ledger.get("requested") or need.get("quantity") or 0
    committed = ledger.get("committed", 0)
    in_transit = ledger.get("in_transit", 0)
    delivered = ledger.get("delivered", 0)
    pledged = max(committed, in_transit + delivered)
    remaining = max(0, requested - pledged)

    def pct(value: int) -> int:
        return min(100, round(100 * value / requested)) if requested else 0

    return {
        "requested": requested,
        "committed": committed,
        "in_transit": in_transit,
        "delivered": delivered,
        "remaining": remaining,
        "percent_delivered": pct(delivered),
        "percent_pledged": pct(pledged),
    }


def public_recipient(
    doc: Mapping[str, Any],
    org_names: Mapping[str, str],
    open_needs: Mapping[str, int],
    delivered: Mapping[str, int],
) -> dict[str, Any]:
    """The public view of a recipient document; its households count as reached once anything arrived."""
    households = (doc.get("beneficiaries") or {}).get("households", 0)
    return {
        "recipient_id": doc["_id"],
        "name": doc["name"],
        "kind": doc["kind"],
        "kind_description": doc.get("kind_description"),
        "organisation_id": doc["organisation_id"],
        "organisation_name": org_names.get(doc["organisation_id"]),
        "area": area_of(doc),
        "rw": doc.get("rw"),
        "beneficiaries": doc.get("beneficiaries") or {},
        "status": doc["status"],
        "open_needs": open_needs.get(doc["_id"], 0),
        "packages_delivered": delivered.get(doc["_id"], 0),
        "households_reached": households if delivered.get(doc["_id"], 0) > 0 else 0,
        "updated_at": doc.get("updated_at"),
    }


def public_need(
    doc: Mapping[str, Any], recipients: Mapping[str, Mapping[str, Any]], org_names: Mapping[str, str]
) -> dict[str, Any]:
    """The public view of a need document with its progress."""
    return {
        "need_id": doc["_id"],
        "recipient_id": doc["recipient_id"],
        "recipient_name": (recipients.get(doc["recipient_id"]) or {}).get("name"),
        "organisation_id": doc.get("organisation_id"),
        "organisation_name": org_names.get(doc.get("organisation_id") or ""),
        "area": area_of(doc),
        "rw": doc.get("rw"),
        "item": doc["item"],
        "item_description": doc.get("item_description"),
        "quantity": doc["quantity"],
        "unit": doc["unit"],
        "priority": doc["priority"],
        "needed_by": doc["needed_by"],
        "recurrence": doc.get("recurrence"),
        "status": doc["status"],
        "progress": progress_of(doc),
        "updated_at": doc.get("updated_at"),
    }


def public_organisation(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The public facts of a facilitator organisation."""
    return {
        "organisation_id": doc["_id"],
        "name": doc["name"],
        "kind": doc["kind"],
        "status": doc["status"],
        "area_codes": doc.get("area_codes", []),
    }
