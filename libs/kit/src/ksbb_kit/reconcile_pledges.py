"""`ksbb reconcile` for pledges and donor profiles: the pledges service's against the publisher's views of them.

The owner's state of a pledge is its ledger's (live and leaving pledges, embedded in `ledgers`) or, once it
settled, its per-pledge copy (`pledges`); a copy is never newer than its ledger. The publisher keeps each
pledge's version, status, quantity and the digest of its public state (`pledge_state_digest`). A pledge
version counts only published changes, so versions are compared as well as the digest; a view kept before
digests were compares by status and quantity. Donor profiles compare by version and the digest of the public
profile (`donor_profile_digest`: the name only as published).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ksbb_contracts.events.pledges import PledgePublic, donor_profile_digest, pledge_state_digest
from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase

#: The need's facts a pledge's public state takes from its ledger (a copy holds them itself).
LEDGER_FACTS = ("recipient_id", "organisation_id", "kelurahan_code", "item")


@dataclass(frozen=True)
class PledgeView:
    """One service's view of a pledge: version, digest of its public state (None: not kept, or not a valid
    state), status and quantity."""

    version: int
    digest: str | None
    status: str | None
    quantity: int | None

    def as_dict(self) -> dict[str, Any]:
        """The view as JSON-ready values."""
        return {"version": self.version, "digest": self.digest, "status": self.status, "quantity": self.quantity}


def same_pledge(owner: PledgeView, view: PledgeView) -> bool:
    """Whether a view shows the owner's pledge: the same version and digest (status and quantity when the
    view keeps no digest)."""
    if owner.version != view.version:
        return False
    if view.digest is not None:
        return owner.digest == view.digest
    return (owner.status, owner.quantity) == (view.status, view.quantity)


def owner_view(pledge: Mapping[str, Any]) -> PledgeView:
    """The owner's view of one pledge (with its need's facts and `pledge_id`)."""
    try:
        digest: str | None = pledge_state_digest(PledgePublic.model_validate(pledge))
    except ValidationError:
        digest = None  # not a valid public state: shown as a difference
    return PledgeView(int(pledge.get("version") or 0), digest, pledge.get("status"), pledge.get("quantity"))


async def owned_pledges(pledges_db: AsyncDatabase[dict[str, Any]]) -> dict[str, PledgeView]:
    """Every pledge the pledges service holds, as its newest home says (ledger over copy)."""
    found: dict[str, tuple[int, Mapping[str, Any]]] = {}
    async for copy in pledges_db["pledges"].find({}):
        found[copy["_id"]] = (int(copy.get("version") or 0), {**copy, "pledge_id": copy["_id"]})
    ledgers = pledges_db["ledgers"].find(
        {}, {"pledges": 1, "leaving": 1, **dict.fromkeys(LEDGER_FACTS, 1)}
    )
    async for ledger in ledgers:
        facts = {"need_id": ledger["_id"], **{k: ledger.get(k) for k in LEDGER_FACTS}}
        for pledge in [*ledger.get("pledges", []), *ledger.get("leaving", [])]:
            version = int(pledge.get("version") or 0)
            held = found.get(pledge["pledge_id"])
            if held is None or held[0] <= version:
                found[pledge["pledge_id"]] = (version, {**pledge, **facts})
    return {pledge_id: owner_view(pledge) for pledge_id, (_, pledge) in found.items()}


async def pledge_views(
    pledges_db: AsyncDatabase[dict[str, Any]], publisher_db: AsyncDatabase[dict[str, Any]]
) -> tuple[dict[str, PledgeView], dict[str, dict[str, PledgeView]]]:
    """The pledges service's pledges and the publisher's view of them."""
    owned = await owned_pledges(pledges_db)
    fields = {"version": 1, "state_digest": 1, "status": 1, "quantity": 1}
    publisher = {
        doc["_id"]: PledgeView(int(doc["version"]), doc.get("state_digest"), doc.get("status"), doc.get("quantity"))
        async for doc in publisher_db["pledges"].find({"version": {"$gte": 1}}, fields)
    }
    return owned, {"publisher": publisher}


@dataclass(frozen=True)
class DonorView:
    """One service's view of a donor's public profile: version and digest (None: not kept, or not valid)."""

    version: int
    digest: str | None

    def as_dict(self) -> dict[str, Any]:
        """The view as JSON-ready values."""
        return {"version": self.version, "digest": self.digest}


def same_donor(owner: DonorView, view: DonorView) -> bool:
    """Whether a view shows the owner's profile: the same version and digest."""
    return owner.version == view.version and owner.digest is not None and owner.digest == view.digest


def owner_donor_view(doc: Mapping[str, Any]) -> DonorView:
    """The owner's view of one stored donor profile."""
    try:
        digest: str | None = donor_profile_digest(doc["_id"], doc["kind"], doc.get("display_name"),
                                                  bool(doc.get("show_name")))
    except (KeyError, ValueError):
        digest = None  # not a valid profile: shown as a difference
    return DonorView(int(doc.get("version") or 0), digest)


async def donor_views(
    pledges_db: AsyncDatabase[dict[str, Any]], publisher_db: AsyncDatabase[dict[str, Any]]
) -> tuple[dict[str, DonorView], dict[str, dict[str, DonorView]]]:
    """The pledges service's donor profiles and the publisher's view of them."""
    fields = {"kind": 1, "display_name": 1, "show_name": 1, "version": 1}
    owned = {doc["_id"]: owner_donor_view(doc) async for doc in pledges_db["donors"].find({}, fields)}
    publisher = {
        doc["_id"]: DonorView(int(doc["version"]), doc.get("state_digest"))
        async for doc in publisher_db["donors"].find({"version": {"$gte": 1}}, {"version": 1, "state_digest": 1})
    }
    return owned, {"publisher": publisher}
