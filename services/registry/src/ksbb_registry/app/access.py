"""Who may do what: authorisation decisions that depend on the resource (its organisation, its account)."""

from __future__ import annotations

from ksbb_kit.auth import Principal

from ksbb_registry.domain.change import Author
from ksbb_registry.domain.errors import NotPermitted
from ksbb_registry.domain.lifecycle import Actor
from ksbb_registry.domain.recipients import Recipient


def author_of(principal: Principal) -> Author:
    """The caller as recorded in audit trails and histories."""
    return Author(subject=principal.subject, role=principal.role.value)


def actor_for(principal: Principal, organisation_id: str) -> Actor | None:
    """The caller's standing towards a recipient of an organisation."""
    if principal.is_admin:
        return Actor.ADMIN
    if principal.is_facilitator_of(organisation_id):
        return Actor.OWN_FACILITATOR
    return None


def may_manage(principal: Principal, recipient: Recipient) -> bool:
    """Admins and the responsible organisation's facilitators manage a recipient."""
    return actor_for(principal, recipient.organisation_id) is not None


def may_act_for(principal: Principal, recipient: Recipient) -> bool:
    """Managers plus the recipient's own account (needs, contact, reading)."""
    return may_manage(principal, recipient) or principal.is_recipient(recipient.recipient_id)


def require(allowed: bool, message: str = "you may not do this") -> None:
    """Refuse unless `allowed`."""
    if not allowed:
        raise NotPermitted(message)
