"""The realm as code (deploy/identity/) says what docs/identity.md promises, and its development-only secrets
are refused by production settings. The realm's behaviour is tested on the real Keycloak elsewhere."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ksbb_kit.settings import KitSettings
from ksbb_kit.testing.infra import repo_root
from pydantic import SecretStr, ValidationError

pytestmark = pytest.mark.unit

IDENTITY = repo_root() / "deploy" / "identity"
REALM: dict[str, Any] = json.loads((IDENTITY / "ksbb-realm.json").read_text())
USERS: list[dict[str, Any]] = json.loads((IDENTITY / "ksbb-users-0.json").read_text())["users"]
CLIENTS = {client["clientId"]: client for client in REALM["clients"]}
PLACEHOLDER = re.compile(r"^\$\{(?P<var>[A-Z0-9_]+):(?P<default>[^}]*)\}$")


def user_profile() -> dict[str, Any]:
    """The declarative user profile stored in the realm's component."""
    component = REALM["components"]["org.keycloak.userprofile.UserProfileProvider"][0]
    return dict(json.loads(component["config"]["kc.user.profile.config"][0]))


def test_clients_use_the_flows_they_are_meant_for() -> None:
    web = CLIENTS["ksbb-web"]
    assert web["publicClient"] and web["standardFlowEnabled"]
    assert not web["directAccessGrantsEnabled"] and not web["implicitFlowEnabled"], "no password grant, no implicit"
    assert web["attributes"]["pkce.code.challenge.method"] == "S256"
    portal = CLIENTS["ksbb-portal"]
    assert not portal["publicClient"] and portal["attributes"]["pkce.code.challenge.method"] == "S256"
    assert all(uri.endswith("/portal/*") for uri in portal["redirectUris"])
    cli = CLIENTS["ksbb-cli"]
    assert cli["serviceAccountsEnabled"] and not cli["standardFlowEnabled"] and not cli["directAccessGrantsEnabled"]
    assert cli["attributes"]["oauth2.device.authorization.grant.enabled"] == "true"
    for name in ("ksbb-web", "ksbb-portal", "ksbb-cli"):
        mappers = {m["protocolMapper"]: m["config"] for m in CLIENTS[name]["protocolMappers"]}
        assert mappers["oidc-audience-mapper"]["included.custom.audience"] == "ksbb", name
        attributes = {m["config"]["claim.name"] for m in CLIENTS[name]["protocolMappers"]
                      if m["protocolMapper"] == "oidc-usermodel-attribute-mapper"}
        assert attributes == {"org_id", "recipient_id"}, name
    assert "ksbb" not in CLIENTS, "no client may be named like the services' audience (its ID tokens would pass)"


def test_the_onboarding_client_holds_only_user_management_rights() -> None:
    account = next(u for u in REALM["users"] if u.get("serviceAccountClientId") == "ksbb-registry-admin")
    assert account["clientRoles"] == {"realm-management": ["manage-users", "view-users", "query-users"]}
    assert not account.get("realmRoles")
    admin_client = CLIENTS["ksbb-registry-admin"]
    assert not admin_client.get("protocolMappers"), "its tokens carry no ksbb audience"
    assert not admin_client["standardFlowEnabled"] and not admin_client["directAccessGrantsEnabled"]


def test_sign_up_verification_password_and_brute_force_policies() -> None:
    assert REALM["registrationAllowed"] and REALM["verifyEmail"] and REALM["bruteForceProtected"]
    assert REALM["failureFactor"] <= 10
    assert "length(12)" in REALM["passwordPolicy"]
    default_role = next(r for r in REALM["roles"]["realm"] if r["name"] == REALM["defaultRole"]["name"])
    assert default_role["composites"]["realm"] == ["donor"], "a new account is a donor, nothing more"
    assert {r["name"] for r in REALM["roles"]["realm"]} >= {"admin", "facilitator", "recipient", "donor"}
    assert REALM["defaultLocale"] == "id" and "en" in REALM["supportedLocales"]


def test_only_administrators_can_see_or_set_the_linking_attributes() -> None:
    attributes = {a["name"]: a for a in user_profile()["attributes"]}
    for name in ("org_id", "recipient_id"):
        assert attributes[name]["permissions"] == {"view": ["admin"], "edit": ["admin"]}, name
    assert "unmanagedAttributePolicy" not in user_profile(), "unknown form fields are dropped, never stored"


def test_development_secrets_are_marked_and_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("KSBB_")]:
        monkeypatch.delenv(name)  # every value below is given explicitly
    secrets = {}
    for client in REALM["clients"]:
        if not client["publicClient"]:
            match = PLACEHOLDER.match(client["secret"])
            assert match, f"{client['clientId']}'s secret comes from an environment variable"
            assert match["default"].startswith("dev-only-"), client["clientId"]
            secrets[match["var"]] = match["default"]
    for user in USERS:
        assert user["credentials"][0]["value"].startswith("dev-only-"), user["username"]
    production = {"env": "production", "kafka_bootstrap": "kafka:9092", "mongodb_url": "mongodb://db/",
                  "oidc_issuer": "https://id.example.org/realms/ksbb", "secret_key": SecretStr("q4Zr8vN2xLwT7pKe0sJd"),
                  "dev_issuer_enabled": False}
    with pytest.raises(ValidationError, match="identity_admin_client_secret"):
        KitSettings(**production, identity_admin_client_secret=SecretStr(secrets["KSBB_IDENTITY_ADMIN_CLIENT_SECRET"]))
    assert KitSettings(**production, identity_admin_client_secret=SecretStr("Zt4q9wLmR2xVb7Nc")).env == "production"
    with pytest.raises(ValidationError, match="dev_issuer_enabled"):
        KitSettings(**{**production, "dev_issuer_enabled": True})
    without_issuer = {k: v for k, v in production.items() if k != "oidc_issuer"}
    with pytest.raises(ValidationError, match="KSBB_OIDC_ISSUER"):
        KitSettings(**without_issuer)


def test_demo_accounts_one_per_role_with_fixed_ids() -> None:
    roles = [next(r for r in u["realmRoles"] if r != "default-roles-ksbb") for u in USERS]
    assert sorted(roles) == ["admin", "donor", "facilitator", "recipient"]
    assert len({u["id"] for u in USERS}) == len(USERS) and all(len(u["id"]) == 36 for u in USERS)
    linked = {name for u in USERS for name in u.get("attributes", {})}
    assert linked == {"org_id", "recipient_id"}, "the demo facilitator and recipient are linked"


def _path_without(tmp_path: Path, *missing: str) -> str:
    """A PATH with every command of /usr/bin and /bin except `missing`."""
    shadow = tmp_path / "bin"
    shadow.mkdir()
    for folder in (Path("/usr/local/bin"), Path("/usr/bin"), Path("/bin")):
        for tool in folder.iterdir():
            if tool.name not in missing and not (shadow / tool.name).exists():
                (shadow / tool.name).symlink_to(tool)
    return str(shadow)


@pytest.mark.parametrize(("component", "tool", "advice"), [("keycloak", "java", "JDK 17"), ("mailpit", "go", "Go")])
def test_infra_says_clearly_which_tool_is_missing(tmp_path: Path, component: str, tool: str, advice: str) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KSBB_")},
           "PATH": _path_without(tmp_path, tool, "javac"), "KSBB_INFRA_DIR": str(tmp_path / "state"),
           "KSBB_INFRA_CACHE": str(tmp_path / "cache"), "KSBB_KEYCLOAK_PORT": "18480",
           "KSBB_KEYCLOAK_MANAGEMENT_PORT": "18481", "KSBB_MAILPIT_SMTP_PORT": "18425",
           "KSBB_MAILPIT_HTTP_PORT": "18426"}
    done = subprocess.run([str(repo_root() / "deploy" / "local" / "infra"), "up", component], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"'{tool}' not found" in done.stderr and advice in done.stderr, done.stderr
    assert not (tmp_path / "state" / "run" / f"{component}.pid").exists(), "nothing was started"
