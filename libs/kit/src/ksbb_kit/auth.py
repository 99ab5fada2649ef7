"""Bearer-JWT authentication: OpenID Connect discovery, cached JWKS with key rotation, roles, route dependencies.

Services trust the issuer configured in `KSBB_OIDC_ISSUER` (Keycloak's realm URL in every deployment): its
discovery document names the JWKS, whose keys are cached and fetched again when a token names a key the cache
does not hold (at most once per `min_refetch_seconds`, so forged key ids cannot make the service hammer the
provider). The local development issuer (`DevIssuer`, a JWKS file) is trusted only when a setting says so
explicitly (`KSBB_DEV_ISSUER_ENABLED`, set by the test plugin and `make run`'s demo seed; refused in production).

Role rule (see docs/identity.md): the KSBB roles a token carries are collected from `realm_access.roles`
(Keycloak), `roles` (a list) and `role` (one string, the development issuer); the caller acts in the highest
of them, admin > facilitator > recipient > donor. A role is never silently downgraded: a facilitator token
without `org_id` (or a recipient token without `recipient_id`) is refused with 403, not treated as a donor.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
from fastapi import Depends, Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from pydantic import BaseModel

from ksbb_kit.errors import ApiError

if TYPE_CHECKING:
    from ksbb_kit.settings import KitSettings

log = logging.getLogger(__name__)

#: Signature algorithms a verifier accepts unless configured otherwise (Keycloak signs RS256 by default).
DEFAULT_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256")
#: Asymmetric algorithms only: an HMAC algorithm would let anyone holding the public key forge tokens.
SUPPORTED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
#: Kept for callers of the first kit version.
ALGORITHMS = list(DEFAULT_ALGORITHMS)
#: `typ` claims of tokens that are not access tokens (Keycloak marks ID and refresh tokens so).
ACCESS_TOKEN_TYPES = frozenset({"Bearer", "at+jwt"})
#: How many verified tokens a verifier remembers (a few MB at most; a client sends its token with every request).
VERIFIED_TOKENS_KEPT = 4096


class Role(StrEnum):
    """Roles a token may carry."""

    ADMIN = "admin"
    FACILITATOR = "facilitator"
    RECIPIENT = "recipient"
    DONOR = "donor"


#: Highest first: a caller holding several KSBB roles acts in the first of them it holds.
ROLE_PRECEDENCE: tuple[Role, ...] = (Role.ADMIN, Role.FACILITATOR, Role.RECIPIENT, Role.DONOR)
#: The claim each role needs to mean anything (whose organisation, which recipient unit).
REQUIRED_CLAIM: dict[Role, str] = {Role.FACILITATOR: "org_id", Role.RECIPIENT: "recipient_id"}


class Principal(BaseModel):
    """The authenticated caller."""

    subject: str
    role: Role
    org_id: str | None = None
    recipient_id: str | None = None
    name: str | None = None
    email: str | None = None
    roles: frozenset[Role] = frozenset()
    client_id: str | None = None
    issuer: str | None = None

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


def token_roles(claims: Mapping[str, Any]) -> frozenset[Role]:
    """Every KSBB role a token's claims name (other roles, e.g. Keycloak's `offline_access`, are ignored)."""
    names: set[str] = set()
    single = claims.get("role")
    if isinstance(single, str):
        names.add(single)
    for listed in (claims.get("roles"), (claims.get("realm_access") or {}).get("roles")):
        if isinstance(listed, list):
            names.update(name for name in listed if isinstance(name, str))
    return frozenset(Role(name) for name in names if name in Role._value2member_map_)


def effective_role(roles: Iterable[Role]) -> Role | None:
    """The role a caller acts in: the highest it holds (admin > facilitator > recipient > donor)."""
    held = set(roles)
    return next((role for role in ROLE_PRECEDENCE if role in held), None)


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """Map verified claims to a Principal; 403 when the token has no KSBB role or lacks what its role needs."""
    roles = token_roles(claims)
    role = effective_role(roles)
    if role is None:
        raise ApiError(403, "no_role", "this account has no KSBB role (admin, facilitator, recipient or donor)")
    needed = REQUIRED_CLAIM.get(role)
    if needed and not _text(claims.get(needed)):
        # Never fall back to a lower role: staff without an organisation must not quietly act as a donor.
        raise ApiError(
            403, "account_incomplete",
            f"the account has role {role.value} but no {needed}; an administrator must link it first "
            f"(akun berperan {role.value} tetapi belum memiliki {needed}; minta administrator menautkannya)",
            field=needed,
        )
    return Principal(
        subject=claims["sub"], role=role, roles=roles, org_id=_text(claims.get("org_id")),
        recipient_id=_text(claims.get("recipient_id")), name=_text(claims.get("name"))
        or _text(claims.get("preferred_username")), email=_text(claims.get("email")),
        client_id=_text(claims.get("azp")), issuer=_text(claims.get("iss")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# ------------------------------------------------------------------------------------------ key sources


class JwksKeys:
    """Signing keys published as a JWKS (URL or file), cached and refetched on demand, rate-limited.

    `locate` yields the JWKS location; for OpenID Connect it reads the provider's discovery document first.
    """

    def __init__(
        self, locate: str | Callable[[bool], Any], *, cache_seconds: float = 300, min_refetch_seconds: float = 10,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._locate = locate
        self._cache_seconds = cache_seconds
        self._min_refetch = min_refetch_seconds
        self._http = http
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self.fetches = 0

    def _guard(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def keys(self) -> KeySet:
        """The cached key set, fetched when missing or older than `cache_seconds`."""
        if self._keys is None or time.monotonic() - self._fetched_at > self._cache_seconds:
            async with self._guard():
                if self._keys is None or time.monotonic() - self._fetched_at > self._cache_seconds:
                    await self._fetch(rediscover=False)
        assert self._keys is not None
        return self._keys

    async def refetch(self, seen: KeySet) -> KeySet | None:
        """A newer key set after `seen` failed (unknown kid, bad signature); None while rate-limited."""
        async with self._guard():
            if self._keys is not seen:
                return self._keys  # another request refetched while this one waited
            if time.monotonic() - self._fetched_at < self._min_refetch:
                return None
            await self._fetch(rediscover=True)
            return self._keys

    async def _fetch(self, *, rediscover: bool) -> None:
        self._fetched_at = time.monotonic()  # a failing provider is not asked again at once either
        location = self._locate if isinstance(self._locate, str) else await self._locate(rediscover)
        self.fetches += 1
        data = await read_json(location, self._http)
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ValueError(f"{location} is not a JWKS document")
        # Encryption keys (Keycloak publishes RSA-OAEP ones) never verify signatures.
        signing = [key for key in data["keys"] if isinstance(key, dict) and key.get("use", "sig") == "sig"]
        self._keys = KeySet.import_key_set({"keys": signing})


class OidcDiscovery:
    """An OpenID Connect provider's discovery document: where its JWKS is (and its token endpoints)."""

    def __init__(self, issuer: str, *, http: httpx.AsyncClient | None = None) -> None:
        self.issuer = issuer
        self._http = http
        self._document: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        """The discovery document's address."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    async def document(self, refresh: bool = False) -> dict[str, Any]:
        """The discovery document; its `issuer` must equal the configured one exactly (OIDC Discovery §4.3)."""
        if self._document is None or refresh:
            document = await read_json(self.url, self._http)
            if not isinstance(document, dict) or document.get("issuer") != self.issuer:
                found = document.get("issuer") if isinstance(document, dict) else None
                raise ValueError(f"discovery document at {self.url} names issuer {found!r}, expected {self.issuer!r}")
            if not isinstance(document.get("jwks_uri"), str):
                raise ValueError(f"discovery document at {self.url} has no jwks_uri")
            self._document = document
        return self._document

    async def jwks_uri(self, refresh: bool = False) -> str:
        """The provider's JWKS address."""
        return str((await self.document(refresh))["jwks_uri"])


async def read_json(location: str, http: httpx.AsyncClient | None = None) -> Any:
    """A JSON document from an http(s) URL or a file path (`file://` accepted)."""
    if location.startswith(("http://", "https://")):
        if http is not None:
            response = await http.get(location)
        else:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(location)
        response.raise_for_status()
        return response.json()
    return json.loads(await asyncio.to_thread(Path(location.removeprefix("file://")).read_text))


@dataclass(frozen=True)
class TrustedIssuer:
    """An issuer whose tokens are accepted, with the keys that verify them."""

    issuer: str
    keys: JwksKeys


def discovered_issuer(
    issuer: str, *, cache_seconds: float = 300, min_refetch_seconds: float = 10, http: httpx.AsyncClient | None = None
) -> TrustedIssuer:
    """Trust an OpenID Connect provider: keys from the JWKS its discovery document names."""
    discovery = OidcDiscovery(issuer, http=http)
    return TrustedIssuer(issuer, JwksKeys(
        discovery.jwks_uri, cache_seconds=cache_seconds, min_refetch_seconds=min_refetch_seconds, http=http,
    ))


# ------------------------------------------------------------------------------------------ verifier


@dataclass(frozen=True)
class _Verified:
    """A token whose signature and claims passed, its issuer and the key that verified it."""

    trusted: TrustedIssuer
    header: dict[str, Any]
    key: Any
    claims: dict[str, Any]


class VerifiedTokens:
    """The tokens a verifier accepted lately, so a client's next request with the same token skips the signature
    check (an ES256/RS256 verification costs about half a millisecond of CPU, more than the rest of a small
    request). A remembered token counts as signed only while its issuer still publishes the very key that verified
    it: a rotated or withdrawn key sends it through the full check again. Its claims (expiry first) are checked on
    every request all the same."""

    def __init__(self, kept: int = VERIFIED_TOKENS_KEPT) -> None:
        self._kept = kept
        self._entries: OrderedDict[str, _Verified] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def recall(self, token: str) -> _Verified | None:
        """A token accepted before whose key its issuer still publishes; None otherwise."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        try:
            current = _signing_key(await entry.trusted.keys.keys(), entry.header)
        except Exception:  # the keys cannot be read now: the full check says what that means for the caller
            current = None
        if current is not entry.key and current is not None and _public(current) == _public(entry.key):
            entry = self._entries[token] = replace(entry, key=current)  # the same key, fetched again
        if current is not entry.key:
            self.forget(token)
            return None
        self._entries.move_to_end(token)
        return entry

    def remember(self, token: str, entry: _Verified) -> None:
        """Keep an accepted token, forgetting the least recently used one beyond the limit."""
        self._entries[token] = entry
        self._entries.move_to_end(token)
        while len(self._entries) > self._kept:
            self._entries.popitem(last=False)

    def forget(self, token: str) -> None:
        """No longer remember a token (its key went, or its claims no longer pass)."""
        self._entries.pop(token, None)


class TokenVerifier:
    """Validates signature, algorithm, issuer, audience, expiry and token type, and maps claims to a Principal.

    `TokenVerifier(issuer="https://…/realms/ksbb", audience="ksbb")` follows the issuer's discovery document;
    `TokenVerifier("<jwks url or file>", issuer=…, audience=…)` uses a fixed JWKS location instead.
    """

    def __init__(
        self, jwks_source: str | None = None, *, issuer: str | None = None, audience: str,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS, also_trust: Sequence[TrustedIssuer] = (),
        leeway_seconds: int = 5, cache_seconds: float = 300, min_refetch_seconds: float = 10,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        unsupported = sorted(set(algorithms) - SUPPORTED_ALGORITHMS)
        if unsupported or not algorithms:
            raise ValueError(f"token algorithms {unsupported or '[]'} not allowed; choose from "
                             f"{sorted(SUPPORTED_ALGORITHMS)}")
        trusted = list(also_trust)
        if issuer is not None:
            if jwks_source:
                keys = JwksKeys(jwks_source, cache_seconds=cache_seconds, min_refetch_seconds=min_refetch_seconds,
                                http=http)
                trusted.insert(0, TrustedIssuer(issuer, keys))
            else:
                trusted.insert(0, discovered_issuer(issuer, cache_seconds=cache_seconds,
                                                    min_refetch_seconds=min_refetch_seconds, http=http))
        if not trusted:
            raise ValueError("a token verifier needs at least one trusted issuer")
        self._issuers = {entry.issuer: entry for entry in trusted}
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self._leeway = leeway_seconds
        self.verified = VerifiedTokens()

    @classmethod
    def from_settings(cls, settings: KitSettings, *, http: httpx.AsyncClient | None = None) -> TokenVerifier:
        """The verifier a service's settings describe (see `KitSettings.trusted_token_issuers`)."""
        options = {"cache_seconds": settings.jwks_cache_seconds,
                   "min_refetch_seconds": settings.jwks_min_refetch_seconds, "http": http}
        trusted: list[TrustedIssuer] = []
        if settings.oidc_issuer:
            trusted.append(discovered_issuer(settings.oidc_issuer, **options))  # type: ignore[arg-type]
        if settings.static_issuer_trusted:
            trusted.append(TrustedIssuer(settings.jwt_issuer, JwksKeys(settings.jwks_url, **options)))  # type: ignore[arg-type]
        if not trusted:
            raise ValueError(
                "no token issuer configured: set KSBB_OIDC_ISSUER to the identity provider's issuer URL "
                "(e.g. http://127.0.0.1:8180/realms/ksbb, written by deploy/local/infra), or - development and "
                "tests only - KSBB_DEV_ISSUER_ENABLED=true to trust the local development issuer"
            )
        return cls(audience=settings.jwt_audience, algorithms=settings.jwt_algorithms, also_trust=trusted)

    @property
    def issuers(self) -> list[str]:
        """The issuers this verifier trusts."""
        return list(self._issuers)

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; 401 for an invalid token, 403 for a valid one without a usable role."""
        return principal_from_claims(await self.claims(token))

    async def claims(self, token: str) -> dict[str, Any]:
        """The claims of a valid access token from a trusted issuer for our audience; raises ApiError(401)."""
        remembered = await self.verified.recall(token)
        if remembered is not None:
            try:
                self._check_claims(remembered.claims, remembered.trusted)
            except ApiError:
                self.verified.forget(token)
                raise
            return dict(remembered.claims)
        header, unverified = _peek(token)
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise _invalid(f"signature algorithm {algorithm!r} is not allowed (allowed: {', '.join(self.algorithms)})")
        issuer = unverified.get("iss")
        trusted = self._issuers.get(issuer) if isinstance(issuer, str) else None
        if trusted is None:
            raise _invalid(f"token issuer {issuer!r} is not trusted")
        try:
            decoded, key = await self._decode(token, header, trusted)
        except ApiError:
            raise
        except (httpx.HTTPError, OSError, ValueError) as exc:
            log.warning("could not load the signing keys of %s: %s", trusted.issuer, exc)
            raise ApiError(503, "identity_provider_unavailable",
                           "the identity provider's signing keys could not be loaded; try again shortly",
                           headers={"Retry-After": "5"}) from exc
        claims = dict(decoded.claims)
        self._check_claims(claims, trusted)
        self.verified.remember(token, _Verified(trusted, header, key, claims))
        return dict(claims)

    def _check_claims(self, claims: dict[str, Any], trusted: TrustedIssuer) -> None:
        """Issuer, audience, expiry, not-before, subject and token type; raises ApiError(401)."""
        try:
            jwt.JWTClaimsRegistry(
                leeway=self._leeway,
                iss={"essential": True, "value": trusted.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(claims)
        except JoseError as exc:
            raise _invalid(_describe(exc)) from exc
        kind = claims.get("typ")
        if kind is not None and kind not in ACCESS_TOKEN_TYPES:
            raise _invalid(f"a {kind!r} token is not an access token")

    async def _decode(self, token: str, header: dict[str, Any], trusted: TrustedIssuer) -> tuple[Any, Any]:
        """The decoded token and the key that verified it (the keys are fetched again once if none does)."""
        keys = await trusted.keys.keys()
        for attempt in range(2):
            key = _signing_key(keys, header)
            if key is not None:
                try:
                    return jwt.decode(token, key, algorithms=[header["alg"]]), key
                except JoseError as exc:
                    failure = f"signature not valid ({_describe(exc)})"
            else:
                failure = f"no signing key {header.get('kid')!r} published by {trusted.issuer}"
            if attempt == 0:
                # The provider may have rotated its keys since they were cached (a new kid, or new key material
                # under a reused kid): look once more, unless a fetch just happened.
                newer = await trusted.keys.refetch(keys)
                if newer is None:
                    break
                keys = newer
        raise _invalid(failure)


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before verification (only to choose the issuer and key; nothing is trusted yet)."""
    try:
        encoded_header, encoded_claims, _signature = token.split(".")
        header = json.loads(_b64(encoded_header))
        claims = json.loads(_b64(encoded_claims))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid("malformed token") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _invalid("malformed token")
    return header, claims


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _signing_key(keys: KeySet, header: Mapping[str, Any]) -> Any:
    kid, algorithm = header.get("kid"), header.get("alg")
    candidates = [key for key in keys if kid is None or key.kid == kid]
    if kid is None and len(candidates) != 1:
        return None  # without a kid only an unambiguous single key is used
    usable = [key for key in candidates if key.get("alg") in (None, algorithm)]
    return usable[0] if usable else None


def _public(key: Any) -> dict[str, Any]:
    """A key's public parameters, to tell the same key fetched again from a different one."""
    return dict(key.as_dict(private=False))


def _describe(exc: JoseError) -> str:
    return f"{exc.error}: {exc.description}" if getattr(exc, "description", None) else str(exc.error)


def _invalid(reason: str) -> ApiError:
    return ApiError(401, "invalid_token", f"bearer token rejected: {reason}",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


# ---------------------------------------------------------------------------------------- dependencies


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
        raise ApiError(401, "unauthenticated", "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
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


# --------------------------------------------------------------------------------- development issuer


class DevIssuer:
    """A local token issuer for development and tests: real signatures, real JWKS.

    Services trust it only with `KSBB_DEV_ISSUER_ENABLED=true` (never in production).
    """

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
