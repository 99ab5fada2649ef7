"""Activity feed entries: which pledge events appear, how an entry is built, its cursor and its wording."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ksbb_contracts.events import PledgeDelivered
from ksbb_contracts.events.pledges import _PledgeEvent

from ksbb_publisher.domain.areas import area_fields, area_of

ANONYMOUS = {"id": "Kolaborator anonim", "en": "Anonymous collaborator"}

#: Pledge event type -> feed entry kind (reminders such as pledge.expiring are not public activity).
FEED_KINDS: dict[str, str] = {
    "ksbb.pledge.created.v1": "pledged",
    "ksbb.pledge.confirmed.v1": "confirmed",
    "ksbb.pledge.dispatched.v1": "dispatched",
    "ksbb.pledge.delivered.v1": "delivered",
    "ksbb.pledge.cancelled.v1": "cancelled",
    "ksbb.pledge.rejected.v1": "rejected",
    "ksbb.pledge.expired.v1": "expired",
}

VERBS: dict[str, dict[str, str]] = {
    "pledged": {"id": "berkomitmen mengirim", "en": "pledged"},
    "confirmed": {"id": "dikonfirmasi:", "en": "confirmed:"},
    "dispatched": {"id": "sedang mengirim", "en": "dispatched"},
    "delivered": {"id": "telah menyalurkan", "en": "delivered"},
    "cancelled": {"id": "membatalkan", "en": "cancelled"},
    "rejected": {"id": "ditolak:", "en": "rejected:"},
    "expired": {"id": "kedaluwarsa:", "en": "expired:"},
}


def feed_cursor(occurred_at: datetime, event_id: str) -> str:
    """A string that sorts entries by event time, then event id (pagination key; SSE id before `seq`)."""
    moment = occurred_at.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S.%f}Z~{event_id}"


def feed_entry(event: _PledgeEvent, event_id: str, now: datetime) -> dict[str, Any] | None:
    """The stored feed entry of a pledge event (keyed by event id), or None when it is not public activity.

    The entry holds ids only; names are resolved when it is shown, so a donor's opt-out applies to history.
    """
    kind = FEED_KINDS.get(event.event_type)
    if kind is None:
        return None
    pledge = event.pledge
    return {
        "_id": event_id,
        "cursor": feed_cursor(event.occurred_at, event_id),
        "kind": kind,
        "event_type": event.event_type,
        "pledge_id": pledge.pledge_id,
        "need_id": pledge.need_id,
        "recipient_id": pledge.recipient_id,
        "organisation_id": pledge.organisation_id,
        "donor_id": pledge.donor_id,
        "item": pledge.item.value,
        "quantity": pledge.quantity,
        "delivered_quantity": event.received_quantity if isinstance(event, PledgeDelivered) else None,
        **area_fields(pledge.kelurahan_code),
        "occurred_at": event.occurred_at,
        "projected_at": now,
    }


def donor_label(display_name: str | None, lang: str = "id") -> str:
    """The donor's public name, or the anonymous label when the donor did not opt in."""
    return display_name or ANONYMOUS.get(lang, ANONYMOUS["id"])


def public_feed_entry(
    entry: Mapping[str, Any], donor_name: str | None, recipient_name: str | None
) -> dict[str, Any]:
    """The public view of a stored feed entry, with the donor's name only if the donor opted in."""
    return {
        "id": entry["cursor"],
        "seq": entry["seq"],
        "kind": entry["kind"],
        "pledge_id": entry["pledge_id"],
        "need_id": entry["need_id"],
        "recipient_id": entry["recipient_id"],
        "recipient_name": recipient_name,
        "donor_name": donor_label(donor_name),
        "donor_named": bool(donor_name),
        "item": entry["item"],
        "quantity": entry["quantity"],
        "delivered_quantity": entry.get("delivered_quantity"),
        "area": area_of(entry),
        "occurred_at": entry["occurred_at"],
    }


def describe(entry: Mapping[str, object], lang: str = "id") -> str:
    """One sentence describing a public feed entry."""
    verb = VERBS.get(str(entry.get("kind")), {}).get(lang, str(entry.get("kind")))
    quantity = entry.get("delivered_quantity") if entry.get("kind") == "delivered" else entry.get("quantity")
    where = entry.get("recipient_name") or entry.get("recipient_id")
    to = "untuk" if lang == "id" else "for"
    who = entry.get("donor_name") if entry.get("donor_named") else donor_label(None, lang)
    return f"{who} {verb} {quantity} {entry.get('item')} {to} {where}"
