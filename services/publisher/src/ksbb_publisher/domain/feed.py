"""Activity feed entries: which pledge events appear, their cursor and their wording."""

from __future__ import annotations

from datetime import UTC, datetime

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
    """A string that sorts entries by event time, then event id (SSE id and pagination key)."""
    moment = occurred_at.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S.%f}Z~{event_id}"


def donor_label(display_name: str | None, lang: str = "id") -> str:
    """The donor's public name, or the anonymous label when the donor did not opt in."""
    return display_name or ANONYMOUS.get(lang, ANONYMOUS["id"])


def describe(entry: dict[str, object], lang: str = "id") -> str:
    """One sentence describing a public feed entry."""
    verb = VERBS.get(str(entry.get("kind")), {}).get(lang, str(entry.get("kind")))
    quantity = entry.get("delivered_quantity") if entry.get("kind") == "delivered" else entry.get("quantity")
    where = entry.get("recipient_name") or entry.get("recipient_id")
    to = "untuk" if lang == "id" else "for"
    who = entry.get("donor_name") if entry.get("donor_named") else donor_label(None, lang)
    return f"{who} {verb} {quantity} {entry.get('item')} {to} {where}"
