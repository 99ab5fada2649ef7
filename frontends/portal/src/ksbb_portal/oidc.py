"""The portal as an OpenID Connect relying party (confidential client), done on the server with Authlib.

Authorisation code flow with PKCE (S256), a nonce checked in the ID token, refresh, and sign-out both
back-channel (the refresh token is ended at the provider) and RP-initiated (the browser visits the
provider's end-session endpoint with the ID token as hint, so the provider's own cookie goes too).
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from joserfc import jwt
from joserfc.errors import JoseError
from ksbb_kit.auth import DEFAULT_ALGORITHMS, JwksKeys, principal_from_claims

from ksbb_portal.sessions import Person

log = logging.getLogger(__name__)


class SignInFailed(Exception):
    """The provider refused the code, or its answer did not pass the checks (kept out of the user's view)."""

    def __init__(self, reason: str, *, error: str | None = None) -> None:
        super().__init__(reason)
        self.error = error


class RefreshRefused(Exception):
    """The provider no longer renews this session's tokens (session ended, account disabled, token reused)."""


class RelyingParty:
    """One OpenID Connect provider and the portal's confidential client at it."""

    def __init__(
        self, issuer: str, client_id: str, client_secret: str, *, scope: str = "openid",
        discovery_url: str | None = None, timeout: float = 10.0,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.scope = scope
        self._secret = client_secret
        self.discovery_url = discovery_url or issuer.rstrip("/") + "/.well-known/openid-configuration"
        self._http = httpx.AsyncClient(timeout=timeout)
        self._client = AsyncOAuth2Client(
            client_id=client_id, client_secret=client_secret, token_endpoint_auth_method="client_secret_basic",
            code_challenge_method="S256", scope=scope, timeout=timeout,
        )
        self._document: dict[str, Any] | None = None
        self._keys = JwksKeys(self._jwks_uri, http=self._http)

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        await self._client.aclose()
        await self._http.aclose()

    async def document(self, refresh: bool = False) -> dict[str, Any]:
        """The provider's discovery document; its issuer must be the configured one."""
        if self._document is None or refresh:
            response = await self._http.get(self.discovery_url)
            response.raise_for_status()
            document = response.json()
            if not isinstance(document, dict) or document.get("issuer") != self.issuer:
                raise SignInFailed(f"{self.discovery_url} names issuer {document.get('issuer')!r}, not {self.issuer!r}")
            self._document = document
        return self._document

    async def _jwks_uri(self, refresh: bool) -> str:
        return str((await self.document(refresh))["jwks_uri"])

    async def endpoint(self, name: str) -> str:
        """An endpoint the discovery document names."""
        value = (await self.document()).get(name)
        if not isinstance(value, str):
            raise SignInFailed(f"the provider publishes no {name}")
        return value

    async def authorization_url(
        self, redirect_uri: str, *, state: str, nonce: str, code_verifier: str, lang: str, sign_up: bool = False
    ) -> str:
        """Where the browser goes to sign in (or to create an account: Keycloak's registration page)."""
        url, _ = self._client.create_authorization_url(
            await self.endpoint("authorization_endpoint"), state=state, code_verifier=code_verifier, nonce=nonce,
            redirect_uri=redirect_uri, ui_locales=lang, scope=self.scope,
        )
        if sign_up:
            # Keycloak serves its sign-up form beside the authorisation endpoint, with the same parameters.
            url = url.replace("/protocol/openid-connect/auth?", "/protocol/openid-connect/registrations?", 1)
        return str(url)

    async def exchange(
        self, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Tokens for an authorisation code and the claims of its ID token, verified (signature, issuer,
        audience, expiry, nonce)."""
        try:
            token = await self._client.fetch_token(
                await self.endpoint("token_endpoint"), grant_type="authorization_code", code=code,
                redirect_uri=redirect_uri, code_verifier=code_verifier,
            )
        except OAuthError as exc:
            raise SignInFailed(f"the provider refused the code: {exc.description or exc.error}",
                               error=exc.error) from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInFailed(f"the token endpoint failed: {exc}") from exc
        answer = dict(token)
        if not answer.get("access_token") or not answer.get("id_token"):
            raise SignInFailed("the provider's answer has no access token or no ID token")
        return answer, await self.verify_id_token(str(answer["id_token"]), nonce)

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of a valid ID token issued to this client for this sign-in (OIDC Core 3.1.3.7)."""
        keys = await self._keys.keys()
        for attempt in range(2):
            try:
                decoded = jwt.decode(id_token, keys, algorithms=list(DEFAULT_ALGORITHMS))
                break
            except JoseError as exc:
                newer = await self._keys.refetch(keys) if attempt == 0 else None
                if newer is None:
                    raise SignInFailed(f"ID token signature not valid: {exc.error}") from exc
                keys = newer
        claims = decoded.claims
        try:
            jwt.JWTClaimsRegistry(
                leeway=30, iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id}, exp={"essential": True},
                sub={"essential": True}, nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except JoseError as exc:
            raise SignInFailed(f"ID token refused: {exc.error} {getattr(exc, 'description', '') or ''}") from exc
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.client_id:
            raise SignInFailed("ID token for several audiences without this client as azp")
        return dict(claims)

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        """New tokens; RefreshRefused when the provider says no (invalid_grant and friends)."""
        try:
            token = await self._client.refresh_token(await self.endpoint("token_endpoint"),
                                                     refresh_token=refresh_token)
        except OAuthError as exc:
            raise RefreshRefused(exc.error or "refused") from exc
        return dict(token)

    async def logout_back_channel(self, refresh_token: str | None) -> bool:
        """End the provider's session of these tokens server-side (Keycloak's logout with a refresh token)."""
        if not refresh_token:
            return False
        try:
            url = await self.endpoint("end_session_endpoint")
            response = await self._http.post(url, data={"refresh_token": refresh_token},
                                             auth=(self.client_id, self._secret))
        except (httpx.HTTPError, SignInFailed) as exc:
            log.warning("back-channel logout failed: %s", exc)
            return False
        if response.status_code >= 400:
            log.info("back-channel logout answered %s", response.status_code)
        return response.status_code < 400

    async def end_session_url(self, post_logout_redirect_uri: str) -> str:
        """Where the browser goes so the provider drops its own cookies too (RP-initiated logout).

        No `id_token_hint`: tokens never reach the browser, not even in an address. The provider's session
        was already ended back-channel, so there is nothing left for it to ask about.
        """
        query = {"post_logout_redirect_uri": post_logout_redirect_uri, "client_id": self.client_id}
        return f"{await self.endpoint('end_session_endpoint')}?{urlencode(query)}"


def person_of(access_token: str, id_claims: dict[str, Any] | None = None) -> Person:
    """Who an access token speaks for, by the services' own role rule (raises the kit's ApiError 403 when the
    account lacks what its role needs). The token came straight from the token endpoint over the back channel,
    so it is read, not verified again; the services verify it on every call."""
    part = access_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    principal = principal_from_claims(claims)
    names = id_claims or {}
    return Person(
        subject=principal.subject, role=principal.role.value,
        name=names.get("name") or principal.name or names.get("preferred_username"),
        email=names.get("email") or principal.email, org_id=principal.org_id, recipient_id=principal.recipient_id,
    )
