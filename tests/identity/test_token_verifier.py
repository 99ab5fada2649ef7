"""The kit's token verifier against a real OIDC server (mock-oauth2-server): discovery, JWKS cache, key rotation,
issuer / audience / expiry / algorithm checks, the role rule."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey
from ksbb_kit.auth import Role, TokenVerifier
from ksbb_kit.errors import ApiError

pytestmark = pytest.mark.integration

ROLES = {"realm_access": {"roles": ["donor", "offline_access", "uma_authorization"]}}


def mappings() -> list[dict[str, Any]]:
    """Client id -> claims of the minted token (the server's request mappings)."""
    cases: dict[str, dict[str, Any]] = {
        "donor": {"sub": "user-donor", "aud": ["ksbb", "account"], **ROLES, "email": "donatur@ksbb.example"},
        "string-aud": {"sub": "user-1", "aud": "ksbb", **ROLES},
        "other-aud": {"sub": "user-2", "aud": ["account", "ksbb-portal"], **ROLES},
        "expired": {"sub": "user-3", "aud": "ksbb", **ROLES, "iat": 1_600_000_000, "exp": 1_600_000_300},
        "not-yet": {"sub": "user-4", "aud": "ksbb", **ROLES, "nbf": 4_102_444_800},
        "staff-and-donor": {"sub": "user-5", "aud": "ksbb", "org_id": "org_a",
                            "realm_access": {"roles": ["donor", "facilitator", "offline_access"]}},
        "staff-without-org": {"sub": "user-6", "aud": "ksbb",
                              "realm_access": {"roles": ["donor", "facilitator"]}},
        "recipient-without-unit": {"sub": "user-7", "aud": "ksbb", "realm_access": {"roles": ["recipient"]}},
        "admin-and-donor": {"sub": "user-8", "aud": "ksbb", "realm_access": {"roles": ["donor", "admin"]}},
        "no-role": {"sub": "user-9", "aud": "ksbb", "realm_access": {"roles": ["offline_access"]}},
        "id-token-type": {"sub": "user-10", "aud": "ksbb", "typ": "ID", **ROLES},
    }
    return [{"requestParam": "client_id", "match": client, "claims": claims} for client, claims in cases.items()]


def config(key: RSAKey | None = None) -> dict[str, Any]:
    """A mock-oauth2-server configuration: issuers `ksbb` and `evil`, optionally a given signing key."""
    provider: dict[str, Any] = {}
    if key is not None:
        provider["keyProvider"] = {"initialKeys": json.dumps(key.as_dict(private=True)), "algorithm": "RS256"}
    result: dict[str, Any] = {
        "interactiveLogin": False,
        "httpServer": "NettyWrapper",
        "tokenCallbacks": [
            {"issuerId": "ksbb", "tokenExpiry": 300, "requestMappings": mappings()},
            {"issuerId": "evil", "tokenExpiry": 300, "requestMappings": mappings()},
        ],
    }
    if provider:
        result["tokenProvider"] = provider
    return result


class CountingHttp:
    """An httpx client that counts the requests the verifier makes (discovery and JWKS fetches)."""

    def __init__(self) -> None:
        self.urls: list[str] = []

        async def record(request: httpx.Request) -> None:
            self.urls.append(str(request.url))

        self.client = httpx.AsyncClient(timeout=5, event_hooks={"request": [record]})

    def jwks_fetches(self) -> int:
        """How often a JWKS document was fetched."""
        return sum(1 for url in self.urls if url.endswith("/jwks"))


async def rejected(verifier: TokenVerifier, token: str) -> ApiError:
    """The error a token is refused with."""
    with pytest.raises(ApiError) as caught:
        await verifier.verify(token)
    return caught.value


async def test_discovery_audience_issuer_expiry_and_roles(mock_oauth2_factory: Any) -> None:
    server = mock_oauth2_factory(config())
    http = CountingHttp()
    verifier = TokenVerifier(issuer=server.issuer(), audience="ksbb", http=http.client)

    donor = await verifier.verify(await server.token("donor"))  # aud is a list naming ksbb among others
    assert (donor.role, donor.subject, donor.email) == (Role.DONOR, "user-donor", "donatur@ksbb.example")
    assert donor.issuer == server.issuer() and donor.roles == {Role.DONOR}
    assert (await verifier.verify(await server.token("string-aud"))).role is Role.DONOR
    assert any(url.endswith("/ksbb/.well-known/openid-configuration") for url in http.urls)
    assert http.jwks_fetches() == 1, "the JWKS is fetched once and then served from the cache"

    wrong_audience = await rejected(verifier, await server.token("other-aud"))
    assert wrong_audience.status == 401 and "aud" in wrong_audience.body.message
    foreign = await rejected(verifier, await server.token("donor", issuer_id="evil"))
    assert foreign.status == 401 and "not trusted" in foreign.body.message
    expired = await rejected(verifier, await server.token("expired"))
    assert expired.status == 401 and "exp" in expired.body.message
    early = await rejected(verifier, await server.token("not-yet"))
    assert early.status == 401 and "not yet valid" in early.body.message
    not_access = await rejected(verifier, await server.token("id-token-type"))
    assert not_access.status == 401 and "not an access token" in not_access.body.message
    assert http.jwks_fetches() == 1, "refusing a foreign issuer's token fetches nothing"

    # The role rule: the highest KSBB role wins, a role's missing attribute is a clear 403, never a downgrade.
    staff = await verifier.verify(await server.token("staff-and-donor"))
    assert (staff.role, staff.org_id, staff.roles) == (Role.FACILITATOR, "org_a", {Role.FACILITATOR, Role.DONOR})
    assert (await verifier.verify(await server.token("admin-and-donor"))).role is Role.ADMIN
    for client, claim in (("staff-without-org", "org_id"), ("recipient-without-unit", "recipient_id")):
        incomplete = await rejected(verifier, await server.token(client))
        assert (incomplete.status, incomplete.body.code, incomplete.body.field) == (403, "account_incomplete", claim)
    nobody = await rejected(verifier, await server.token("no-role"))
    assert (nobody.status, nobody.body.code) == (403, "no_role")
    await http.client.aclose()


async def test_algorithms_outside_the_allow_list_are_refused(mock_oauth2_factory: Any) -> None:
    server = mock_oauth2_factory(config())
    token = await server.token("donor")
    es_only = TokenVerifier(issuer=server.issuer(), audience="ksbb", algorithms=["ES256"])
    refused = await rejected(es_only, token)
    assert refused.status == 401 and "'RS256' is not allowed" in refused.body.message

    verifier = TokenVerifier(issuer=server.issuer(), audience="ksbb")
    assert (await verifier.verify(token)).role is Role.DONOR
    _header, claims, _ = token.split(".")
    # alg "none" and HMAC keyed with the public key (the classic confusion attack) must not pass.
    async with httpx.AsyncClient() as client:
        jwks = (await client.get(f"{server.issuer()}/jwks")).json()
    public = json.dumps(jwks["keys"][0]).encode()
    for alg, sign in (("none", lambda _: b""), ("HS256", lambda data: hmac.new(public, data, hashlib.sha256).digest())):
        forged_header = _b64(json.dumps({"alg": alg, "kid": "ksbb", "typ": "JWT"}).encode())
        signature = _b64(sign(f"{forged_header}.{claims}".encode()))
        forged = await rejected(verifier, f"{forged_header}.{claims}.{signature}")
        assert forged.status == 401 and f"'{alg}' is not allowed" in forged.body.message
    with pytest.raises(ValueError, match="HS256"):
        TokenVerifier(issuer=server.issuer(), audience="ksbb", algorithms=["RS256", "HS256"])


async def test_rotated_keys_are_fetched_again_and_refetching_is_rate_limited(mock_oauth2_factory: Any) -> None:
    first_key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"})
    server = mock_oauth2_factory(config(first_key))
    port = server.port
    old_token = await server.token("donor")

    http = CountingHttp()
    verifier = TokenVerifier(issuer=server.issuer(), audience="ksbb", http=http.client, min_refetch_seconds=0)
    patient = CountingHttp()
    limited = TokenVerifier(issuer=server.issuer(), audience="ksbb", http=patient.client, min_refetch_seconds=3600)
    for each in (verifier, limited):
        assert (await each.verify(old_token)).subject == "user-donor"
        assert (await each.verify(old_token)).subject == "user-donor"
    assert http.jwks_fetches() == 1 and patient.jwks_fetches() == 1

    # Forged key ids make the limited verifier look again at most once per interval: here, not at all.
    _header, claims, signature = old_token.split(".")
    for index in range(20):
        bogus = _b64(json.dumps({"alg": "RS256", "kid": f"unknown-{index}", "typ": "JWT"}).encode())
        assert (await rejected(limited, f"{bogus}.{claims}.{signature}")).status == 401
    assert patient.jwks_fetches() == 1

    # Rotation: the provider restarts with a new key on the same address (this server reuses the kid).
    server.stop()
    second_key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"})
    rotated = mock_oauth2_factory(config(second_key), port=port)
    new_token = await rotated.token("donor")
    assert json.loads(base64.urlsafe_b64decode(new_token.split(".")[0] + "==")).get("kid") == "ksbb"

    assert (await verifier.verify(new_token)).subject == "user-donor", "the rotated key is accepted after a refetch"
    assert http.jwks_fetches() == 2
    stale = await rejected(verifier, old_token)
    assert stale.status == 401 and "signature" in stale.body.message, "the retired key no longer verifies"
    assert (await rejected(limited, new_token)).status == 401, "inside the interval the cached keys are all there is"
    assert patient.jwks_fetches() == 1
    await http.client.aclose()
    await patient.client.aclose()


async def test_an_unreachable_provider_is_a_503_not_a_401(mock_oauth2_factory: Any) -> None:
    server = mock_oauth2_factory(config())
    token = await server.token("donor")
    server.stop()
    verifier = TokenVerifier(issuer=server.issuer(), audience="ksbb")
    error = await rejected(verifier, token)
    assert (error.status, error.body.code) == (503, "identity_provider_unavailable")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
