"""Onboarding through the registry with the real Keycloak, Mailpit and Chromium: an admin invites an
organisation's staff member, who sets a password from the e-mail and may verify only their own organisation's
recipients; the facilitator invites a verified unit's contact person; revoking disables the account (refresh
fails at once, the last access token is refused at its expiry); archiving a unit disables its accounts."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc._rfc7519 import claims as jwt_claims
from ksbb_kit.auth import Role, TokenVerifier
from ksbb_kit.errors import ApiError
from ksbb_kit.identity import KeycloakAdmin
from ksbb_kit.oidc import OidcClient, OidcError
from ksbb_kit.testing.identity import CALLBACK, IdentityInfra, Mailpit, goto, sign_in, unique_email
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.waiting import eventually

pytestmark = pytest.mark.e2e

PASSWORD = "Kolaborasi-Jakarta-2020"
KELURAHAN = ["31.71.01.1001", "31.71.01.1002", "31.71.01.1003"]
_RW = itertools.count(70)


@contextlib.asynccontextmanager
async def registry_following_keycloak(
    infra: Infra, identity: IdentityInfra, namespace: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """The registry as in production: only Keycloak's tokens, onboarding through the narrow admin client."""
    from ksbb_registry.bootstrap import create_app
    from ksbb_registry.settings import RegistrySettings

    settings = RegistrySettings(
        env="test", kafka_bootstrap=infra.kafka_bootstrap, mongodb_url=infra.mongodb_url, topic_prefix=namespace,
        topic_partitions=2, outbox_sweep_seconds=0.5, oidc_issuer=identity.issuer, dev_issuer_enabled=False,
        identity_admin_client_secret=identity.admin_client_secret, invitation_client_id="ksbb-web",
        invitation_redirect_uri=CALLBACK, sweep_interval_seconds=3600,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry", timeout=60) as client:
            await eventually(lambda: _ready(client), within=60, what="the registry is ready")
            yield client, app.state.registry  # its use cases: the disable job runs now, not at its interval


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


def bearer(token: str) -> dict[str, str]:
    """Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def recipient_body(organisation_id: str) -> dict[str, Any]:
    """A valid recipient in its own RW."""
    rw, suffix = next(_RW), uuid.uuid4().hex[:6]
    return {
        "name": f"RW {rw} Onboarding {suffix}", "kind": "rw_rentan", "organisation_id": organisation_id,
        "kelurahan_code": KELURAHAN[rw % len(KELURAHAN)], "rw": rw, "street_address": f"Jl. Undangan {suffix}",
        "beneficiaries": {"households": 40, "people": 160, "children": 50, "elderly": 10, "disabled": 2},
        "contact": {"name": "Ibu Sari", "phone": "0812-3456-7890"},
    }


async def set_password_from_mail(page: Any, mailpit: Mailpit, email: str) -> None:
    """Follow the invitation e-mail's link in Chromium and choose a password."""
    message = await mailpit.wait_for(email)
    links = [link for link in Mailpit.links(message) if "/login-actions/action-token" in link]
    assert links, f"no set-password link in: {message.get('Text')!r}"
    await goto(page, links[0])
    proceed = page.locator("#kc-info-message a, a:has-text('proceed'), a:has-text('lanjut')")
    if await proceed.count():
        await proceed.first.click()
    await page.wait_for_selector("#password-new", timeout=30000)
    await page.fill("#password-new", PASSWORD)
    await page.fill("#password-confirm", PASSWORD)
    await page.click("[type=submit]")
    await page.wait_for_load_state()


async def test_registry_onboarding_invites_staff_and_contacts_and_disables_them(
    identity_infra: IdentityInfra, web_client: OidcClient, mailpit: Mailpit, keycloak_admin: KeycloakAdmin,
    browser_page: Any, infra: Infra, namespace: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with OidcClient(identity_infra.issuer, "ksbb-cli", identity_infra.cli_secret) as cli:
        admin = bearer((await cli.client_credentials()).access_token)  # Keycloak-issued, role admin
    async with registry_following_keycloak(infra, identity_infra, namespace) as (registry, services):
        org_ids = []
        for name in ("Yayasan Undangan A", "Yayasan Undangan B"):
            created = await registry.post("/v1/organisations", headers=admin, json={
                "name": name, "kind": "ngo", "contact": {"name": "Sekretariat", "email": "k@yayasan.example"},
                "area_codes": ["31.71"]})
            assert created.status_code == 201, created.text
            org_ids.append(created.json()["organisation_id"])
        own_org, other_org = org_ids
        recipients = []
        for org in (own_org, other_org):
            created = await registry.post("/v1/recipients", headers=admin, json=recipient_body(org))
            assert created.status_code == 201, created.text
            recipients.append(created.json()["recipient_id"])
        own_unit, other_unit = recipients

        # An admin invites a staff member of the own organisation (Idempotency-Key: a retry replays).
        email = unique_email("staf-registry")
        invite = {"email": email, "first_name": "Siti", "last_name": "Rahma"}
        headers = {**admin, "Idempotency-Key": f"invite-{uuid.uuid4().hex}"}
        member = await registry.post(f"/v1/organisations/{own_org}/members", headers=headers, json=invite)
        assert member.status_code == 201, member.text
        replay = await registry.post(f"/v1/organisations/{own_org}/members", headers=headers, json=invite)
        assert replay.json() == member.json() and replay.headers.get("Idempotent-Replayed") == "true"
        account_id = member.json()["account_id"]
        assert (member.json()["state"], member.json()["kind"], member.json()["email_sent"]) == (
            "invited", "staff", True)
        created_account = await keycloak_admin.find_by_email(email)
        assert created_account is not None and (created_account.id, created_account.org_id) == (account_id, own_org)
        listed = await registry.get(f"/v1/organisations/{own_org}/members", headers=admin)
        assert [m["account_id"] for m in listed.json()["items"]] == [account_id]

        # The invited person sets a password from the e-mail and signs in as the organisation's facilitator.
        await set_password_from_mail(browser_page, mailpit, email)
        await browser_page.context.clear_cookies()
        tokens = await sign_in(browser_page, web_client, email, PASSWORD)
        staff = bearer(tokens.access_token)
        verifier = TokenVerifier(issuer=identity_infra.issuer, audience="ksbb")
        principal = await verifier.verify(tokens.access_token)
        assert (principal.subject, principal.role, principal.org_id) == (account_id, Role.FACILITATOR, own_org)

        # A facilitator may not invite staff; a contact is invited only once the unit is verified.
        refused = await registry.post(f"/v1/organisations/{own_org}/members", headers=staff, json=invite)
        assert refused.status_code == 403
        contact = {"email": unique_email("kontak-rw"), "first_name": "Sari"}
        early = await registry.post(f"/v1/recipients/{own_unit}/accounts", headers=staff, json=contact)
        assert (early.status_code, early.json()["code"], early.json().get("field")) == (
            409, "recipient_not_verified", "recipient_id")

        # They verify their own organisation's recipient, not another's.
        note = {"reason": "kunjungan lapangan"}
        verified = await registry.post(f"/v1/recipients/{own_unit}/verify", headers=staff, json=note)
        assert verified.status_code == 200, verified.text
        assert (await registry.post(f"/v1/recipients/{other_unit}/verify", headers=staff, json=note)).status_code == 403
        assert (await registry.post(f"/v1/recipients/{other_unit}/verify", headers=admin, json=note)).status_code == 200
        other = await registry.post(f"/v1/recipients/{other_unit}/accounts", headers=staff, json=contact)
        assert other.status_code == 403, "only the unit's own organisation invites its contact"

        invited_contact = await registry.post(f"/v1/recipients/{own_unit}/accounts", headers=staff, json=contact)
        assert invited_contact.status_code == 201, invited_contact.text
        contact_id = invited_contact.json()["account_id"]
        contact_account = await keycloak_admin.find_by_email(contact["email"])
        assert contact_account is not None
        assert (contact_account.recipient_id, contact_account.org_id) == (own_unit, None)
        assert "recipient" in await keycloak_admin.realm_roles(contact_id)
        assert (await mailpit.wait_for(contact["email"]))["To"], "the contact was e-mailed a set-password link"

        # Revoked by an admin: disabled at once; refresh fails; the last access token is refused at its expiry.
        revoked = await registry.delete(f"/v1/organisations/{own_org}/members/{account_id}", headers=admin)
        assert (revoked.status_code, revoked.json()["state"]) == (200, "disabled"), revoked.text
        with pytest.raises(OidcError) as no_refresh:
            await web_client.refresh(tokens.refresh_token or "")
        assert no_refresh.value.error == "invalid_grant"
        expires = int(principal_claims(tokens.access_token)["exp"])
        monkeypatch.setattr(jwt_claims, "_generate_now", lambda: expires + 6)  # the clock moved, nobody slept
        with pytest.raises(ApiError) as expired:
            await verifier.verify(tokens.access_token)
        assert expired.value.status == 401
        monkeypatch.undo()
        disabled = await keycloak_admin.find_by_email(email)
        assert disabled is not None and not disabled.enabled

        # Archiving the unit marks its account; the job disables it in Keycloak.
        for action in ("activate", "archive"):
            body = {"reason": "unit bubar"} if action == "archive" else {}
            moved = await registry.post(f"/v1/recipients/{own_unit}/{action}", headers=admin, json=body)
            assert moved.status_code == 200, moved.text
        await services.members.disable_pending()
        accounts = (await registry.get(f"/v1/recipients/{own_unit}/accounts", headers=admin)).json()["items"]
        assert [(a["account_id"], a["state"], a["disable_reason"]) for a in accounts] == [
            (contact_id, "disabled", "recipient archived")]
        gone = await keycloak_admin.find_by_email(contact["email"])
        assert gone is not None and not gone.enabled


def principal_claims(token: str) -> dict[str, Any]:
    """A JWT's payload (for looking, not trusting)."""
    import base64
    import json

    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))
