"""Webhook endpoints: what one is, how it changes, secret rotation, and when a failing one is switched off."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ksbb_notifier.domain.errors import FieldMayNotBeNull
from ksbb_notifier.domain.routing import EndpointFilter

#: Why an endpoint that answered 410 Gone was disabled.
GONE_REASON = "gone: the endpoint answered 410"
#: Why an endpoint its owner switched off is disabled.
OWNER_DISABLED_REASON = "disabled by the owner"
#: Fields a change may leave out but never set to null.
NEVER_NULL = ("event_types", "kota_codes", "recipient_kinds", "enabled")


@dataclass(frozen=True)
class SigningSecret:
    """One signing secret as stored: sealed (encrypted), a hint, and the end of its rotation overlap."""

    sealed: str
    hint: str
    valid_until: datetime | None
    created_at: datetime

    def valid_at(self, now: datetime) -> bool:
        """Whether deliveries at `now` are still signed with this secret."""
        return self.valid_until is None or self.valid_until > now


@dataclass(frozen=True)
class Endpoint:
    """A webhook subscription: where, for whom, which events, and its delivery state."""

    id: str
    organisation_id: str | None
    url: str
    enabled: bool
    version: int
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    event_types: tuple[str, ...] = ()
    kota_codes: tuple[str, ...] = ()
    recipient_kinds: tuple[str, ...] = ()
    rate_limit_per_second: float | None = None
    disabled_reason: str | None = None
    secrets: tuple[SigningSecret, ...] = field(default=())
    failing_since: datetime | None = None
    created_by: str | None = None

    @property
    def filter(self) -> EndpointFilter:
        """The routing view of this endpoint."""
        return EndpointFilter(
            organisation_id=self.organisation_id,
            event_types=self.event_types,
            kota_codes=self.kota_codes,
            recipient_kinds=self.recipient_kinds,
        )

    @property
    def secret_hint(self) -> str:
        """The hint of the current secret ("" if it has none)."""
        return self.secrets[0].hint if self.secrets else ""

    @property
    def previous_secret_valid_until(self) -> datetime | None:
        """When the last previous secret stops signing, if a rotation overlap is running."""
        ends = [s.valid_until for s in self.secrets[1:] if s.valid_until is not None]
        return max(ends) if ends else None

    def sealed_secrets_valid_at(self, now: datetime) -> list[str]:
        """The sealed secrets that sign deliveries at `now`: the current one first, then those in overlap."""
        return [s.sealed for s in self.secrets if s.valid_at(now)]


def new_endpoint(
    endpoint_id: str,
    *,
    organisation_id: str | None,
    url: str,
    description: str | None,
    event_types: list[str],
    kota_codes: list[str],
    recipient_kinds: list[str],
    rate_limit_per_second: float | None,
    secret: SigningSecret,
    created_by: str,
    now: datetime,
) -> Endpoint:
    """A freshly registered, enabled endpoint with its first secret."""
    return Endpoint(
        id=endpoint_id,
        organisation_id=organisation_id,
        url=url,
        description=description,
        event_types=tuple(event_types),
        kota_codes=tuple(kota_codes),
        recipient_kinds=tuple(recipient_kinds),
        rate_limit_per_second=rate_limit_per_second,
        enabled=True,
        disabled_reason=None,
        secrets=(secret,),
        failing_since=None,
        version=1,
        created_at=now,
        updated_at=now,
        created_by=created_by,
    )


def refuse_nulls(changes: Mapping[str, Any], fields: tuple[str, ...]) -> None:
    """Raise FieldMayNotBeNull for the first of `fields` that a change sets to null."""
    for key in fields:
        if key in changes and changes[key] is None:
            raise FieldMayNotBeNull(key)


def updated_fields(endpoint: Endpoint, changes: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Everything an owner's change sets: re-enabling clears the failure streak, disabling records why."""
    result = dict(changes)
    if result.get("enabled") is True and not endpoint.enabled:
        result.update(disabled_reason=None, failing_since=None)
    elif result.get("enabled") is False and endpoint.enabled:
        result["disabled_reason"] = OWNER_DISABLED_REASON
    result["updated_at"] = now
    return result


def rotated_secrets(
    secrets: tuple[SigningSecret, ...], new: SigningSecret, now: datetime, overlap: timedelta
) -> tuple[tuple[SigningSecret, ...], datetime]:
    """The secrets after a rotation and the end of the overlap.

    The new secret comes first; the current one keeps signing until the overlap ends; older ones
    still inside their own overlap stay, expired ones are dropped.
    """
    overlap_until = now + overlap
    current, *older = secrets
    kept = [s for s in older if s.valid_until is not None and s.valid_until > now]
    return (new, replace(current, valid_until=overlap_until), *kept), overlap_until


def failing_too_long(failing_since: datetime | None, now: datetime, after_days: float) -> str | None:
    """The reason to disable an endpoint whose failure streak reached `after_days`; None while it may go on."""
    if failing_since is None or now - failing_since < timedelta(days=after_days):
        return None
    return f"failing continuously for {after_days:g} days"
