"""`make run`: start the four services and the gateway in front of them, seed demo data, print where to look."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from ksbb_kit.auth import DevIssuer
from ksbb_kit.demo import DemoContext
from ksbb_kit.testing.infra import read_env_file

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"registry": 8101, "pledges": 8102, "notifier": 8103, "publisher": 8104}
# Browser apps behind the gateway under their own prefix (deploy/gateway/gateway.toml [frontends]).
FRONTENDS = {"portal": 8105}
# The portal calls the gateway from this loopback address; the gateway believes its X-Forwarded-For.
PORTAL_BIND = "127.0.0.3"
DEMO_USERS = ROOT / "deploy" / "identity" / "ksbb-users-0.json"
STATE = ROOT / ".ksbb"
# The one URL a client needs: nginx in front of the services (deploy/gateway, target "local").
GATEWAY_LISTEN = "127.0.0.1:8100"
GATEWAY_URL = f"http://{GATEWAY_LISTEN}"
sys.path.insert(0, str(ROOT / "deploy" / "gateway"))

from ksbb_gateway.local import LocalGateway  # noqa: E402


def service_env(infra_env: dict[str, str], issuer: DevIssuer) -> dict[str, str]:
    """Environment shared by every service process."""
    return {
        **os.environ,
        **infra_env,
        "KSBB_ENV": "development",
        "KSBB_JWKS_URL": str(issuer.jwks_path),
        "KSBB_JWT_ISSUER": issuer.issuer,
        "KSBB_JWT_AUDIENCE": issuer.audience,
        # The demo seed signs its requests with the development issuer; people sign in with Keycloak
        # (KSBB_OIDC_ISSUER from the infra env file). Both are trusted in development only.
        "KSBB_DEV_ISSUER_ENABLED": "true",
        "KSBB_NOTIFIER_INSECURE_HTTP_HOSTS": '["127.0.0.1","localhost"]',
        # Invited staff and recipient contacts land on the portal after setting their password.
        "KSBB_REGISTRY_INVITATION_CLIENT_ID": "ksbb-portal",
        "KSBB_REGISTRY_INVITATION_REDIRECT_URI": f"{GATEWAY_URL}/portal/",
        # Only the gateway (which connects from its own loopback address) may say who the client is.
        "KSBB_FORWARDED_ALLOW_IPS": LocalGateway().target.proxy_bind or "",
    }


def start_services(env: dict[str, str]) -> dict[str, subprocess.Popen[bytes]]:
    """Start each service as its own process, logging to .ksbb/logs/<service>.log."""
    logs = STATE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes = {}
    for name, port in SERVICES.items():
        log = (logs / f"{name}.log").open("ab")
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", f"ksbb_{name}.main"],
            env={**env, f"KSBB_{name.upper()}_HTTP_PORT": str(port), f"KSBB_{name.upper()}_PUBLIC_URL": GATEWAY_URL,
                 f"KSBB_{name.upper()}_ROOT_PATH": f"/svc/{name}"},
            stdout=log, stderr=subprocess.STDOUT,
        )
    return processes


def start_portal(env: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """Start the portal (frontends/portal) when an identity provider is configured; it signs people in there."""
    if not env.get("KSBB_OIDC_ISSUER"):
        print("portal: not started, no KSBB_OIDC_ISSUER (Keycloak: `deploy/local/infra up keycloak`)", flush=True)
        return None
    log = (STATE / "logs" / "portal.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "ksbb_portal.main"],
        env={**env, "KSBB_PORTAL_HTTP_PORT": str(FRONTENDS["portal"]), "KSBB_PORTAL_API_URL": GATEWAY_URL,
             "KSBB_PORTAL_PUBLIC_ORIGIN": GATEWAY_URL, "KSBB_PORTAL_API_BIND_ADDRESS": PORTAL_BIND},
        stdout=log, stderr=subprocess.STDOUT,
    )


async def wait_ready(processes: dict[str, subprocess.Popen[bytes]], timeout: float = 120) -> None:
    """Wait until every service (and frontend) started answers /readyz with 200."""
    deadline = asyncio.get_running_loop().time() + timeout
    ports = {**SERVICES, **FRONTENDS}
    async with httpx.AsyncClient(timeout=3) as client:
        for name, port in ((n, p) for n, p in ports.items() if n in processes):
            while True:
                if processes[name].poll() is not None:
                    raise SystemExit(f"{name} exited; see .ksbb/logs/{name}.log")
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise SystemExit(f"{name} not ready after {timeout}s; see .ksbb/logs/{name}.log")
                await asyncio.sleep(0.5)


async def start_gateway() -> LocalGateway:
    """Render the gateway from the running services' OpenAPI documents and start nginx (state in .ksbb/gateway)."""
    async with httpx.AsyncClient(timeout=10) as client:
        documents = {name: (await client.get(f"http://127.0.0.1:{port}/openapi.json")).json()
                     for name, port in SERVICES.items()}
    gateway = LocalGateway(STATE / "gateway", target_changes={
        "listen": GATEWAY_LISTEN,
        "upstreams": {name: f"127.0.0.1:{port}" for name, port in {**SERVICES, **FRONTENDS}.items()}})
    gateway.stop()  # a gateway left over from an interrupted run of this same state folder
    gateway.prepare(documents)
    await asyncio.to_thread(gateway.start)
    return gateway


async def seed(issuer: DevIssuer) -> DemoContext:
    """Run each service's demo seed (if it has one) through its public HTTP API."""
    ctx = DemoContext(urls={n: f"http://127.0.0.1:{p}" for n, p in SERVICES.items()}, issuer=issuer)
    for name in SERVICES:
        try:
            module = importlib.import_module(f"ksbb_{name}.demo")
        except ModuleNotFoundError:
            continue
        print(f"seeding demo data: {name} …", flush=True)
        await module.seed(ctx)
    return ctx


async def link_demo_accounts(ctx: DemoContext, env: dict[str, str]) -> None:
    """Tie the demo facilitator to the first demo organisation and the demo recipient account to one of its
    active recipients with an open need (registry ids are generated; the realm's users file carries
    placeholders). The demo accounts have fixed ids and passwords, so they are linked directly rather than
    invited through the registry (an invitation e-mails a set-password link to a new account)."""
    from ksbb_kit.identity import IdentityError, KeycloakAdmin

    seeded = ctx.state.get("registry") or {}
    organisations = seeded.get("organisations") or []
    if not env.get("KSBB_OIDC_ISSUER") or not organisations:
        return
    org_id = organisations[0]
    units = [n["recipient_id"] for n in seeded.get("need_details", []) if n["organisation_id"] == org_id]
    users = {user["realmRoles"][0]: user["id"] for user in json.loads(DEMO_USERS.read_text())["users"]}
    secret = (env.get("KSBB_REGISTRY_IDENTITY_ADMIN_CLIENT_SECRET") or env.get("KSBB_IDENTITY_ADMIN_CLIENT_SECRET")
              or "dev-only-ksbb-registry-admin-secret")
    try:
        async with KeycloakAdmin(env["KSBB_OIDC_ISSUER"], "ksbb-registry-admin", secret) as admin:
            await admin.set_attributes(users["facilitator"], {"org_id": org_id})
            if units:
                await admin.set_attributes(users["recipient"], {"recipient_id": units[0]})
    except (IdentityError, KeyError) as exc:
        print(f"demo accounts: could not link them to the demo data ({exc})", flush=True)


def demo_accounts() -> list[str]:
    """One demo account per role (development-only passwords from the realm's users file)."""
    lines = []
    for user in json.loads(DEMO_USERS.read_text())["users"]:
        password = next((c["value"] for c in user.get("credentials", []) if c.get("type") == "password"), "")
        lines.append(f"             {user['realmRoles'][0]:<12} {user['username']:<28} {password}")
    return lines


def banner(issuer: DevIssuer, portal: bool = False) -> str:
    """Where to look."""
    lines = ["", "KSBB Platform is running (Ctrl-C stops the services; `make stop` stops Kafka and MongoDB too):", ""]
    lines.append(f"  KSBB       {GATEWAY_URL}/")
    lines.append("             public page /, API /v1/..., docs /docs (OpenAPI /v1/openapi.json),")
    lines.append("             each service's docs and events /svc/<service>/docs, /svc/<service>/asyncapi")
    ports = f"{min(SERVICES.values())}-{max(SERVICES.values())}"
    lines.append(f"             (the services' own ports {ports} answer on loopback, for debugging only)")
    if portal:
        lines.append(f"  Portal     {GATEWAY_URL}/portal/   (demo accounts, development only:)")
        lines += demo_accounts()
    lines += [
        "",
        *identity_lines(issuer),
        "  Logs:    .ksbb/logs/<service>.log, .ksbb/gateway/logs/, deploy/local/infra logs",
        "",
    ]
    return "\n".join(lines)


def identity_lines(issuer: DevIssuer) -> list[str]:
    """Keycloak's admin console and sign-in page, the mail sink, and how to get tokens."""
    env = read_env_file(STATE / "infra" / "infra.env")
    oidc = env.get("KSBB_OIDC_ISSUER")
    lines = []
    if oidc:
        console = env.get("KSBB_KEYCLOAK_URL", oidc.rpartition("/realms/")[0])
        password = env.get("KSBB_KEYCLOAK_ADMIN_PASSWORD", "?")
        lines += [f"  Keycloak   {console}/admin/   (admin / {password}, development only; realm ksbb)",
                  f"             sign in, own account: {oidc}/account/"]
    else:
        lines.append("  Keycloak   not running (KSBB_INFRA_KEYCLOAK=0?): only development tokens are accepted")
    if env.get("KSBB_MAILPIT_URL"):
        mail = env["KSBB_MAILPIT_URL"]
        lines.append(f"  Mail       {mail}/view/latest.html   (Mailpit: every e-mail Keycloak and the notifier send;"
                     f" list {mail}/api/v1/messages)")
    return [*lines, "",
            "  Tokens:  uv run ksbb token            (the admin service account ksbb-cli, from Keycloak)",
            "           uv run ksbb token --device   (sign in as a person, e.g. a demo account)",
            "           uv run ksbb token --dev --role facilitator --org <id>   (development issuer)",
            f"  JWKS:    {issuer.jwks_path} (development issuer)"]


async def main() -> int:
    """Bring the platform up and keep it running until interrupted."""
    infra_env = read_env_file(STATE / "infra" / "infra.env")
    issuer = DevIssuer(STATE / "dev-issuer")
    env = service_env(infra_env, issuer)
    processes = start_services(env)
    portal = start_portal(env)
    if portal is not None:
        processes["portal"] = portal
    gateway: LocalGateway | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await wait_ready(processes)
        gateway = await start_gateway()
        if os.environ.get("KSBB_DEMO_SEED", "1") == "1":
            await link_demo_accounts(await seed(issuer), env)
        print(banner(issuer, portal=portal is not None), flush=True)
        if os.environ.get("KSBB_RUN_ONCE") == "1":
            return 0
        await stop.wait()
        return 0
    finally:
        if gateway is not None:
            gateway.stop()
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
