"""Accounts in the identity provider: the onboarding port and its Keycloak adapter (admin REST API).

Who may invite whom is the registry's data; this module only carries the decision out. An invitation creates
(or links) the person's Keycloak account with the role and the attribute that ties it to an organisation or a
recipient unit (`org_id` / `recipient_id`, which only administrators can set: see deploy/identity/), and Keycloak
e-mails a "set your password" link. Revoking a member or archiving a recipient disables the account.

`KeycloakAdmin` authenticates as a confidential client whose service account holds only Keycloak's
`manage-users`, `view-users` and `query-users` roles (client `ksbb-registry-admin` in the realm file).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ksbb_kit.auth import REQUIRED_CLAIM, Role

#: The account attributes onboarding sets; users can neither see nor change them (realm user profile).
LINK_ATTRIBUTES = ("org_id", "recipient_id")
#: Roles an invitation may grant. Administrators are made by hand in the identity provider, never by a service.
INVITABLE_ROLES = (Role.FACILITATOR, Role.RECIPIENT)
#: Keycloak's required actions a new account is e-mailed about.
DEFAULT_ACTIONS = ("UPDATE_PASSWORD", "VERIFY_EMAIL")


class IdentityError(Exception):
    """The identity provider refused or failed a request."""

    def __init__(self, message: str, *, status: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


class IdentityUnavailable(IdentityError):
    """The provider could not be reached or failed (5xx): retry later."""


class AccountNotFound(IdentityError):
    """No account with that id or e-mail."""


class AccountConflict(IdentityError):
    """An account with that e-mail exists and is tied to something else (another organisation or unit)."""

    def __init__(self, message: str, *, account: Account) -> None:
        super().__init__(message, status=409, field="email")
        self.account = account


class Account(BaseModel):
    """A person's account as onboarding sees it."""

    id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    enabled: bool = True
    email_verified: bool = False
    org_id: str | None = None
    recipient_id: str | None = None
    required_actions: list[str] = Field(default_factory=list)

    @classmethod
    def from_keycloak(cls, user: Mapping[str, Any]) -> Account:
        """From a Keycloak UserRepresentation."""
        attributes = user.get("attributes") or {}

        def first(name: str) -> str | None:
            values = attributes.get(name) or []
            return values[0] if values else None

        return cls(
            id=user["id"], email=user.get("email"), first_name=user.get("firstName"),
            last_name=user.get("lastName"), enabled=bool(user.get("enabled", True)),
            email_verified=bool(user.get("emailVerified", False)), org_id=first("org_id"),
            recipient_id=first("recipient_id"), required_actions=list(user.get("requiredActions") or []),
        )


class Invitation(BaseModel):
    """Bring a person in as staff of an organisation or as a recipient unit's contact."""

    model_config = ConfigDict(frozen=True)

    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    first_name: str = Field(min_length=1, max_length=255)
    last_name: str | None = Field(default=None, max_length=255)
    role: Literal[Role.FACILITATOR, Role.RECIPIENT]
    org_id: str | None = None
    recipient_id: str | None = None
    #: Where Keycloak sends the person after the password is set (must be a redirect URI of `client_id`).
    redirect_uri: str | None = None
    client_id: str | None = None
    #: How long the e-mailed link stays valid.
    link_lifespan_seconds: int = Field(default=3 * 24 * 3600, ge=300)

    def link(self) -> dict[str, str]:
        """The attribute tying the account to its organisation or recipient unit."""
        name = REQUIRED_CLAIM[Role(self.role)]
        value = self.org_id if name == "org_id" else self.recipient_id
        if not value:
            raise ValueError(f"an invitation as {Role(self.role).value} needs {name}")
        return {name: value}


class InvitedAccount(BaseModel):
    """What an invitation did."""

    account: Account
    created: bool
    email_sent: bool


class AccountDirectory(Protocol):
    """The port the registry's onboarding depends on (Keycloak adapter below; any provider could implement it)."""

    async def invite(self, invitation: Invitation) -> InvitedAccount:
        """Create (or link an existing, unlinked) account and e-mail a set-password link to a new one."""
        ...

    async def disable(self, account_id: str) -> None:
        """Disable an account and end its sessions (its refresh tokens stop working at once)."""
        ...

    async def find_by_email(self, email: str) -> Account | None:
        """The account with this e-mail, if any."""
        ...


class KeycloakAdmin:
    """Keycloak's admin REST API for one realm, authenticated with a service-account client's credentials."""

    def __init__(
        self, issuer: str, client_id: str, client_secret: str, *, admin_url: str | None = None,
        http: httpx.AsyncClient | None = None, timeout: float = 10.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        if admin_url is None:
            base, marker, realm = self.issuer.rpartition("/realms/")
            if not marker:
                raise ValueError(f"{issuer} is not a Keycloak realm URL (…/realms/<realm>); pass admin_url")
            admin_url = f"{base}/admin/realms/{realm}"
        self.admin_url = admin_url.rstrip("/")
        self._client_id = client_id
        self._secret = client_secret
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._owns_http = http is None
        self._token: str | None = None
        self._token_expires = 0.0

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> KeycloakAdmin:
        """From a service's KitSettings (oidc_issuer, identity_admin_client_id, identity_admin_client_secret)."""
        if not settings.oidc_issuer or settings.identity_admin_client_secret is None:
            raise ValueError("onboarding needs oidc_issuer and identity_admin_client_secret "
                             "(KSBB_OIDC_ISSUER, KSBB_REGISTRY_IDENTITY_ADMIN_CLIENT_SECRET)")
        return cls(settings.oidc_issuer, settings.identity_admin_client_id,
                   settings.identity_admin_client_secret.get_secret_value(), **options)

    async def __aenter__(self) -> KeycloakAdmin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    # -- transport ---------------------------------------------------------------------------------

    async def _access_token(self) -> str:
        if self._token is None or time.monotonic() > self._token_expires:
            try:
                response = await self._http.post(
                    f"{self.issuer}/protocol/openid-connect/token",
                    data={"grant_type": "client_credentials", "client_id": self._client_id,
                          "client_secret": self._secret},
                )
            except httpx.HTTPError as exc:
                raise IdentityUnavailable(f"identity provider unreachable: {exc}") from exc
            if response.status_code != 200:
                raise _failure(response, "the onboarding client could not authenticate")
            body = response.json()
            self._token = str(body["access_token"])
            # renew a little early so a request never leaves with a token about to expire
            self._token_expires = time.monotonic() + max(float(body.get("expires_in", 60)) - 30, 5)
        return self._token

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated admin API call; raises IdentityError for 4xx/5xx (404 as AccountNotFound)."""
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {await self._access_token()}"}
            try:
                response = await self._http.request(method, f"{self.admin_url}{path}", headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                raise IdentityUnavailable(f"identity provider unreachable: {exc}") from exc
            if response.status_code == 401 and attempt == 0:
                self._token = None  # revoked or expired early: authenticate once more
                continue
            if response.status_code == 404:
                raise AccountNotFound(_message(response) or f"{path} not found", status=404)
            if response.status_code >= 400:
                raise _failure(response, f"{method} {path} failed")
            return response
        raise IdentityError("unreachable")  # pragma: no cover - the loop returns or raises

    # -- users -------------------------------------------------------------------------------------

    async def create_user(
        self, *, email: str, first_name: str, last_name: str | None = None,
        attributes: Mapping[str, str] | None = None, enabled: bool = True, email_verified: bool = False,
    ) -> str:
        """Create an account (username = e-mail) and return its id; an existing e-mail raises IdentityError 409."""
        body: dict[str, Any] = {
            "username": email, "email": email, "firstName": first_name, "enabled": enabled,
            "emailVerified": email_verified, "attributes": {k: [v] for k, v in (attributes or {}).items()},
        }
        if last_name:
            body["lastName"] = last_name
        response = await self.request("POST", "/users", json=body)
        location = response.headers.get("location", "")
        user_id = location.rstrip("/").rpartition("/")[2]
        if not user_id:
            raise IdentityError("Keycloak created the user but returned no Location header")
        return user_id

    async def get_user(self, user_id: str) -> dict[str, Any]:
        """The full UserRepresentation."""
        return dict((await self.request("GET", f"/users/{quote(user_id, safe='')}")).json())

    async def find_by_email(self, email: str) -> Account | None:
        """The account with exactly this e-mail, if any."""
        found = (await self.request("GET", "/users", params={"email": email, "exact": "true"})).json()
        matches = [user for user in found if (user.get("email") or "").lower() == email.lower()]
        return Account.from_keycloak(await self.get_user(matches[0]["id"])) if matches else None

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> None:
        """Change fields of an account; the full representation is sent back so nothing else is lost."""
        user = await self.get_user(user_id)
        user.update(changes)
        await self.request("PUT", f"/users/{quote(user_id, safe='')}", json=user)

    async def set_attributes(self, user_id: str, attributes: Mapping[str, str | None]) -> None:
        """Set (or with None, remove) single-valued attributes such as org_id."""
        user = await self.get_user(user_id)
        current = dict(user.get("attributes") or {})
        for name, value in attributes.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = [value]
        user["attributes"] = current
        await self.request("PUT", f"/users/{quote(user_id, safe='')}", json=user)

    async def realm_roles(self, user_id: str) -> list[str]:
        """Names of the realm roles mapped directly to an account."""
        mappings = (await self.request("GET", f"/users/{quote(user_id, safe='')}/role-mappings/realm")).json()
        return [role["name"] for role in mappings]

    async def add_realm_role(self, user_id: str, role: str) -> None:
        """Grant a realm role (looked up among the roles the account can still get: the user-management rights
        include that list, while reading the realm's roles would need view-realm)."""
        base = f"/users/{quote(user_id, safe='')}/role-mappings/realm"
        available = (await self.request("GET", f"{base}/available")).json()
        matches = [entry for entry in available if entry.get("name") == role]
        if not matches:
            if role in await self.realm_roles(user_id):
                return
            raise IdentityError(f"realm role {role!r} does not exist", status=404)
        await self.request("POST", base, json=[{"id": matches[0]["id"], "name": matches[0]["name"]}])

    async def send_actions_email(
        self, user_id: str, actions: Sequence[str] = DEFAULT_ACTIONS, *, client_id: str | None = None,
        redirect_uri: str | None = None, lifespan_seconds: int | None = None,
    ) -> None:
        """Have Keycloak e-mail a link for the required actions (set password, verify e-mail)."""
        params = {key: value for key, value in (
            ("client_id", client_id), ("redirect_uri", redirect_uri),
            ("lifespan", str(lifespan_seconds) if lifespan_seconds else None),
        ) if value}
        await self.request("PUT", f"/users/{quote(user_id, safe='')}/execute-actions-email", params=params,
                           json=list(actions))

    async def set_password(self, user_id: str, password: str, *, temporary: bool = False) -> None:
        """Set a password directly (support and tests; people normally set their own through the e-mailed link)."""
        await self.request("PUT", f"/users/{quote(user_id, safe='')}/reset-password",
                           json={"type": "password", "value": password, "temporary": temporary})

    async def brute_force_status(self, user_id: str) -> dict[str, Any]:
        """Keycloak's brute-force detection state of an account (`disabled` while locked out)."""
        path = f"/attack-detection/brute-force/users/{quote(user_id, safe='')}"
        return dict((await self.request("GET", path)).json())

    async def delete_user(self, user_id: str) -> None:
        """Delete an account for good (tests clean up; onboarding disables instead)."""
        await self.request("DELETE", f"/users/{quote(user_id, safe='')}")

    async def disable_user(self, user_id: str) -> None:
        """Disable an account and log out its sessions."""
        await self.update_user(user_id, {"enabled": False})
        await self.request("POST", f"/users/{quote(user_id, safe='')}/logout")

    async def enable_user(self, user_id: str) -> None:
        """Enable an account again."""
        await self.update_user(user_id, {"enabled": True})


class KeycloakAccounts:
    """`AccountDirectory` backed by Keycloak."""

    def __init__(self, admin: KeycloakAdmin) -> None:
        self.admin = admin

    async def invite(self, invitation: Invitation) -> InvitedAccount:
        """Create the account with role and link and e-mail the set-password link; an existing account of the
        same person is linked (and enabled again if it was disabled) instead, without an e-mail since it can
        already sign in, unless it is tied to another organisation or unit (AccountConflict)."""
        role = Role(invitation.role)
        if role not in INVITABLE_ROLES:
            raise ValueError(f"invitations cannot grant {role.value}")
        link = invitation.link()
        existing = await self.admin.find_by_email(str(invitation.email))
        if existing is not None:
            held = {name: getattr(existing, name) for name in LINK_ATTRIBUTES if getattr(existing, name)}
            if held and held != link:
                raise AccountConflict(
                    f"{invitation.email} already has an account tied to {held}", account=existing
                )
            if held != link:
                await self.admin.set_attributes(existing.id, link)
            if role.value not in await self.admin.realm_roles(existing.id):
                await self.admin.add_realm_role(existing.id, role.value)
            if not existing.enabled:
                await self.admin.enable_user(existing.id)  # invited again after a revocation: access restored
            return InvitedAccount(account=await self._account(existing.id), created=False, email_sent=False)
        user_id = await self.admin.create_user(
            email=str(invitation.email), first_name=invitation.first_name, last_name=invitation.last_name,
            attributes=link,
        )
        await self.admin.add_realm_role(user_id, role.value)
        await self.admin.send_actions_email(
            user_id, DEFAULT_ACTIONS, client_id=invitation.client_id, redirect_uri=invitation.redirect_uri,
            lifespan_seconds=invitation.link_lifespan_seconds,
        )
        return InvitedAccount(account=await self._account(user_id), created=True, email_sent=True)

    async def disable(self, account_id: str) -> None:
        """Disable the account and end its sessions."""
        await self.admin.disable_user(account_id)

    async def find_by_email(self, email: str) -> Account | None:
        """The account with this e-mail, if any."""
        return await self.admin.find_by_email(email)

    async def _account(self, user_id: str) -> Account:
        return Account.from_keycloak(await self.admin.get_user(user_id))


def _message(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or None
    if isinstance(body, dict):
        return str(body.get("errorMessage") or body.get("error_description") or body.get("error") or "") or None
    return None


def _failure(response: httpx.Response, context: str) -> IdentityError:
    message = f"{context}: {response.status_code} {_message(response) or ''}".strip()
    field = None
    try:
        body = response.json()
        if isinstance(body, dict):
            field = body.get("field")
    except ValueError:
        pass
    if response.status_code >= 500:
        return IdentityUnavailable(message, status=response.status_code)
    return IdentityError(message, status=response.status_code, field=field)
