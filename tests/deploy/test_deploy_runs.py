"""The deploy files, run: docker-compose rendered by the compose CLI and every Kubernetes overlay rendered by
kustomize; topics created the way each deploys them; then every service started as a local process with
exactly the rendered command and environment, in production mode with generated secrets.

Asserted for each service: it starts, listens on a non-loopback address, the readiness probe declared in the
manifest answers 200, it stops cleanly on SIGTERM, and its /metrics carry every metric the dashboard and the
alert rules read. A required secret left out, or left at an example value, stops it with a message naming the
variable.

The portal (compose and the example overlay, which deploy it) is started the same way while the services run,
behind the gateway's committed rendering of the same target (real nginx): it is ready on a non-loopback address,
serves its pages and the htmx its image ships, reads the public needs through the gateway, and sends sign-in to
the run's Keycloak with its client. Where a file sets no command or variable, the image's (Dockerfile ENTRYPOINT,
CMD, ENV) applies, as in a container.

What a container runtime would do and a local process cannot is mapped explicitly, nothing else:
- host names -> the local Kafka broker and MongoDB-wire server (the stand-in is not a replica set, so the
  `replicaSet` option of the compose URL is dropped) or, for the example overlay, a private broker that
  demands SCRAM-SHA-512 over TLS with one user per service; the gateway (and its fixed compose address), the
  public origin and the identity provider of the example files -> the test's gateway and the run's Keycloak;
- the container port -> a free local port (the manifest's port and KSBB_HTTP_PORT must agree first);
- mounted Secret files, and files the image copies from its npm stage -> files in a temporary directory;
- isolation on the shared infrastructure: KSBB_TOPIC_PREFIX (or KSBB_MONGODB_DB on the private broker);
- a single local broker: replication factor and min.insync.replicas capped at 1 where topics are created.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from ksbb_contracts.topics import TOPICS, all_topics_with_dlqs
from ksbb_kit.testing.identity import IdentityInfra
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.waiting import eventually

from tests.deploy.conftest import (
    ROOT,
    SERVICES,
    ContainerProcess,
    ImageRuntime,
    ScramBroker,
    compose_config,
    dashboard_queries,
    describe_topics,
    exported_metric_names,
    free_port,
    generated_secret,
    image_runtime,
    is_loopback,
    kustomize_build,
    listening_addresses,
    promql_metric_names,
    requires_secret_key,
    rule_groups,
    run_compose_topics_init,
)

sys.path.insert(0, str(ROOT / "deploy" / "gateway"))
sys.path.insert(0, str(ROOT / "frontends" / "portal" / "tests"))

from ksbb_gateway.config import load_config
from ksbb_gateway.local import LocalGateway
from ksbb_gateway.render import COMPOSE_CONF, K8S_COMPONENT, MERGED_DOCUMENT, local_paths
from ksbb_gateway.sources import service_documents_async
from portal_testing import allow_origin

from tests.gateway.test_deploy_variants import on_this_machine

T = TypeVar("T")

pytestmark = pytest.mark.integration

K8S = ROOT / "deploy" / "k8s" / "overlays"
# The notifier treats SMTP credentials as optional (a relay without login); every other secret is required.
OPTIONAL_SECRETS = {"KSBB_NOTIFIER_SMTP_USERNAME", "KSBB_NOTIFIER_SMTP_PASSWORD"}
EXTERNAL_METRICS = {"up", "kube_job_status_failed"}
PORTAL = ROOT / "frontends" / "portal"
PORTAL_DOCKERFILE = PORTAL / "Dockerfile"
# The portal image's assets stage runs `npm ci` on frontends/portal/package.json in this folder; `npm ci` in
# frontends/portal gives this machine the same files.
ASSETS_STAGE_WORKDIR = "/build/"
# Where the example files say browsers open the platform and where the identity provider is: mapped to the
# test's gateway and the run's Keycloak (realm ksbb in both).
EXAMPLE_ORIGIN = "https://ksbb.example.org"
EXAMPLE_IDENTITY_PROVIDER = "https://id.example.org"


@dataclass
class Rendered:
    """One service's container as rendered: command, environment, probe, port, secrets and mounted files."""

    service: str
    command: list[str]
    env: dict[str, str]
    http_port: int
    readiness: tuple[str, int]
    secret_env: set[str] = field(default_factory=set)
    files: dict[str, str] = field(default_factory=dict)  # mounted path -> content


# ------------------------------------------------------------------------------- rendering --


def image_defaults(dockerfile: Path) -> tuple[ImageRuntime, dict[str, str]]:
    """What an image built from `dockerfile` brings into a container: its runtime (entry point, command,
    environment) and the files its last stage copies from the browser-assets stage, as they are on this machine."""
    image = image_runtime(dockerfile)
    if any(s.startswith(ASSETS_STAGE_WORKDIR) for s in image.copied_from_stages.values()):
        assert f"WORKDIR {ASSETS_STAGE_WORKDIR.rstrip('/')}" in dockerfile.read_text(encoding="utf-8"), (
            f"{dockerfile}: the assets stage no longer builds in {ASSETS_STAGE_WORKDIR}")
    files = {}
    for target, source in image.copied_from_stages.items():
        if not source.startswith(ASSETS_STAGE_WORKDIR):
            continue  # the virtual environment: this workspace's own
        local = PORTAL / source.removeprefix(ASSETS_STAGE_WORKDIR)
        assert local.is_file(), f"{local} is missing (the image copies it from npm): run `npm ci` in {PORTAL}"
        files[target] = local.read_text(encoding="utf-8")
    return image, files


def _image_environment(image: ImageRuntime) -> dict[str, str]:
    """The image's ENV under the container's own (PATH is the local virtual environment's)."""
    return {k: v for k, v in image.env.items() if k != "PATH"}


def compose_containers(rendered: dict[str, Any], names: tuple[str, ...] = SERVICES) -> dict[str, Rendered]:
    """Containers of a `docker compose config` result: the image's entry point, command and ENV under what
    the compose file sets, as a container runtime combines them."""
    out = {}
    for service in names:
        svc = rendered["services"][service]
        image, files = image_defaults(Path(svc["build"]["context"]) / svc["build"]["dockerfile"])
        # compose: `entrypoint` replaces the image's and drops its CMD; `command` replaces the CMD
        entrypoint = svc.get("entrypoint") or image.entrypoint
        command = svc["command"] if svc.get("command") is not None else ([] if svc.get("entrypoint") else image.cmd)
        env = _image_environment(image) | {k: str(v) for k, v in svc["environment"].items() if v is not None}
        check = " ".join(svc["healthcheck"]["test"])
        match = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", check)
        assert match, f"{service}: no HTTP readiness check in {check}"
        out[service] = Rendered(
            service=service, command=[*entrypoint, *command], env=env,
            http_port=int(svc["expose"][0]), readiness=(match.group(2), int(match.group(1))),
            secret_env={k for k in env if re.search(r"SECRET|PASSWORD", k)}, files=files,
        )
    return out


def k8s_containers(docs: list[dict[str, Any]], secrets: dict[tuple[str, str], str],
                   names: tuple[str, ...] = SERVICES) -> dict[str, Rendered]:
    """Containers of a kustomize build (the four services, or those named), with Secret values supplied by the
    test; the image's entry point, command and ENV where the manifest does not set them."""
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    out = {}
    for doc in docs:
        service = doc["metadata"]["name"].removeprefix("ksbb-")
        if doc["kind"] != "Deployment" or service not in names:  # e.g. the gateway's own Deployment
            continue
        pod = doc["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        image, image_files = image_defaults(PORTAL_DOCKERFILE if service == "portal" else ROOT / "Dockerfile")
        # Kubernetes: `command` replaces the image's ENTRYPOINT (and drops its CMD), `args` replaces the CMD
        command = c.get("command") or image.entrypoint
        args = c["args"] if c.get("args") is not None else ([] if c.get("command") else image.cmd)
        env: dict[str, str] = _image_environment(image)
        for source in c.get("envFrom", []):  # `env` below wins over envFrom, as in Kubernetes
            env.update(configmaps[source["configMapRef"]["name"]])
        secret_env = set()
        for entry in c.get("env", []):
            if "value" in entry:
                env[entry["name"]] = str(entry["value"])
            else:
                ref = entry["valueFrom"]["secretKeyRef"]
                env[entry["name"]] = secrets[(ref["name"], ref["key"])]
                secret_env.add(entry["name"])
        files = dict(image_files)
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for mount in c.get("volumeMounts", []):
            secret = volumes[mount["name"]].get("secret")
            if secret:
                for item in secret["items"]:
                    files[f"{mount['mountPath']}/{item['path']}"] = secrets[(secret["secretName"], item["key"])]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        probe = c["readinessProbe"]["httpGet"]
        port = probe["port"] if isinstance(probe["port"], int) else ports[probe["port"]]
        out[service] = Rendered(service=service, command=[*command, *args], env=env,
                                http_port=ports["http"], readiness=(probe["path"], port), secret_env=secret_env,
                                files=files)
    assert set(out) == set(names)
    return out


# --------------------------------------------------------------------------------- running --


@dataclass
class Mapping:
    """How rendered host names, ports and files become local ones."""

    replacements: list[tuple[str, str]]
    extra_env: Callable[[str], dict[str, str]]
    files_dir: Path

    def environment(self, rendered: Rendered, port: int) -> dict[str, str]:
        """The rendered environment with endpoints, port and mounted files mapped to local ones."""
        env = {}
        # a file's folder too (e.g. the image's vendor folder named in the ENV), longest path first
        paths = sorted({*rendered.files, *(str(Path(f).parent) for f in rendered.files)}, key=len, reverse=True)
        in_container = re.compile("|".join(map(re.escape, paths))) if paths else None
        for name, value in rendered.env.items():
            for old, new in self.replacements:
                value = value.replace(old, new)
            if in_container is not None:  # one pass: a local path is never mapped again
                value = in_container.sub(
                    lambda m: str(self.files_dir / rendered.service / m.group(0).lstrip("/")), value)
            env[name] = value
        assert rendered.env["KSBB_HTTP_PORT"] == str(rendered.http_port) == str(rendered.readiness[1]), (
            f"{rendered.service}: KSBB_HTTP_PORT, the container port and the readiness port disagree")
        env["KSBB_HTTP_PORT"] = str(port)
        for mounted, content in rendered.files.items():
            target = self.files_dir / rendered.service / mounted.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        return {**env, **self.extra_env(rendered.service)}


def start(rendered: Rendered, mapping: Mapping, workdir: Path, processes: list[ContainerProcess],
          drop: str | None = None, override: dict[str, str] | None = None,
          port: int | None = None) -> tuple[ContainerProcess, int]:
    """Start one rendered container as a process (optionally without one variable, or with changed ones)."""
    port = port or free_port()
    env = mapping.environment(rendered, port)
    if drop:
        env.pop(drop)
    env.update(override or {})
    # one folder and log per start: a service started again with other values must not overwrite the first's log
    label = f"{rendered.service}-{drop or ('-'.join(sorted(override)) if override else 'all')}"
    proc = ContainerProcess(label, rendered.command, env, workdir / label).start()
    processes.append(proc)
    return proc, port


def assert_serves(containers: dict[str, Rendered], mapping: Mapping, workdir: Path,
                  processes: list[ContainerProcess],
                  while_running: Callable[[dict[str, int]], None] | None = None) -> set[str]:
    """Start all four, check listening address, readiness, /metrics and a clean stop; the metric names seen.

    `while_running` gets each service's local port, before they are stopped."""
    running = {name: start(rendered, mapping, workdir, processes) for name, rendered in containers.items()}
    metric_names: set[str] = set()
    for name, (proc, port) in running.items():
        path = containers[name].readiness[0]
        ready = proc.wait_http(port, path, timeout=180)
        assert ready.json()["status"] == "ready"
        assert proc.process is not None
        addresses = listening_addresses(proc.process.pid, port)
        assert addresses, f"{name}: no listening socket found on port {port}"
        assert not any(is_loopback(a) for a in addresses), f"{name} listens on {addresses} only"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=15)
        assert metrics.status_code == 200
        metric_names |= exported_metric_names(metrics.text)
    if while_running is not None:
        while_running({name: port for name, (_, port) in running.items()})
    for name, (proc, _) in running.items():
        # uvicorn finishes the shutdown, then re-raises SIGTERM (exit status 143 in a container)
        code = proc.stop(timeout=40)  # terminationGracePeriodSeconds
        assert code in (0, -signal.SIGTERM), f"{name} ended with {code} on SIGTERM:\n{proc.log()[-3000:]}"
        assert "Application shutdown complete" in proc.log(), f"{name} did not shut down cleanly"
    return metric_names


def assert_dashboard_and_alerts_use_exported_metrics(exported: set[str]) -> None:
    """Every metric the dashboard and the alert rules read is on the running services' /metrics pages."""
    recorded = {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}
    for query in dashboard_queries():
        missing = promql_metric_names(query) - exported - EXTERNAL_METRICS
        assert not missing, f"dashboard query reads metrics no service exports: {missing} in {query}"
    for group in rule_groups():
        for rule in group["rules"]:
            missing = promql_metric_names(rule["expr"]) - exported - recorded - EXTERNAL_METRICS
            assert not missing, f"{rule.get('alert') or rule.get('record')} reads unexported metrics {missing}"


def assert_missing_secrets_stop_services(containers: dict[str, Rendered], mapping: Mapping, workdir: Path,
                                         processes: list[ContainerProcess]) -> int:
    """Leave out each required secret in turn: the service exits non-zero naming the variable."""
    cases = [(rendered, name) for rendered in containers.values()
             for name in sorted(rendered.secret_env - OPTIONAL_SECRETS)]
    assert cases
    for batch_start in range(0, len(cases), 4):
        batch = [(start(r, mapping, workdir, processes, drop=name)[0], name)
                 for r, name in cases[batch_start:batch_start + 4]]
        for proc, name in batch:
            code = proc.wait_exit(timeout=90)
            assert code != 0, f"{proc.name} started without {name}"
            assert name in proc.log(), f"{proc.name}: the message does not name {name}:\n{proc.log()[-2000:]}"
    return len(cases)


# ---------------------------------------------------------------------------------- portal --


@dataclass
class PortalDeployment:
    """The portal's rendered container and what of its rendering the test maps to this machine."""

    rendered: Rendered
    gateway_target: str  # the gateway rendering deployed with it ("compose" or "k8s")
    gateway_conf: Path  # that rendering's committed nginx.conf
    gateway_address: str | None = None  # the gateway's fixed address the portal believes X-Forwarded-* from

    def __post_init__(self) -> None:
        env = self.rendered.env
        assert env["KSBB_ENV"] == "production" and env["KSBB_HTTP_HOST"] == "0.0.0.0"
        assert env["KSBB_PORTAL_PUBLIC_ORIGIN"] == EXAMPLE_ORIGIN
        assert env["KSBB_PORTAL_OIDC_ISSUER"].startswith(EXAMPLE_IDENTITY_PROVIDER + "/realms/")
        # the API the portal calls is the gateway of the same deployment
        gateway_port = load_config().target(self.gateway_target).listen.rpartition(":")[2]
        api = env["KSBB_PORTAL_API_URL"]
        wanted = f"http://gateway:{gateway_port}" if self.gateway_target == "compose" else "http://ksbb-gateway"
        assert api == wanted, api
        if self.gateway_address is not None:
            assert env["KSBB_PORTAL_FORWARDED_ALLOW_IPS"] == self.gateway_address


def assert_portal_serves(portal: PortalDeployment, mapping: Mapping, workdir: Path,
                         processes: list[ContainerProcess], service_ports: dict[str, int],
                         identity: IdentityInfra) -> None:
    """Start the portal as rendered behind the gateway's committed rendering (in front of the running services):
    it is ready on a non-loopback address, serves its pages and htmx through the gateway, reads the public needs
    through the gateway, sends sign-in to the run's Keycloak with its client, and stops cleanly."""
    config = load_config()
    portal_port = free_port()
    gateway = LocalGateway(Path(tempfile.mkdtemp(prefix="ksbb-deploy-gateway-")), config=config)
    gateway.prepare(in_thread(service_documents_async(config.services)))
    shutil.copyfile(MERGED_DOCUMENT, Path(local_paths(gateway.state).site) / "v1" / "openapi.json")
    upstreams = {name: f"127.0.0.1:{port}" for name, port in service_ports.items()}
    upstreams["portal"] = f"127.0.0.1:{portal_port}"
    conf, url, _ = on_this_machine(portal.gateway_conf.read_text(encoding="utf-8"), gateway, config,
                                   portal.gateway_target, upstreams)
    gateway.use_conf(conf)
    gateway.target = gateway.target.model_copy(update={"listen": url.removeprefix("http://")})
    in_thread(allow_origin(identity, url))  # the test gateway's origin as a redirect target of the client
    try:
        gateway.start()
        replacements = [(portal.rendered.env["KSBB_PORTAL_API_URL"], url), (EXAMPLE_ORIGIN, url),
                        (EXAMPLE_IDENTITY_PROVIDER, identity.keycloak_url)]
        if portal.gateway_address is not None:
            replacements.append((portal.gateway_address, "127.0.0.1"))
        local = dataclasses.replace(mapping, replacements=[*replacements, *mapping.replacements])
        proc, port = start(portal.rendered, local, workdir, processes, port=portal_port)
        ready = proc.wait_http(port, portal.rendered.readiness[0], timeout=120)
        assert ready.json()["status"] == "ready"
        assert proc.process is not None
        addresses = listening_addresses(proc.process.pid, port)
        assert addresses and not any(is_loopback(a) for a in addresses), f"portal listens on {addresses}"
        _assert_portal_pages(url, gateway, service_ports, portal.rendered, identity)
        code = proc.stop(timeout=40)
        assert code in (0, -signal.SIGTERM), f"portal ended with {code} on SIGTERM:\n{proc.log()[-3000:]}"
        assert "Application shutdown complete" in proc.log(), "the portal did not shut down cleanly"
    finally:
        gateway.stop()
        shutil.rmtree(gateway.state, ignore_errors=True)
        in_thread(allow_origin(identity, url, remove=True))


def _assert_portal_pages(url: str, gateway: LocalGateway, service_ports: dict[str, int], rendered: Rendered,
                         identity: IdentityInfra) -> None:
    """What a browser sees of the portal through the gateway."""
    with httpx.Client(timeout=30) as browser:
        home = browser.get(f"{url}/portal/")
        assert home.status_code == 200 and home.headers["content-type"].startswith("text/html"), home.text[:500]
        # the public needs page: the portal reads the public API through the gateway (one request id for both)
        request_id = f"deploy-portal-{generated_secret()[:12]}"
        needs = browser.get(f"{url}/portal/needs", headers={"X-Request-ID": request_id})
        assert needs.status_code == 200, f"{needs.status_code}: {needs.text[:500]}"
        assert 'lang="id"' in needs.text and "/portal/needs" in needs.text
        seen = _gateway_requests(gateway, request_id, want=2)
        assert (seen[0]["uri"], seen[0]["upstream"]) == ("/v1/public/needs", f"127.0.0.1:{service_ports['publisher']}")
        assert seen[0]["status"] == 200
        assert (seen[1]["uri"], seen[1]["status"]) == ("/portal/needs", 200)
        # htmx as the image ships it (copied from npm into the folder the image's ENV names)
        htmx = browser.get(f"{url}/portal/static/htmx.min.js")
        assert htmx.status_code == 200
        assert htmx.text == rendered.files[f"{rendered.env['KSBB_PORTAL_VENDOR_DIR']}/htmx.min.js"]

        # a donor page sends an anonymous visitor to sign in, and sign-in to the provider's authorisation
        # endpoint with the portal's client, PKCE and the callback at the origin browsers open
        mine = browser.get(f"{url}/portal/my/pledges")
        assert mine.status_code in (302, 303) and mine.headers["location"].startswith("/portal/auth/sign-in")
        sign_in = browser.get(f"{url}{mine.headers['location']}")
        assert sign_in.status_code in (302, 303), sign_in.text[:500]
        discovery = browser.get(f"{identity.issuer}/.well-known/openid-configuration").json()
        target = sign_in.headers["location"]
        assert target.startswith(discovery["authorization_endpoint"] + "?"), target
        query = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
        assert query["client_id"] == "ksbb-portal" and query["response_type"] == "code"
        assert query["redirect_uri"] == f"{url}/portal/auth/callback"
        assert query["code_challenge_method"] == "S256" and query["code_challenge"]
        # Keycloak knows the client and accepts that callback: it shows its sign-in form
        form = browser.get(target)
        assert form.status_code == 200 and 'id="kc-form-login"' in form.text, form.text[:1000]


def _gateway_requests(gateway: LocalGateway, request_id: str, want: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The gateway's access-log entries of one request id, in the order they finished."""
    deadline = time.monotonic() + timeout
    while True:
        found = [entry for entry in (json.loads(line) for line in gateway.log_lines("access.log"))
                 if entry["request_id"] == request_id]
        if len(found) >= want or time.monotonic() > deadline:
            assert len(found) == want, f"gateway log of {request_id}: {found}"
            return found
        time.sleep(0.2)


# ---------------------------------------------------------------------------------- compose --


def _compose_env_file(tmp_path: Path) -> Path:
    """env.example with every example secret replaced by a generated one."""
    lines = []
    for line in (ROOT / "deploy" / "compose" / "env.example").read_text(encoding="utf-8").splitlines():
        name, sep, _ = line.partition("=")
        if line.startswith("#") or not sep:
            continue
        lines.append(f"{name}={generated_secret()}" if re.search(r"SECRET|PASSWORD", name) else line)
    path = tmp_path / "compose.env"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_compose_stack_starts_and_serves(infra: Infra, namespace: str, tmp_path: Path,
                                               processes: list[ContainerProcess],
                                               identity_infra: IdentityInfra) -> None:
    rendered = compose_config(_compose_env_file(tmp_path))  # docker-compose.yml alone: production
    # topics: the topics-init one-shot, as rendered (its script is bind-mounted into the Kafka image)
    init = rendered["services"]["topics-init"]
    assert init["entrypoint"][:1] == ["/bin/sh"]
    (mount,) = [v for v in init["volumes"] if v["target"] == init["entrypoint"][1]]
    assert Path(mount["source"]) == ROOT / "deploy" / "compose" / "topics-init.sh"
    bootstrap = init["environment"]["KAFKA_BOOTSTRAP"]
    output = run_compose_topics_init(infra.kafka_bootstrap if bootstrap == "kafka:9092" else bootstrap, namespace,
                                     tmp_path, replication=init["environment"]["REPLICATION_FACTOR"])
    assert f"topics-init: {len(all_topics_with_dlqs())} topics present" in output
    wanted = {namespace + t.name: t for t in all_topics_with_dlqs()}
    found = await eventually(lambda: _all_described(infra.kafka_bootstrap, list(wanted)), within=30,
                             what="topics-init's topics in the broker's metadata")
    assert set(found) == set(wanted)
    for name, topic in wanted.items():
        assert found[name]["partitions"] == topic.partitions, name
        for key, value in topic.config(1).items():
            assert found[name]["config"][key] == value, f"{name}: {key}"

    containers = compose_containers(rendered)
    for rendered_service in containers.values():
        assert rendered_service.env["KSBB_ENV"] == "production"
    (portal_rendered,) = compose_containers(rendered, ("portal",)).values()
    assert Path(rendered["services"]["portal"]["build"]["context"]) / rendered["services"]["portal"]["build"][
        "dockerfile"] == PORTAL_DOCKERFILE
    portal = PortalDeployment(portal_rendered, "compose", COMPOSE_CONF,
                              gateway_address=rendered["services"]["gateway"]["networks"]["default"]["ipv4_address"])
    mapping = Mapping(
        replacements=[(containers["registry"].env["KSBB_MONGODB_URL"], infra.mongodb_url),
                      ("kafka:9092", infra.kafka_bootstrap)],
        extra_env=lambda _service: {"KSBB_TOPIC_PREFIX": namespace},
        files_dir=tmp_path / "files",
    )
    assert portal_rendered.env["KSBB_MONGODB_URL"] == containers["registry"].env["KSBB_MONGODB_URL"]
    exported = assert_serves(
        containers, mapping, tmp_path, processes,
        while_running=lambda ports: assert_portal_serves(portal, mapping, tmp_path, processes, ports, identity_infra))
    assert_dashboard_and_alerts_use_exported_metrics(exported)

    # the example values of env.example are refused in production, naming the variable to set
    example = {k: v for k, v in (line.split("=", 1) for line in (ROOT / "deploy" / "compose" / "env.example")
               .read_text(encoding="utf-8").splitlines() if "=" in line and not line.startswith("#"))}
    refused = []
    for service, rendered_service in containers.items():
        if not requires_secret_key(service):
            continue
        value = example[f"KSBB_{service.upper()}_SECRET_KEY"]
        proc, _ = start(rendered_service, mapping, tmp_path, processes, override={"KSBB_SECRET_KEY": value})
        refused.append((proc, "KSBB_SECRET_KEY"))
    # the portal's own secrets, given as docker-compose.yml passes env.example's values on
    for variable, example_name in (("KSBB_PORTAL_SECRET_KEY", "KSBB_PORTAL_SECRET_KEY"),
                                   ("KSBB_PORTAL_OIDC_CLIENT_SECRET", "KSBB_OIDC_PORTAL_SECRET")):
        assert variable in portal_rendered.secret_env
        proc, _ = start(portal_rendered, mapping, tmp_path, processes, override={variable: example[example_name]})
        refused.append((proc, variable))
    assert len(refused) >= 3
    for proc, variable in refused:
        assert proc.wait_exit(timeout=90) != 0, f"{proc.name} accepted an env.example value of {variable}"
        assert variable in proc.log() and "placeholder, example or development value" in proc.log(), proc.log()


# ------------------------------------------------------------------------------- kubernetes --


def _generated_secrets(docs: list[dict[str, Any]],
                       names: tuple[str, ...] = SERVICES) -> dict[tuple[str, str], str]:
    """A generated value for every (Secret, key) the rendered Deployments (of the four, or those named) reference."""
    refs: dict[tuple[str, str], str] = {}
    for doc in docs:
        if doc["kind"] != "Deployment" or doc["metadata"]["name"].removeprefix("ksbb-") not in names:
            continue
        pod = doc["spec"]["template"]["spec"]
        for entry in pod["containers"][0].get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs[(ref["name"], ref["key"])] = generated_secret()
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                for item in volume["secret"]["items"]:
                    refs[(volume["secret"]["secretName"], item["key"])] = generated_secret()
    return refs


async def test_minimal_overlay_starts_and_serves(infra: Infra, namespace: str, tmp_path: Path,
                                                 processes: list[ContainerProcess]) -> None:
    docs = kustomize_build(K8S / "minimal")
    secrets = _generated_secrets(docs)
    for key in list(secrets):
        if key[1].endswith("-mongodb-url"):
            secrets[key] = infra.mongodb_url
    containers = k8s_containers(docs, secrets)
    bootstrap = containers["registry"].env["KSBB_KAFKA_BOOTSTRAP"]
    mapping = Mapping(replacements=[(bootstrap, infra.kafka_bootstrap)],
                      extra_env=lambda _service: {"KSBB_TOPIC_PREFIX": namespace}, files_dir=tmp_path / "files")

    # topics: the rendered Job, run like the services (one local broker: replication 1)
    (job,) = [d for d in docs if d["kind"] == "Job"]
    configmaps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    (c,) = job["spec"]["template"]["spec"]["containers"]
    job_env = {k: v.replace(bootstrap, infra.kafka_bootstrap)
               for k, v in configmaps[c["envFrom"][0]["configMapRef"]["name"]].items()}
    assert job_env["KSBB_KAFKA_REPLICATION_FACTOR"] == "3"
    job_env |= {"KSBB_KAFKA_REPLICATION_FACTOR": "1", "KSBB_TOPIC_PREFIX": namespace}
    topics_job = ContainerProcess("topics-job", c["command"], job_env, tmp_path / "topics-job").start()
    processes.append(topics_job)
    assert topics_job.wait_exit(timeout=120) == 0, topics_job.log()
    wanted = [namespace + t.name for t in all_topics_with_dlqs()]
    # creation is acknowledged before every broker's metadata shows the topic: poll briefly
    found = await eventually(lambda: _all_described(infra.kafka_bootstrap, wanted), within=30,
                             what="the Job's topics in the broker's metadata")
    assert set(found) == set(wanted)

    assert_serves(containers, mapping, tmp_path, processes)


async def _all_described(bootstrap: str, names: list[str]) -> dict[str, dict[str, Any]] | None:
    found = await describe_topics(bootstrap, names)
    return found if len(found) == len(names) else None


async def _apply_kafka_topics(docs: list[dict[str, Any]], bootstrap: str) -> None:
    """What Strimzi's topic operator does with the rendered KafkaTopics (one broker: replication 1)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        for doc in docs:
            if doc["kind"] != "KafkaTopic" or doc["spec"]["topicName"] in existing:
                continue
            spec = doc["spec"]
            config = {k: str(v) for k, v in spec["config"].items()} | {"min.insync.replicas": "1"}
            await admin.create_topics([NewTopic(spec["topicName"], spec["partitions"], 1, topic_configs=config)])
    finally:
        await admin.close()


def in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code called inside the test's event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _groups_joined(bootstrap: str, groups: tuple[str, ...], timeout: float = 120) -> None:
    """Every service's consumer group exists: the service joined it (needing its rendered group and topic ACLs)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            known = {entry[0] for entry in await admin.list_consumer_groups()}
            if set(groups) <= known:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"consumer groups never joined: {set(groups) - known}")
            await asyncio.sleep(1)
    finally:
        await admin.close()


async def test_example_overlay_starts_and_serves_on_scram_over_tls(
    infra: Infra, namespace: str, tmp_path: Path, scram_broker: ScramBroker, processes: list[ContainerProcess],
    identity_infra: IdentityInfra,
) -> None:
    docs = kustomize_build(K8S / "example")
    await _apply_kafka_topics(docs, scram_broker.plain)
    secrets = _generated_secrets(docs, (*SERVICES, "portal"))
    for service in SERVICES:
        secrets[(f"ksbb-{service}", "password")] = scram_broker.users[f"ksbb-{service}"]
    # every MongoDB URL is a connection string the operator writes for that user, the portal's too
    assert ("ksbb-mongodb-portal", "connectionString.standard") in secrets
    assert not [key for key in secrets if key[1].endswith("mongodb-url")]
    for key in secrets:
        if key[1] == "connectionString.standard":
            secrets[key] = infra.mongodb_url
    secrets[("ksbb-cluster-ca-cert", "ca.crt")] = scram_broker.ca_file.read_text()
    containers = k8s_containers(docs, secrets)
    (portal_rendered,) = k8s_containers(docs, secrets, ("portal",)).values()
    portal = PortalDeployment(portal_rendered, "k8s", K8S_COMPONENT / "nginx.conf")
    registry_env = containers["registry"].env
    assert registry_env["KSBB_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert registry_env["KSBB_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    database_prefix = namespace.replace(".", "_")
    mapping = Mapping(
        replacements=[(registry_env["KSBB_KAFKA_BOOTSTRAP"], scram_broker.sasl_ssl),
                      (EXAMPLE_IDENTITY_PROVIDER, identity_infra.keycloak_url)],
        extra_env=lambda service: {"KSBB_MONGODB_DB": f"{database_prefix}ksbb_{service}"},
        files_dir=tmp_path / "files",
    )

    def while_running(ports: dict[str, int]) -> None:
        in_thread(_groups_joined(scram_broker.plain, SERVICES))
        assert_portal_serves(portal, mapping, tmp_path, processes, ports, identity_infra)

    exported = assert_serves(containers, mapping, tmp_path, processes, while_running=while_running)
    assert {"ksbb_consumer_lag_records", "ksbb_http_requests_total"} <= exported
    assert_dashboard_and_alerts_use_exported_metrics(exported)
    checked = assert_missing_secrets_stop_services({**containers, "portal": portal_rendered}, mapping, tmp_path,
                                                   processes)
    # MongoDB URL and Kafka password of each service, the secret key of those using one (the notifier), and the
    # portal's MongoDB URL, secret key and OIDC client secret
    assert checked >= 2 * len(SERVICES) + sum(requires_secret_key(s) for s in SERVICES) + 3
    assert {t.name for t in TOPICS.values()} <= {d["spec"]["topicName"] for d in docs if d["kind"] == "KafkaTopic"}
