"""Calls to the public API, always through the gateway, with the signed-in person's access token.

The portal reads nothing but what the API answers: no other service's database. An access token close to
its expiry is refreshed first; a 401 gets one refresh and one retry. Refreshes of one session are
serialised in this process and compare-and-set in the database, so two requests never both spend the
same refresh token (the realm allows no reuse).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from ksbb_kit.errors import ApiError
from ksbb_kit.tracing import current_request_id, current_traceparent

from ksbb_portal.oidc import RefreshRefused, RelyingParty, person_of
from ksbb_portal.sessions import Session, SessionStore, Tokens, now_utc

log = logging.getLogger(__name__)


class ApiProblem(Exception):
    """An error answer of the API: the project's error body (code, message, field, details)."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details or {}

    @classmethod
    def of(cls, response: httpx.Response) -> ApiProblem:
        """From an error response (a body that is not the project's still gives a usable problem)."""
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if "detail" in body and "code" not in body:  # FastAPI's own validation body, just in case
            detail = body["detail"]
            first = detail[0] if isinstance(detail, list) and detail else {}
            location = [str(p) for p in first.get("loc", []) if p not in ("body", "query", "path")]
            return cls(response.status_code, "validation_error", str(first.get("msg", "invalid")),
                       field=".".join(location) or None)
        return cls(response.status_code, str(body.get("code") or f"http_{response.status_code}"),
                   str(body.get("message") or response.reason_phrase), field=body.get("field"),
                   details=body.get("details") if isinstance(body.get("details"), dict) else None)

    def field_errors(self) -> dict[str, str]:
        """Field path -> API message, for every field a validation error names."""
        errors: dict[str, str] = {}
        for entry in self.details.get("errors", []) if isinstance(self.details.get("errors"), list) else []:
            if isinstance(entry, dict) and entry.get("field"):
                errors.setdefault(str(entry["field"]), str(entry.get("message", "")))
        if self.field:
            errors.setdefault(self.field, self.message)
        return errors


class SignInRequired(Exception):
    """The session can no longer call the API (its tokens were refused and could not be renewed)."""


@dataclass
class Answer:
    """A successful API answer: its JSON body (None for 204) and its ETag, if any."""

    status: int
    data: Any
    etag: str | None


class Gateway:
    """The HTTP client for the gateway (one per process, connection-pooled)."""

    def __init__(self, base_url: str, *, timeout: float = 10.0, local_address: str | None = None) -> None:
        transport = httpx.AsyncHTTPTransport(local_address=local_address, retries=1) if local_address else None
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport,
                                      limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

    async def send(
        self, method: str, path: str, *, token: str | None, client_address: str | None, lang: str,
        json: Any = None, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request through the gateway, carrying the request id, trace context and the browser's address."""
        sent = {"Accept": "application/json", "Accept-Language": lang}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if client_address:
            sent["X-Forwarded-For"] = client_address
        request_id, traceparent = current_request_id(), current_traceparent()
        if request_id:
            sent["X-Request-ID"] = request_id
        if traceparent:
            sent["traceparent"] = traceparent
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "", [])}
        return await self.http.request(method, path, json=json, params=clean, headers={**sent, **(headers or {})})


class Refresher:
    """Renews one session's tokens at a time per session (in this process)."""

    def __init__(self, rp: RelyingParty, store: SessionStore, margin_seconds: int) -> None:
        self.rp = rp
        self.store = store
        self.margin = timedelta(seconds=margin_seconds)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    def due(self, session: Session) -> bool:
        """Whether the access token is expired or about to be."""
        return now_utc() + self.margin >= session.tokens.access_expires_at

    async def refresh(self, session: Session, *, stale_token: str) -> None:
        """New tokens for the session (unless another request already renewed them); SignInRequired on refusal."""
        async with self._lock(session.key):
            await self.store.reload_tokens(session)
            if session.tokens.access_token != stale_token and not self.due(session):
                return  # renewed meanwhile
            previous = session.tokens
            if not previous.refresh_token:
                raise SignInRequired()
            try:
                answer = await self.rp.refresh(previous.refresh_token)
            except RefreshRefused as exc:
                # Another replica may have spent the refresh token a moment ago: use what it stored.
                if await self.store.reload_tokens(session) and session.tokens.refresh_token != previous.refresh_token:
                    return
                log.info("refresh refused (%s): the session ends", exc)
                await self.store.end(session.key)
                raise SignInRequired() from exc
            except httpx.HTTPError as exc:
                raise ApiProblem(503, "identity_provider_unavailable", str(exc)) from exc
            tokens = Tokens.from_response(answer, now_utc(), previous)
            try:
                fresh = person_of(tokens.access_token)
            except (ApiError, ValueError, KeyError, IndexError) as exc:
                await self.store.end(session.key)  # the account lost what its role needs
                raise SignInRequired() from exc
            fresh.name, fresh.email = fresh.name or session.person.name, fresh.email or session.person.email
            session.person = fresh
            if not await self.store.replace_tokens(session, tokens, expected_refresh=previous.refresh_token):
                await self.store.reload_tokens(session)


class Api:
    """The public API as one request of one person (or of nobody) sees it."""

    def __init__(self, gateway: Gateway, refresher: Refresher | None, session: Session | None, *,
                 client_address: str | None, lang: str) -> None:
        self.gateway = gateway
        self.refresher = refresher
        self.session = session
        self.client_address = client_address
        self.lang = lang

    async def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None, anonymous: bool = False) -> Answer:
        """The answer, or ApiProblem for an error status; SignInRequired when the session cannot be renewed."""
        session = None if anonymous else self.session
        if session is not None and self.refresher is not None and self.refresher.due(session):
            await self.refresher.refresh(session, stale_token=session.tokens.access_token)
        response = await self._send(method, path, session, json, params, headers)
        if response.status_code == 401 and session is not None and self.refresher is not None:
            await self.refresher.refresh(session, stale_token=session.tokens.access_token)
            response = await self._send(method, path, session, json, params, headers)
            if response.status_code == 401:
                raise SignInRequired()
        if response.status_code >= 400:
            raise ApiProblem.of(response)
        data = response.json() if response.content and "json" in response.headers.get("content-type", "") else None
        return Answer(response.status_code, data, response.headers.get("etag"))

    async def _send(self, method: str, path: str, session: Session | None, json: Any,
                    params: dict[str, Any] | None, headers: dict[str, str] | None) -> httpx.Response:
        try:
            return await self.gateway.send(
                method, path, token=session.tokens.access_token if session else None,
                client_address=self.client_address, lang=self.lang, json=json, params=params, headers=headers,
            )
        except httpx.HTTPError as exc:
            log.warning("gateway call %s %s failed: %s", method, path, exc)
            raise ApiProblem(503, "service_unavailable", "the platform could not be reached") from exc

    async def get(self, path: str, **params: Any) -> Any:
        """GET a JSON body."""
        return (await self.call("GET", path, params=params)).data

    async def get_public(self, path: str, **params: Any) -> Any:
        """GET a public resource without the person's token (cacheable, and no refresh needed)."""
        return (await self.call("GET", path, params=params, anonymous=True)).data
