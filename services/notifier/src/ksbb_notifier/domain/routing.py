"""Which domain events become webhook messages, and which endpoints receive them.

Scope rule: an organisation's endpoints receive events about the organisation itself, its own
recipients, their needs and pledges, plus programme-wide public events (`ksbb.need.opened.v1`,
so every NGO sees new needs anywhere in Jakarta). Endpoints without an organisation (created by
admins) receive every event. Filters then narrow by event-type glob, kota and recipient kind.
Confidential contact events are never webhook messages.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from ksbb_contracts.areas import UnknownArea, areas

#: Event types visible to every organisation's endpoints (public programme-wide facts).
PROGRAMME_WIDE_TYPES = frozenset({"ksbb.need.opened.v1"})

#: Prefixes of event types delivered over webhooks (the catalogue in docs/ngo-integration-guide.md).
WEBHOOK_TYPE_PREFIXES = ("ksbb.organisation.", "ksbb.recipient.", "ksbb.need.", "ksbb.pledge.")

#: The type of the message sent by the "send test event" action.
TEST_EVENT_TYPE = "ksbb.webhook.test.v1"


@dataclass(frozen=True)
class MessageScope:
    """Who an event concerns: its organisation and where and what kind of recipient it is about."""

    organisation_id: str | None
    programme_wide: bool
    kelurahan_code: str | None
    recipient_id: str | None
    recipient_kind: str | None

    @property
    def kota_code(self) -> str | None:
        """The kota of the event's kelurahan, if it has one."""
        return kota_of(self.kelurahan_code)


@dataclass(frozen=True)
class EndpointFilter:
    """An endpoint's subscription: owner organisation (None = everything) and optional filters."""

    organisation_id: str | None
    event_types: tuple[str, ...] = ()
    kota_codes: tuple[str, ...] = ()
    recipient_kinds: tuple[str, ...] = ()


def kota_of(kelurahan_code: str | None) -> str | None:
    """The kota code of a kelurahan code, None when unknown."""
    if not kelurahan_code:
        return None
    try:
        return str(areas().kota_of(kelurahan_code).code)
    except (UnknownArea, KeyError, ValueError):
        return None


def is_webhook_type(event_type: str) -> bool:
    """Whether an event type is part of the webhook catalogue."""
    return event_type.startswith(WEBHOOK_TYPE_PREFIXES)


def scope_of(event_type: str, data: dict[str, Any], recipient_kind: str | None = None) -> MessageScope:
    """The scope of one event's data (kind looked up by the caller for needs and pledges)."""
    snapshot: dict[str, Any] = {}
    for key in ("pledge", "need", "recipient", "organisation"):
        if isinstance(data.get(key), dict):
            snapshot = data[key]
            break
    if event_type.startswith("ksbb.organisation."):
        return MessageScope(snapshot.get("organisation_id"), False, None, None, None)
    kind = snapshot.get("kind") if event_type.startswith("ksbb.recipient.") else recipient_kind
    return MessageScope(
        organisation_id=snapshot.get("organisation_id"),
        programme_wide=event_type in PROGRAMME_WIDE_TYPES,
        kelurahan_code=snapshot.get("kelurahan_code"),
        recipient_id=snapshot.get("recipient_id"),
        recipient_kind=kind,
    )


def type_matches(patterns: tuple[str, ...] | list[str], event_type: str) -> bool:
    """Whether an event type matches any glob (no patterns = every type)."""
    return not patterns or any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def endpoint_receives(endpoint: EndpointFilter, event_type: str, scope: MessageScope) -> bool:
    """Whether one endpoint gets one message.

    Events without a location (organisation events) pass the kota filter; events whose recipient
    kind is unknown do not pass a kind filter.
    """
    if endpoint.organisation_id is not None and not scope.programme_wide:
        if scope.organisation_id != endpoint.organisation_id:
            return False
    if not type_matches(endpoint.event_types, event_type):
        return False
    if endpoint.kota_codes and scope.kelurahan_code is not None:
        if scope.kota_code not in endpoint.kota_codes:
            return False
    if endpoint.recipient_kinds and (scope.recipient_id is not None or scope.recipient_kind is not None):
        if scope.recipient_kind not in endpoint.recipient_kinds:
            return False
    return True
