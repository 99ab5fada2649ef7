"""Endpoint use cases: register, read, change, rotate secrets, delete; switch off endpoints that keep failing."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from ksbb_contracts.events.notifier import WebhookEndpointDisabled
from ksbb_kit.auth import Principal, Role
from ksbb_kit.ids import new_id

from ksbb_notifier.app.mail import Mailer
from ksbb_notifier.app.ports import Clock, EndpointStore, SecretGenerator, SecretSealer, UrlRules
from ksbb_notifier.domain.endpoints import (
    GONE_REASON,
    NEVER_NULL,
    Endpoint,
    SigningSecret,
    failing_too_long,
    new_endpoint,
    refuse_nulls,
    rotated_secrets,
    updated_fields,
)
from ksbb_notifier.domain.errors import (
    EndpointChangedMeanwhile,
    EndpointDisabled,
    EndpointNotFound,
    ForeignOrganisation,
    RotationCollided,
)
from ksbb_notifier.domain.signing import secret_hint
from ksbb_notifier.domain.ssrf import AddressPolicy
from ksbb_notifier.settings import NotifierSettings

#: How long the delivery loop trusts a cached endpoint: other instances' changes apply within this.
ENDPOINT_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class NewEndpoint:
    """What a caller asks for when registering an endpoint."""

    url: str
    organisation_id: str | None = None
    description: str | None = None
    event_types: tuple[str, ...] = ()
    kota_codes: tuple[str, ...] = ()
    recipient_kinds: tuple[str, ...] = ()
    rate_limit_per_second: float | None = None


@dataclass(frozen=True)
class Registered:
    """A new endpoint and its signing secret (shown to the caller this once only)."""

    endpoint: Endpoint
    secret: str


@dataclass(frozen=True)
class Rotated:
    """A new signing secret and when the previous one stops signing."""

    endpoint_id: str
    secret: str
    previous_secret_valid_until: datetime


class EndpointCache:
    """Endpoints as the delivery loop reads them, trusted for a short while to spare the database."""

    def __init__(
        self,
        store: EndpointStore,
        *,
        ttl: float = ENDPOINT_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._monotonic = monotonic
        self._entries: dict[str, tuple[float, Endpoint]] = {}

    async def get(self, endpoint_id: str) -> Endpoint | None:
        """The endpoint, from the cache while it is fresh."""
        cached = self._entries.get(endpoint_id)
        if cached is not None and self._monotonic() - cached[0] < self._ttl:
            return cached[1]
        endpoint = await self._store.get(endpoint_id)
        if endpoint is not None:
            self._entries[endpoint_id] = (self._monotonic(), endpoint)
        return endpoint

    async def warm(self, endpoint_ids: Sequence[str]) -> None:
        """Refresh the stale or missing ones among these endpoints with one read (before their attempts start,
        so a batch of attempts does not read the same endpoints one by one)."""
        now = self._monotonic()
        stale = {i for i in endpoint_ids if (cached := self._entries.get(i)) is None or now - cached[0] >= self._ttl}
        if not stale:
            return
        for endpoint in await self._store.get_many(sorted(stale)):
            self._entries[endpoint.id] = (now, endpoint)

    def note_failing_since(self, endpoint_id: str, failing_since: datetime | None) -> None:
        """Keep a cached endpoint's failure streak current (its age stays as it is)."""
        cached = self._entries.get(endpoint_id)
        if cached is not None:
            self._entries[endpoint_id] = (cached[0], replace(cached[1], failing_since=failing_since))

    def forget(self, endpoint_id: str | None = None) -> None:
        """Drop one cached endpoint, or all."""
        if endpoint_id is None:
            self._entries.clear()
        else:
            self._entries.pop(endpoint_id, None)


class Endpoints:
    """Webhook endpoints: what owners do through the API and what delivery outcomes do to them."""

    def __init__(
        self,
        store: EndpointStore,
        *,
        url_rules: UrlRules,
        policy: AddressPolicy,
        secrets: SecretGenerator,
        sealer: SecretSealer,
        mailer: Mailer,
        clock: Clock,
        settings: NotifierSettings,
    ) -> None:
        self._store = store
        self._url_rules = url_rules
        self._policy = policy
        self._secrets = secrets
        self._sealer = sealer
        self._mailer = mailer
        self._clock = clock
        self._rotation_overlap = timedelta(hours=settings.secret_rotation_overlap_hours)
        self._disable_after_days = settings.disable_after_failing_days
        self.cache = EndpointCache(store)

    # -- owners ----------------------------------------------------------------------------------

    async def register(self, caller: Principal, request: NewEndpoint) -> Registered:
        """Register an endpoint; facilitators register for their own organisation only."""
        organisation_id = request.organisation_id
        if caller.role is Role.FACILITATOR:
            if organisation_id is not None and organisation_id != caller.org_id:
                raise ForeignOrganisation(organisation_id)
            organisation_id = caller.org_id
        self.check_url(request.url)
        now = self._clock.now()
        secret = self._secrets.new_secret()
        endpoint = new_endpoint(
            new_id("whe"),
            organisation_id=organisation_id,
            url=request.url,
            description=request.description,
            event_types=list(request.event_types),
            kota_codes=list(request.kota_codes),
            recipient_kinds=list(request.recipient_kinds),
            rate_limit_per_second=request.rate_limit_per_second,
            secret=SigningSecret(self._sealer.seal(secret), secret_hint(secret), None, now),
            created_by=caller.subject,
            now=now,
        )
        await self._store.add(endpoint)
        return Registered(endpoint, secret)

    async def visible_to(self, caller: Principal, organisation_id: str | None = None) -> list[Endpoint]:
        """The endpoints the caller may manage: a facilitator's own; for admins all, or one organisation's."""
        if caller.role is Role.FACILITATOR:
            return await self._store.owned_by(organisation_id=caller.org_id, any_owner=False)
        return await self._store.owned_by(organisation_id=organisation_id, any_owner=organisation_id is None)

    async def get(self, caller: Principal, endpoint_id: str) -> Endpoint:
        """The endpoint if the caller may manage it; EndpointNotFound otherwise (others' stay hidden)."""
        endpoint = await self._store.get(endpoint_id)
        if endpoint is None or not (caller.is_admin or caller.is_facilitator_of(endpoint.organisation_id)):
            raise EndpointNotFound(endpoint_id)
        return endpoint

    async def get_enabled(self, caller: Principal, endpoint_id: str) -> Endpoint:
        """As `get`, for actions that need the endpoint enabled (EndpointDisabled otherwise)."""
        endpoint = await self.get(caller, endpoint_id)
        if not endpoint.enabled:
            raise EndpointDisabled(endpoint_id)
        return endpoint

    async def update(self, endpoint: Endpoint, changes: dict[str, Any]) -> Endpoint:
        """Apply an owner's changes to an endpoint read by `get`, unless it changed since."""
        refuse_nulls(changes, ("url",))
        if "url" in changes:
            self.check_url(changes["url"])
        refuse_nulls(changes, NEVER_NULL)
        fields = updated_fields(endpoint, changes, self._clock.now())
        updated = await self._store.update(endpoint.id, endpoint.version, fields)
        if updated is None:
            raise EndpointChangedMeanwhile(endpoint.id, endpoint.version)
        self.cache.forget(endpoint.id)
        return updated

    async def delete(self, caller: Principal, endpoint_id: str) -> None:
        """Delete an endpoint; its pending deliveries fail at their next attempt."""
        await self.get(caller, endpoint_id)
        await self._store.delete(endpoint_id)
        self.cache.forget(endpoint_id)

    async def rotate_secret(self, caller: Principal, endpoint_id: str) -> Rotated:
        """Issue a new secret; the old one keeps signing for the configured overlap."""
        endpoint = await self.get(caller, endpoint_id)
        now = self._clock.now()
        secret = self._secrets.new_secret()
        new = SigningSecret(self._sealer.seal(secret), secret_hint(secret), None, now)
        secrets, overlap_until = rotated_secrets(endpoint.secrets, new, now, self._rotation_overlap)
        if not await self._store.replace_secrets(endpoint_id, endpoint.version, secrets, now):
            raise RotationCollided(endpoint_id)
        self.cache.forget(endpoint_id)
        return Rotated(endpoint_id, secret, overlap_until)

    def check_url(self, url: str) -> None:
        """Refuse a URL of the wrong form, or a literal address webhooks may not reach (names are
        resolved and checked at every delivery)."""
        self._policy.check_literal(self._url_rules.host_of(url))

    # -- delivery outcomes -----------------------------------------------------------------------

    def open_secrets(self, endpoint: Endpoint, now: datetime) -> list[str]:
        """The secrets that sign a delivery at `now`, current first."""
        return [self._sealer.open(sealed) for sealed in endpoint.sealed_secrets_valid_at(now)]

    async def delivered(self, endpoint: Endpoint) -> None:
        """A delivery succeeded: end the endpoint's failure streak if one was running."""
        # The cached endpoint is at most a second old; a streak started meanwhile elsewhere is
        # seen (and cleared) by the next success after the refresh.
        if endpoint.failing_since is not None:
            await self._store.end_failure_streak(endpoint.id)
            self.cache.forget(endpoint.id)

    async def gone(self, endpoint_id: str) -> None:
        """The receiver answered 410 Gone: disable the endpoint."""
        await self.disable(endpoint_id, GONE_REASON)

    async def failed(self, endpoint_id: str, at: datetime) -> None:
        """A delivery attempt failed: run the failure streak, and disable the endpoint once it is too long."""
        current = await self._store.start_failure_streak(endpoint_id, at)
        if current is not None:
            self.cache.note_failing_since(endpoint_id, current.failing_since)
        reason = failing_too_long(current.failing_since if current else None, at, self._disable_after_days)
        if reason is not None:
            await self.disable(endpoint_id, reason)

    async def disable(self, endpoint_id: str, reason: str) -> bool:
        """Disable an endpoint, emit the event and tell its organisation; False if it was off already."""
        now = self._clock.now()
        endpoint = await self._store.get(endpoint_id)
        if endpoint is None:
            return False
        event = WebhookEndpointDisabled(
            endpoint_id=endpoint_id, organisation_id=endpoint.organisation_id, reason=reason, occurred_at=now
        )
        self.cache.forget(endpoint_id)
        updated = await self._store.disable(endpoint_id, reason, now, [event])
        if updated is None:
            return False
        await self._mailer.endpoint_disabled(updated, reason)
        return True
