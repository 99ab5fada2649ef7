"""Things several pages share: the area lists, the aid catalogue, progress numbers, idempotency keys."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from ksbb_contracts.areas import Area, areas

from ksbb_portal.formatting import percent
from ksbb_portal.web.context import Page

CATALOGUE_SECONDS = 600.0


def kotas() -> list[Area]:
    """The six kota of DKI Jakarta."""
    return areas().level("kota")


def kecamatans(kota: str | None) -> list[Area]:
    """The kecamatan of one kota (all of them without one)."""
    return [a for a in areas().level("kecamatan") if not kota or a.parent == kota]


def kelurahans(kecamatan: str | None) -> list[Area]:
    """The kelurahan of one kecamatan (none without one: 267 options help nobody)."""
    return areas().children(kecamatan) if kecamatan and kecamatan in areas() else []


def area_of_level(code: str | None, level: str) -> str | None:
    """A code that names an area of this level, else None (filters come from links and forms)."""
    if not code:
        return None
    area = areas().get(code)
    return code if area is not None and area.level == level else None


def area_name(code: str | None) -> str:
    """The name of an area code (the code when unknown)."""
    if not code:
        return "–"
    area = areas().get(code)
    return area.name if area else code


def new_form_key() -> str:
    """An idempotency key for one rendered form: submitting it twice creates one thing, not two."""
    return secrets.token_urlsafe(18)


async def catalogue(ctx: Page) -> list[dict[str, Any]]:
    """The aid catalogue (items, units, reference prices), cached for a few minutes."""
    cached = ctx.parts.caches.get("catalogue")
    if cached and time.monotonic() - cached[0] < CATALOGUE_SECONDS:
        return list(cached[1])
    items = await ctx.api.get_public("/v1/catalogue")
    ctx.parts.caches["catalogue"] = (time.monotonic(), items)
    return list(items)


@dataclass(frozen=True)
class Progress:
    """How far a need is: requested, delivered, pledged (committed + in transit), remaining; percentages."""

    requested: int
    delivered: int
    pledged: int
    remaining: int

    @property
    def delivered_percent(self) -> int:
        """Share delivered."""
        return percent(self.delivered, self.requested)

    @property
    def pledged_percent(self) -> int:
        """Share pledged but not yet delivered (stacked after the delivered part, never past 100)."""
        return max(0, min(100 - self.delivered_percent, percent(self.pledged, self.requested)))


def progress_of(need: dict[str, Any]) -> Progress:
    """Progress of a public need (publisher), a registry need with its ledger, or a pledges ledger.

    As in the pledges service's quantities rule, `committed` counts every live reservation and what was
    received, `in_transit` and `delivered` are parts of it; what remains is requested minus committed.
    """
    data = need.get("progress") or need.get("ledger") or need
    requested = int(data.get("requested") or need.get("quantity") or 0)
    delivered = int(data.get("delivered") or 0)
    committed = max(int(data.get("committed") or 0), delivered)
    return Progress(requested=requested, delivered=delivered, pledged=committed - delivered,
                    remaining=max(0, requested - committed))
