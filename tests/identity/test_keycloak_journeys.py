"""With the real Keycloak (realm deploy/identity/ksbb-realm.json), Mailpit and Chromium: sign-up, invitation,
attributes users cannot set, disabled accounts, brute-force protection, demo accounts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ksbb_contracts.events.registry import NeedOpened, NeedPublic
from ksbb_contracts.vocab import Item, NeedStatus, Priority
from ksbb_kit.auth import Role, TokenVerifier
from ksbb_kit.identity import AccountConflict, Invitation, KeycloakAccounts, KeycloakAdmin
from ksbb_kit.oidc import OidcClient, OidcError
from ksbb_kit.testing.identity import (
    CALLBACK,
    IdentityInfra,
    Mailpit,
    goto,
    login_in_browser,
    sign_in,
    unique_email,
)
from ksbb_kit.testing.infra import Infra, repo_root
from ksbb_kit.testing.kafka import publish_events

pytestmark = pytest.mark.e2e

PASSWORD = "Kolaborasi-Jakarta-2020"
FORGED = "org_forged_by_the_user"  # shaped like a real organisation id
DEMO_USERS = repo_root() / "deploy" / "identity" / "ksbb-users-0.json"  # development only


def verifier_for(infra: IdentityInfra) -> TokenVerifier:
    """What a service configured with KSBB_OIDC_ISSUER does."""
    return TokenVerifier(issuer=infra.issuer, audience="ksbb")


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's payload (for looking, not trusting)."""
    import base64

    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


async def fill_registration(page: Any, email: str, password: str, first: str = "Dewi", last: str = "Lestari") -> None:
    """Fill Keycloak's sign-up form (e-mail is the username in this realm)."""
    await page.wait_for_selector("#kc-register-form", timeout=30000)
    await page.fill("#email", email)
    await page.fill("#firstName", first)
    await page.fill("#lastName", last)
    await page.fill("#password", password)
    await page.fill("#password-confirm", password)


async def submit(page: Any, form: str) -> None:
    """Submit a Keycloak form by its submit control."""
    await page.click(f"{form} [type=submit]")


@contextlib.asynccontextmanager
async def pledges_following_keycloak(infra: Infra, namespace: str, issuer: str) -> AsyncIterator[httpx.AsyncClient]:
    """The pledges service configured as in production: only Keycloak's tokens (no development issuer)."""
    from ksbb_pledges.bootstrap import create_app
    from ksbb_pledges.settings import PledgesSettings

    settings = PledgesSettings(
        env="test", kafka_bootstrap=infra.kafka_bootstrap, mongodb_url=infra.mongodb_url, topic_prefix=namespace,
        topic_partitions=2, outbox_sweep_seconds=0.5, oidc_issuer=issuer, dev_issuer_enabled=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pledges", timeout=30) as client:
            for _ in range(300):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("the pledges service did not become ready")
            yield client


async def pledge_as(client: httpx.AsyncClient, infra: Infra, namespace: str, token: str) -> httpx.Response:
    """Open a need as the registry would announce it, then pledge to it with a bearer token."""
    today = datetime.now(UTC).date()
    need = NeedPublic(
        need_id=f"ned_kc_{namespace.strip('.')}", recipient_id="rcp_kc", organisation_id="org_kc",
        kelurahan_code="31.71.01.1001", item=Item.SEMBAKO, quantity=10, unit="paket", priority=Priority.HIGH,
        needed_by=today + timedelta(days=30), status=NeedStatus.OPEN, version=1,
    )
    await publish_events(infra.kafka_bootstrap, namespace, [NeedOpened(need=need, occurred_at=datetime.now(UTC))])
    for _ in range(300):
        if (await client.get(f"/v1/needs/{need.need_id}/ledger")).status_code == 200:
            break
        await asyncio.sleep(0.2)
    body = {"need_id": need.need_id, "quantity": 2, "planned_date": (today + timedelta(days=3)).isoformat()}
    return await client.post("/v1/pledges", json=body, headers={"Authorization": f"Bearer {token}"})


async def test_sign_up_verify_email_then_pkce_gives_a_donor_and_forged_org_id_is_ignored(
    identity_infra: IdentityInfra, web_client: OidcClient, mailpit: Mailpit, keycloak_admin: KeycloakAdmin,
    browser_page: Any,
) -> None:
    page, email = browser_page, unique_email("donatur")
    verifier, state, catcher = await login_in_browser(page, web_client, email, "", register=True)

    # The password policy answers on the form itself.
    await fill_registration(page, email, "pendek")
    await submit(page, "#kc-register-form")
    await page.wait_for_selector("#kc-register-form")
    assert "12" in await page.inner_text("body"), "the policy's minimum length is explained"

    # A forged org_id (every spelling a form could use) is posted along with the real fields.
    await fill_registration(page, email, PASSWORD)
    # (Plausible values: a value the attribute's pattern refuses would fail the whole sign-up instead.)
    await page.evaluate("""(forged) => {
        const form = document.querySelector('#kc-register-form');
        for (const [name, value] of Object.entries(forged)) {
            const input = document.createElement('input');
            input.type = 'hidden'; input.name = name; input.value = value;
            form.appendChild(input);
        }
    }""", {"org_id": FORGED, "user.attributes.org_id": FORGED, "recipient_id": "rcp_forged",
           "user.attributes.recipient_id": "rcp_forged"})
    await submit(page, "#kc-register-form")

    # E-mail verification through the SMTP sink, then back to the application with a code.
    message = await mailpit.wait_for(email)
    links = [link for link in Mailpit.links(message) if "/login-actions/action-token" in link]
    assert links, f"no verification link in: {message.get('Text')!r}"
    await goto(page, links[0])
    code = await catcher.wait()
    assert catcher.state == state
    tokens = await web_client.exchange_code(code, CALLBACK, verifier)

    principal = await verifier_for(identity_infra).verify(tokens.access_token)
    assert (principal.role, principal.roles, principal.email) == (Role.DONOR, {Role.DONOR}, email)
    assert principal.org_id is None and principal.recipient_id is None
    claims = claims_of(tokens.access_token)
    assert "org_id" not in claims and "recipient_id" not in claims and claims["azp"] == "ksbb-web"
    account = await keycloak_admin.find_by_email(email)
    assert account is not None and account.email_verified
    assert (account.org_id, account.recipient_id) == (None, None), "the sign-up form cannot set org_id"

    # Nor can the account console's REST API (the user may otherwise edit their profile).
    account_api = f"{identity_infra.issuer}/account"
    headers = {"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json"}
    async with httpx.AsyncClient(timeout=10) as client:
        mine = (await client.get(account_api, headers=headers)).json()
        assert mine["email"] == email and "org_id" not in (mine.get("attributes") or {})
        renamed = {**mine, "firstName": "Dewi Ayu", "attributes": {**(mine.get("attributes") or {}), "org_id": [FORGED],
                                                                     "recipient_id": ["rcp_forged"]}}
        answer = await client.post(account_api, headers=headers, json=renamed)
        assert answer.status_code in (200, 204, 400), answer.text
        after = (await client.get(account_api, headers=headers)).json()
    stored = await keycloak_admin.find_by_email(email)
    assert stored is not None and (stored.org_id, stored.recipient_id) == (None, None)
    assert "org_id" not in (after.get("attributes") or {})
    refreshed = await web_client.refresh(tokens.refresh_token or "")
    assert "org_id" not in claims_of(refreshed.access_token)
    assert (await verifier_for(identity_infra).verify(refreshed.access_token)).role is Role.DONOR


async def test_a_donor_signed_in_with_keycloak_pledges_through_the_pledges_service(
    identity_infra: IdentityInfra, web_client: OidcClient, keycloak_admin: KeycloakAdmin, browser_page: Any,
    infra: Infra, namespace: str,
) -> None:
    email = unique_email("donatur-janji")
    user_id = await keycloak_admin.create_user(email=email, first_name="Rina", email_verified=True)
    await keycloak_admin.set_password(user_id, PASSWORD)
    tokens = await sign_in(browser_page, web_client, email, PASSWORD)
    bearer = {"Authorization": f"Bearer {tokens.access_token}"}
    async with pledges_following_keycloak(infra, namespace, identity_infra.issuer) as pledges:
        pledged = await pledge_as(pledges, infra, namespace, tokens.access_token)
        assert pledged.status_code == 201, pledged.text
        mine = (await pledges.get("/v1/pledges", headers=bearer)).json()
        assert [p["pledge_id"] for p in mine["items"]] == [pledged.json()["pledge_id"]]
        dev_token = {"Authorization": "Bearer " + claims_free_dev_token()}
        assert (await pledges.get("/v1/pledges", headers=dev_token)).status_code == 401


def claims_free_dev_token() -> str:
    """A development-issuer token, which a service following Keycloak must refuse."""
    import tempfile
    from pathlib import Path

    from ksbb_kit.auth import DevIssuer

    return DevIssuer(Path(tempfile.mkdtemp(prefix="ksbb-dev-"))).token(Role.DONOR, subject="someone")


async def test_invited_facilitator_sets_a_password_from_the_mail_signs_in_and_is_cut_off_when_disabled(
    identity_infra: IdentityInfra, web_client: OidcClient, mailpit: Mailpit, keycloak_admin: KeycloakAdmin,
    browser_page: Any,
) -> None:
    accounts = KeycloakAccounts(keycloak_admin)
    email, page = unique_email("staf"), browser_page
    invitation = Invitation(email=email, first_name="Siti", last_name="Rahma", role=Role.FACILITATOR,
                            org_id="org_yayasan_a", client_id="ksbb-web", redirect_uri=CALLBACK)
    invited = await accounts.invite(invitation)
    assert invited.created and invited.email_sent
    assert (invited.account.org_id, invited.account.email_verified) == ("org_yayasan_a", False)
    assert set(invited.account.required_actions) == set()  # the e-mailed link carries the actions
    assert "facilitator" in await keycloak_admin.realm_roles(invited.account.id)

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
    verified = await keycloak_admin.find_by_email(email)
    assert verified is not None and verified.email_verified, "following the link verified the e-mail"

    await page.context.clear_cookies()
    tokens = await sign_in(page, web_client, email, PASSWORD)
    principal = await verifier_for(identity_infra).verify(tokens.access_token)
    assert (principal.role, principal.org_id) == (Role.FACILITATOR, "org_yayasan_a")
    assert principal.roles == {Role.FACILITATOR, Role.DONOR}, "staff keep the donor default role but act as staff"

    again = await accounts.invite(invitation)
    assert (again.created, again.email_sent, again.account.id) == (False, False, invited.account.id)
    with pytest.raises(AccountConflict):
        await accounts.invite(Invitation(email=email, first_name="Siti", role=Role.RECIPIENT,
                                         recipient_id="rcp_panti_b"))

    # Revoked: disabled, sessions ended. Refresh fails at once; the access token lives at most its lifespan.
    await accounts.disable(invited.account.id)
    with pytest.raises(OidcError) as refused:
        await web_client.refresh(tokens.refresh_token or "")
    assert refused.value.error == "invalid_grant"
    claims = claims_of(tokens.access_token)
    assert claims["exp"] - claims["iat"] <= 300, "a disabled account's token stops working within five minutes"
    disabled = await keycloak_admin.find_by_email(email)
    assert disabled is not None and not disabled.enabled and disabled.org_id == "org_yayasan_a"

    # Invited again (e.g. the revocation was a mistake): the same account, enabled, and it can sign in.
    restored = await accounts.invite(invitation)
    assert (restored.created, restored.account.id, restored.account.enabled) == (False, invited.account.id, True)
    await page.context.clear_cookies()
    back = await sign_in(page, web_client, email, PASSWORD)
    assert (await verifier_for(identity_infra).verify(back.access_token)).org_id == "org_yayasan_a"


async def test_an_existing_donor_is_linked_not_recreated(
    identity_infra: IdentityInfra, keycloak_admin: KeycloakAdmin,
) -> None:
    email = unique_email("donatur-jadi-penerima")
    user_id = await keycloak_admin.create_user(email=email, first_name="Budi", email_verified=True)
    await keycloak_admin.add_realm_role(user_id, "donor")
    linked = await KeycloakAccounts(keycloak_admin).invite(
        Invitation(email=email, first_name="Budi", role=Role.RECIPIENT, recipient_id="rcp_rw07_gambir")
    )
    assert (linked.created, linked.email_sent, linked.account.id) == (False, False, user_id)
    assert linked.account.recipient_id == "rcp_rw07_gambir"
    assert {"recipient", "donor"} <= set(await keycloak_admin.realm_roles(user_id))
    with pytest.raises(ValueError, match="needs org_id"):
        Invitation(email=email, first_name="Budi", role=Role.FACILITATOR).link()


async def test_brute_force_protection_locks_an_account_after_five_failures(
    identity_infra: IdentityInfra, web_client: OidcClient, keycloak_admin: KeycloakAdmin, browser_page: Any,
) -> None:
    email = unique_email("coba")
    user_id = await keycloak_admin.create_user(email=email, first_name="Coba", email_verified=True)
    await keycloak_admin.set_password(user_id, PASSWORD)
    page = browser_page
    for attempt in range(5):
        await login_in_browser(page, web_client, email, f"salah-{attempt}-{PASSWORD}")
        await page.wait_for_selector("#input-error, .kc-feedback-text, [id*=error]", timeout=15000)
    assert (await keycloak_admin.brute_force_status(user_id))["disabled"] is True
    _verifier, _state, catcher = await login_in_browser(page, web_client, email, PASSWORD)
    await page.wait_for_load_state()
    assert catcher.code is None, "the right password does not get through while the account is locked"


async def test_every_demo_account_signs_in_with_its_role_and_fixed_id(
    identity_infra: IdentityInfra, web_client: OidcClient, browser_page: Any,
) -> None:
    verifier = verifier_for(identity_infra)
    users = json.loads(DEMO_USERS.read_text())["users"]
    seen = set()
    for user in users:
        role = next(Role(name) for name in user["realmRoles"] if name in Role._value2member_map_)
        await browser_page.context.clear_cookies()
        tokens = await sign_in(browser_page, web_client, user["email"], user["credentials"][0]["value"])
        principal = await verifier.verify(tokens.access_token)
        assert (principal.role, principal.subject) == (role, user["id"]), user["email"]
        seen.add(role)
    assert seen == set(Role), "one demo account per role"
