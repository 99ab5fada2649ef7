"""Donor profiles (pure): what is public, what stays confidential, and the events a change publishes.

The public profile event carries the display name only when the donor opted in (`show_name`); the
coordination contact travels only on the confidential, compacted contacts topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ksbb_contracts import Event
from ksbb_contracts.events.pledges import DonorContactRecorded, DonorProfileUpdated, donor_profile_digest

Donor = dict[str, Any]


@dataclass(frozen=True)
class DonorUpdate:
    """A new version of a donor's profile: the fields to store and the events to publish with them."""

    version: int
    fields: dict[str, Any]
    events: list[Event]


def update_profile(donor_id: str, current: Donor | None, profile: dict[str, Any], now: datetime) -> DonorUpdate:
    """The next version of a donor's profile (`profile`: kind, display_name, show_name, contact, subject)."""
    version = (current or {}).get("version", 0) + 1
    events: list[Event] = [
        DonorProfileUpdated(
            donor_id=donor_id,
            kind=profile["kind"],
            show_name=profile["show_name"],
            version=version,
            display_name=profile["display_name"] if profile["show_name"] else None,
        )
    ]
    contact = profile.get("contact")
    if contact:
        events.append(DonorContactRecorded(donor_id=donor_id, **contact))
    return DonorUpdate(version, {**profile, "version": version, "updated_at": now}, events)


def restate_profile(donor_id: str, current: Donor, now: datetime) -> DonorUpdate:
    """The profile's current public part re-published (`restated`, anti-entropy) at its version; nothing else
    changes and the confidential contact is not sent again."""
    version = int(current["version"])
    shown = current.get("display_name") if current.get("show_name") else None
    event = DonorProfileUpdated(
        donor_id=donor_id,
        kind=current["kind"],
        show_name=bool(current.get("show_name")),
        version=version,
        display_name=shown,
        state_digest=donor_profile_digest(donor_id, current["kind"], shown, bool(current.get("show_name"))),
        restated=True,
    )
    return DonorUpdate(version, {"restated_at": now}, [event])
