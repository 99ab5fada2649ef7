"""Coverage gaps: recipients with open needs and no delivery in the last N days, rolled up per area level."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ksbb_publisher.domain.areas import area_of

GAP_LEVELS = ("kota", "kecamatan", "kelurahan")


def gap_since(now: datetime, days: int) -> datetime:
    """The moment a delivery must have happened after for a recipient not to be in a gap."""
    return now - timedelta(days=days)


def gap_recipients(
    recipients: Iterable[Mapping[str, Any]],
    open_needs: Mapping[str, int],
    last_delivery: Mapping[str, datetime],
    since: datetime,
) -> list[dict[str, Any]]:
    """The recipients (in the given order) whose last delivery is missing or older than `since`."""
    gaps = []
    for doc in recipients:
        when = last_delivery.get(doc["_id"])
        if when is not None and when >= since:
            continue
        gaps.append(
            {
                "recipient_id": doc["_id"],
                "name": doc["name"],
                "kind": doc["kind"],
                "area": area_of(doc),
                "rw": doc.get("rw"),
                "households": (doc.get("beneficiaries") or {}).get("households", 0),
                "open_needs": open_needs[doc["_id"]],
                "last_delivery_at": when,
            }
        )
    return gaps


def gap_areas(gaps: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Recipients and households in a gap per kota, kecamatan and kelurahan, ordered by area code."""
    areas: dict[str, dict[str, dict[str, Any]]] = {level: {} for level in GAP_LEVELS}
    for gap in gaps:
        for level in GAP_LEVELS:
            code, name = gap["area"][f"{level}_code"], gap["area"][f"{level}_name"]
            row = areas[level].setdefault(code, {"code": code, "name": name, "recipients": 0, "households": 0})
            row["recipients"] += 1
            row["households"] += gap["households"]
    return {level: [rows[c] for c in sorted(rows)] for level, rows in areas.items()}


def coverage_report(
    recipients: Iterable[Mapping[str, Any]],
    open_needs: Mapping[str, int],
    last_delivery: Mapping[str, datetime],
    *,
    now: datetime,
    days: int,
) -> dict[str, Any]:
    """The coverage-gap report: the window, the recipients in a gap and the areas they lie in."""
    since = gap_since(now, days)
    gaps = gap_recipients(recipients, open_needs, last_delivery, since)
    return {"days": days, "since": since, "recipients": gaps, "areas": gap_areas(gaps)}
