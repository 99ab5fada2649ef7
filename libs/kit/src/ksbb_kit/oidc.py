"""OpenID Connect client flows against the identity provider: client credentials, device login, PKCE, refresh.

Used by `ksbb token`, the tests and (later) the portal's backend. The provider is found through its discovery
document, so any standard OIDC provider works; the realm in deploy/identity/ is Keycloak's.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict


class OidcError(Exception):
    """The provider refused a request (`error` is the OAuth error code, e.g. invalid_grant)."""

    def __init__(self, error: str, description: str | None = None, status: int | None = None) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status


class TokenSet(BaseModel):
    """A token endpoint's answer."""

    model_config = ConfigDict(extra="allow")

    access_token: str
    token_type: str = "Bearer"
    expires_in: int | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    scope: str | None = None


class DeviceAuthorization(BaseModel):
    """What a person must do to approve a device login (RFC 8628)."""

    model_config = ConfigDict(extra="allow")

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None = None
    expires_in: int
    interval: int = 5


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class OidcClient:
    """One client of one provider: discovery, then the token endpoint flows the client is allowed."""

    def __init__(
        self, issuer: str, client_id: str, client_secret: str | None = None, *, http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._secret = client_secret
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._owns_http = http is None
        self._discovery: dict[str, Any] | None = None

    async def __aenter__(self) -> OidcClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    async def discovery(self) -> dict[str, Any]:
        """The provider's discovery document (cached); its issuer must be the configured one."""
        if self._discovery is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            response = await self._http.get(url)
            response.raise_for_status()
            document = response.json()
            if document.get("issuer") != self.issuer:
                raise OidcError("invalid_issuer", f"{url} names issuer {document.get('issuer')!r}")
            self._discovery = document
        return self._discovery

    async def endpoint(self, name: str) -> str:
        """An endpoint from the discovery document, e.g. token_endpoint."""
        value = (await self.discovery()).get(name)
        if not isinstance(value, str):
            raise OidcError("unsupported", f"the provider publishes no {name}")
        return value

    async def _token(self, form: dict[str, str]) -> TokenSet:
        body = {"client_id": self.client_id, **form}
        if self._secret:
            body["client_secret"] = self._secret
        response = await self._http.post(await self.endpoint("token_endpoint"), data=body)
        if response.status_code != 200:
            raise _error(response)
        return TokenSet.model_validate(response.json())

    async def client_credentials(self, scope: str | None = None) -> TokenSet:
        """A token for the client's own service account."""
        return await self._token({"grant_type": "client_credentials", **({"scope": scope} if scope else {})})

    async def refresh(self, refresh_token: str) -> TokenSet:
        """New tokens from a refresh token (fails once the account is disabled or the session ended)."""
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def authorization_url(
        self, redirect_uri: str, *, state: str, code_challenge: str, scope: str = "openid", **extra: str
    ) -> str:
        """Where to send a browser for the authorisation-code flow with PKCE (S256)."""
        query = {
            "response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri, "scope": scope,
            "state": state, "code_challenge": code_challenge, "code_challenge_method": "S256", **extra,
        }
        return f"{await self.endpoint('authorization_endpoint')}?{urlencode(query)}"

    async def registration_url(self, redirect_uri: str, *, state: str, code_challenge: str, **extra: str) -> str:
        """Keycloak's sign-up page for the same flow (its registrations endpoint beside the authorisation one)."""
        login = await self.authorization_url(redirect_uri, state=state, code_challenge=code_challenge, **extra)
        return login.replace("/protocol/openid-connect/auth?", "/protocol/openid-connect/registrations?", 1)

    async def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        """Tokens for an authorisation code (PKCE verifier required)."""
        return await self._token({
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        })

    async def start_device_login(self, scope: str = "openid") -> DeviceAuthorization:
        """Begin a device login: the person opens `verification_uri_complete` and approves."""
        form = {"client_id": self.client_id, "scope": scope}
        if self._secret:
            form["client_secret"] = self._secret
        response = await self._http.post(await self.endpoint("device_authorization_endpoint"), data=form)
        if response.status_code != 200:
            raise _error(response)
        return DeviceAuthorization.model_validate(response.json())

    async def finish_device_login(
        self, device: DeviceAuthorization, *, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    ) -> TokenSet:
        """Poll until the person approved (or refused, or the code expired)."""
        interval = max(device.interval, 1)
        deadline = time.monotonic() + device.expires_in
        while time.monotonic() < deadline:
            try:
                return await self._token({
                    "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": device.device_code,
                })
            except OidcError as exc:
                if exc.error == "slow_down":
                    interval += 5
                elif exc.error != "authorization_pending":
                    raise
            await sleep(interval)
        raise OidcError("expired_token", "the device login was not approved in time")


def _error(response: httpx.Response) -> OidcError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return OidcError(str(body.get("error") or f"http_{response.status_code}"),
                     body.get("error_description") or response.text[:200], response.status_code)
