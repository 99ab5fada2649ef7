"""Bearer-JWT authentication: verification against a JWKS, roles, route dependencies, dev issuer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from pydantic import BaseModel

from ksbb_kit.errors import ApiError

ALGORITHMS = ["ES256", "RS256"]


class Role(StrEnum):
    """Roles a token may carry."""

    ADMIN = "admin"
    FACILITATOR = "facilitator"
    RECIPIENT = "recipient"
    DONOR = "donor"


class Principal(BaseModel):
    """The authenticated caller."""

    subject: str
    role: Role
    org_id: str | None = None
    recipient_id: str | None = None
    name: str | None = None

    @property
    def is_admin(self) -> bool:
        """Whether the caller is a programme administrator."""
        return self.role is Role.ADMIN

    def is_facilitator_of(self, org_id: str | None) -> bool:
        """Whether the caller is staff of this facilitator organisation."""
        return self.role is Role.FACILITATOR and org_id is not None and self.org_id == org_id

    def is_recipient(self, recipient_id: str | None) -> bool:
        """Whether the caller is this recipient's own account."""
        return self.role is Role.RECIPIENT and recipient_id is not None and self.recipient_id == recipient_id


class TokenVerifier:
    """Validates signature (JWKS), issuer, audience and expiry, and maps claims to a Principal."""

    def __init__(self, jwks_source: str, *, issuer: str, audience: str, refresh_seconds: float = 300) -> None:
        self._source = jwks_source
        self._issuer = issuer
        self._audience = audience
        self._refresh = refresh_seconds
        self._keys: KeySet | None = None
        self._loaded_at = 0.0

    async def _key_set(self, force: bool = False) -> KeySet:
        if force or self._keys is None or time.monotonic() - self._loaded_at > self._refresh:
            if self._source.startswith(("http://", "https://")):
                async with httpx.AsyncClient(timeout=5) as client:
                    response = await client.get(self._source)
                    response.raise_for_status()
                    data = response.json()
            else:
                data = json.loads(await asyncio.to_thread(Path(self._source.removeprefix("file://")).read_text))
            self._keys = KeySet.import_key_set(data)
            self._loaded_at = time.monotonic()
        return self._keys

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises ApiError(401) otherwise."""
        try:
            try:
                decoded = jwt.decode(token, await self._key_set(), algorithms=ALGORITHMS)
            except JoseError:
                decoded = jwt.decode(token, await self._key_set(force=True), algorithms=ALGORITHMS)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self._issuer},
                aud={"essential": True, "value": self._audience},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(decoded.claims)
            claims = decoded.claims
            principal = Principal(
                subject=claims["sub"], role=claims["role"], org_id=claims.get("org_id"),
                recipient_id=claims.get("recipient_id"), name=claims.get("name"),
            )
        except (JoseError, ValueError, KeyError) as exc:
            raise ApiError(401, "invalid_token", f"bearer token rejected: {exc}") from exc
        if principal.role is Role.FACILITATOR and not principal.org_id:
            raise ApiError(401, "invalid_token", "facilitator token without org_id")
        if principal.role is Role.RECIPIENT and not principal.recipient_id:
            raise ApiError(401, "invalid_token", "recipient token without recipient_id")
        return principal


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def optional_principal(request: Request) -> Principal | None:
    """The caller if a bearer token was sent (and is valid), else None."""
    token = _bearer(request)
    if token is None:
        return None
    verifier: TokenVerifier = request.app.state.token_verifier
    return await verifier.verify(token)


async def current_principal(request: Request) -> Principal:
    """The caller; 401 without a valid bearer token."""
    principal = await optional_principal(request)
    if principal is None:
        raise ApiError(401, "unauthenticated", "a bearer token is required")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


def require_roles(*roles: Role) -> Callable[..., Any]:
    """A dependency admitting only the given roles (403 otherwise)."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise ApiError(403, "forbidden", f"role {principal.role.value} may not do this")
        return principal

    return dependency


class DevIssuer:
    """A local token issuer for development and tests: real signatures, real JWKS."""

    def __init__(self, directory: Path, *, issuer: str = "ksbb-dev-issuer", audience: str = "ksbb") -> None:
        self.directory = directory
        self.issuer = issuer
        self.audience = audience
        key_file = directory / "private.jwk.json"
        if key_file.exists():
            self._key = ECKey.import_key(json.loads(key_file.read_text()))
        else:
            directory.mkdir(parents=True, exist_ok=True)
            kid = f"dev-{int(time.time())}"
            self._key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": "ES256"})
            key_file.write_text(json.dumps(self._key.as_dict(private=True)))
            key_file.chmod(0o600)
        self.jwks_path.write_text(json.dumps({"keys": [self._key.as_dict(private=False)]}))

    @property
    def jwks_path(self) -> Path:
        """Where the public JWKS is published for the services."""
        return self.directory / "jwks.json"

    def token(
        self, role: Role | str, *, subject: str | None = None, org_id: str | None = None,
        recipient_id: str | None = None, name: str | None = None, ttl_seconds: int = 3600,
        audience: str | None = None, issuer: str | None = None,
    ) -> str:
        """A signed token for a role."""
        role = Role(role)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer or self.issuer, "aud": audience or self.audience, "iat": now, "exp": now + ttl_seconds,
            "sub": subject or f"{role.value}-{org_id or recipient_id or 'user'}", "role": role.value,
        }
        for claim, value in (("org_id", org_id), ("recipient_id", recipient_id), ("name", name)):
            if value is not None:
                claims[claim] = value
        return jwt.encode({"alg": "ES256", "kid": self._key.kid}, claims, self._key)
