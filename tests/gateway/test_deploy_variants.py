"""The compose and Kubernetes renderings run: the same nginx.conf started with real nginx, the manifests built.

Containers cannot run here (no Docker engine), so the committed container configuration is started with
the local nginx after swapping only what differs on this machine: listen ports, service addresses and the
container's file paths. Everything else — routes, limits, CORS, headers — is exactly what ships.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from ksbb_gateway.config import GatewayConfig
from ksbb_gateway.local import LocalGateway, free_port
from ksbb_gateway.render import (
    COMPOSE_CONF,
    CONTAINER_PATHS,
    IMAGE_SITE,
    K8S_COMPONENT,
    MERGED_DOCUMENT,
    ROOT,
    VENDOR_FILES,
    local_paths,
)
from ksbb_gateway.testing import Platform
from ksbb_kit.testing.waiting import eventually

TOOLS_CACHE = Path(os.environ.get("KSBB_TOOLS_CACHE", Path.home() / ".cache" / "ksbb-tools"))


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"the rendering no longer contains {old!r}"
    return text.replace(old, new)


def on_this_machine(conf: str, gateway: LocalGateway, config: GatewayConfig, target: str,
                    upstreams: dict[str, str]) -> tuple[str, str, str]:
    """A container configuration with this machine's ports, service addresses and paths; returns it + URLs."""
    paths = local_paths(gateway.state)
    listen, probes = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    rendered = config.target(target)
    conf = _replace(conf, f"pid {CONTAINER_PATHS.pid};", f"pid {paths.pid};")
    conf = _replace(conf, f"error_log {CONTAINER_PATHS.error_log} warn;", f"error_log {paths.error_log} warn;")
    conf = _replace(conf, f"access_log {CONTAINER_PATHS.access_log} ksbb_json;",
                    f"access_log {paths.access_log} ksbb_json;")
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        conf = _replace(conf, f" {CONTAINER_PATHS.temp}/{kind};", f" {paths.temp}/{kind};")
    conf = _replace(conf, f"root {IMAGE_SITE};", f"root {paths.site};")
    conf = _replace(conf, f"listen {rendered.listen};", f"listen {listen};")
    assert rendered.health_listen
    conf = _replace(conf, f"listen {rendered.health_listen};", f"listen {probes};")
    for name, address in rendered.upstreams.items():
        # Upstreams not running in this test (e.g. a frontend) get a loopback port nobody listens on.
        conf = _replace(conf, f"server {address};", f"server {upstreams.get(name, f'127.0.0.1:{free_port()}')};")
    return conf, f"http://{listen}", f"http://{probes}"


@pytest.mark.integration
@pytest.mark.parametrize("target, conf_path", [("compose", COMPOSE_CONF), ("k8s", K8S_COMPONENT / "nginx.conf")])
async def test_the_committed_container_configuration_serves_the_platform(
    stack: Platform, documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig,
    target: str, conf_path: Path,
) -> None:
    gateway = LocalGateway(Path(tempfile.mkdtemp(prefix="ksbb-gateway-")), config=gateway_config)
    gateway.prepare(documents)
    shutil.copyfile(MERGED_DOCUMENT, Path(local_paths(gateway.state).site) / "v1" / "openapi.json")
    shipped = conf_path.read_text()  # noqa: ASYNC240 - a small file, read once
    conf, url, probes = on_this_machine(shipped, gateway, gateway_config, target, stack.upstreams())
    gateway.use_conf(conf)
    gateway.target = gateway.target.model_copy(update={"listen": url.removeprefix("http://")})
    gateway.start()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(f"{probes}/healthz")).json() == {"status": "ok"}
            assert (await client.get(f"{probes}/readyz")).status_code == 200
            assert (await client.get(f"{probes}/v1/public/stats")).status_code == 404
            assert (await client.get(f"{url}/v1/openapi.json")).json() == json.loads(MERGED_DOCUMENT.read_text())
            assert (await client.get(f"{url}/docs")).status_code == 200
            assert (await client.get(f"{url}/healthz")).status_code == 404
            stats = await client.get(f"{url}/v1/public/stats")
            assert stats.status_code == 200
            assert ("strict-transport-security" in stats.headers) == (target == "k8s")
            for path, owner in (("/v1/areas", "registry"), ("/v1/needs/n1/ledger", "pledges"),
                                ("/v1/webhooks/endpoints", "notifier"), ("/", "publisher")):
                response = await client.get(f"{url}{path}")
                request_id = response.headers["x-request-id"]
                lines = await eventually(lambda rid=request_id: stack.log.access(rid), within=10, what=path)
                assert [line["service"] for line in lines] == [owner], path
    finally:
        gateway.stop()
        shutil.rmtree(gateway.state, ignore_errors=True)


# ---- the manifests and the image -------------------------------------------------------------------


def _kustomize(overlay: Path) -> list[dict[str, Any]]:
    binary = os.environ.get("KSBB_KUSTOMIZE") or str(TOOLS_CACHE / "kustomize-v5.7.1" / "kustomize")
    if Path(binary).is_file():
        command = [binary, "build", str(overlay)]
    elif shutil.which("kubectl"):
        command = ["kubectl", "kustomize", str(overlay)]
    else:
        pytest.fail("kustomize not found: run `make deploy-tools` (or install kubectl)", pytrace=False)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.unit
def test_the_kubernetes_component_builds_valid_manifests_with_the_rendered_configuration(tmp_path: Path) -> None:
    tree = tmp_path / "k8s"
    shutil.copytree(ROOT / "deploy" / "k8s", tree)
    overlay = tree / "overlays" / "gateway-check"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["../../base"], "components": ["../../components/gateway"]}))
    documents = _kustomize(overlay)
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(documents))
    validator = shutil.which("kubernetes-validate") or str(Path(sys.executable).parent / "kubernetes-validate")
    checked = subprocess.run([validator, "--strict", "--quiet", str(tmp_path / "all.yaml")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    (nginx_conf,) = [c for c in by_kind["ConfigMap"] if c["metadata"]["name"].startswith("ksbb-gateway-nginx")]
    assert nginx_conf["data"]["nginx.conf"] == (K8S_COMPONENT / "nginx.conf").read_text()
    (shared,) = [c for c in by_kind["ConfigMap"] if c["metadata"]["name"].startswith("ksbb-config")]
    assert shared["data"]["KSBB_FORWARDED_ALLOW_IPS"] == "10.0.0.0/8"
    assert shared["data"]["KSBB_REGISTRY_ROOT_PATH"] == "/svc/registry"
    (deployment,) = [d for d in by_kind["Deployment"] if d["metadata"]["name"] == "ksbb-gateway"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"].startswith("ksbb-gateway:")
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "probes"}
    assert {v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v} == {nginx_conf["metadata"]["name"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (ingress,) = by_kind["Ingress"]
    (rule,) = ingress["spec"]["rules"]
    assert [p["backend"]["service"]["name"] for p in rule["http"]["paths"]] == ["ksbb-gateway"]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


@pytest.mark.unit
def test_the_gateway_image_ships_the_rendered_files_and_passes_hadolint() -> None:
    dockerfile = ROOT / "deploy" / "gateway" / "Dockerfile"
    text = dockerfile.read_text()
    lines = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(lines) == 2 and lines[-1].startswith("FROM nginx:1.") and ":latest" not in text
    assert "COPY compose/nginx.conf /etc/nginx/ksbb/nginx.conf" in text and "COPY site/" in text
    for name in VENDOR_FILES:
        assert f"swagger-ui-dist/{name}" in text, name
    assert "--ignore-scripts" in text and "USER 101" in text
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    ignored = (ROOT / "deploy" / "gateway" / ".dockerignore").read_text()
    assert "node_modules" in ignored


@pytest.mark.unit
def test_docker_compose_runs_the_gateway_image_in_front_of_the_services() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    gateway = compose["services"]["gateway"]
    assert gateway["build"]["context"] == "deploy/gateway"
    assert (ROOT / gateway["build"]["context"] / "Dockerfile").is_file()
    assert set(gateway["depends_on"]) == {"registry", "pledges", "notifier", "publisher", "portal"}
    assert all(d["condition"] == "service_healthy" for d in gateway["depends_on"].values())
    assert gateway["read_only"] is True and gateway["cap_drop"] == ["ALL"]
    assert "8080" in [str(p) for p in gateway["expose"]]
