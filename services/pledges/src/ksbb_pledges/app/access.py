"""Authorisation decisions that need data: how the caller relates to a pledge, recipient or offer."""

from __future__ import annotations

from ksbb_kit.auth import Principal, Role
from ksbb_kit.ids import derived_id

from ksbb_pledges.domain.errors import NotPermitted
from ksbb_pledges.domain.lifecycle import Actor, may
from ksbb_pledges.domain.offers import Offer
from ksbb_pledges.domain.pledge import Ledger, Pledge


def donor_id_for(subject: str) -> str:
    """The donor's stable public id, derived from the token subject (which may be personal data)."""
    return derived_id("dnr", subject)


def own_donor_id(principal: Principal) -> str | None:
    """The caller's donor id when the caller is a donor."""
    return donor_id_for(principal.subject) if principal.role is Role.DONOR else None


def actors_of(principal: Principal, ledger: Ledger, pledge: Pledge) -> set[Actor]:
    """Every relation the caller has to a pledge (empty: a stranger)."""
    actors: set[Actor] = set()
    if principal.is_admin:
        actors.add(Actor.ADMIN)
    if principal.role is Role.DONOR and donor_id_for(principal.subject) == pledge["donor_id"]:
        actors.add(Actor.DONOR)
    if principal.is_recipient(ledger["recipient_id"]):
        actors.add(Actor.RECIPIENT)
    if principal.is_facilitator_of(ledger["organisation_id"]):
        actors.add(Actor.FACILITATOR)
    return actors


def check_sees_pledge(principal: Principal, ledger: Ledger, pledge: Pledge) -> set[Actor]:
    """The caller's relations to a pledge; NotPermitted for a stranger."""
    actors = actors_of(principal, ledger, pledge)
    if not actors:
        raise NotPermitted("this pledge is not yours to see")
    return actors


def check_may_act(principal: Principal, ledger: Ledger, pledge: Pledge, action: str) -> str:
    """Refuse an action the caller's relation does not allow; otherwise who acts, for the audit trail."""
    actors = actors_of(principal, ledger, pledge)
    if not actors:
        raise NotPermitted("this pledge is not yours")
    if not may(action, actors, pledge["mode"]):
        raise NotPermitted(f"you may not {action} this pledge")
    return f"{principal.role.value}:{principal.org_id or principal.recipient_id or 'self'}"


def check_sees_recipient(principal: Principal, recipient_id: str, organisation_id: str | None) -> None:
    """Admins, the recipient's own account and its organisation's facilitators see its pledges."""
    if not (principal.is_admin or principal.is_recipient(recipient_id) or principal.is_facilitator_of(organisation_id)):
        raise NotPermitted("only the recipient, its facilitators and admins see these pledges")


def check_owns_offer(principal: Principal, offer: Offer, *, admin_may: bool) -> None:
    """Only the offering donor (and, to read, an admin) deals with an offer."""
    mine = own_donor_id(principal) == offer["donor_id"]
    if not mine and not (admin_may and principal.is_admin):
        raise NotPermitted("this offer is not yours")


def listing_scope(principal: Principal, refusal: str) -> str | None:
    """Whose items a list shows: a donor's own (their donor id), an admin's all (None); others are refused."""
    if principal.role is Role.DONOR:
        return donor_id_for(principal.subject)
    if principal.is_admin:
        return None
    raise NotPermitted(refusal)
