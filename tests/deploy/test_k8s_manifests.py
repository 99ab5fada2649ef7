"""Static checks of the kustomize tree under deploy/k8s (no cluster needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SERVICES = ("registry", "pledges", "notifier", "publisher")


def _documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.rglob("*.y*ml")):
        with path.open(encoding="utf-8") as fh:
            for doc in yaml.safe_load_all(fh):
                if doc:
                    docs.append((path, doc))
    return docs


DOCS = _documents()


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in DOCS if doc.get("kind") == kind]


def _by_name(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in _of_kind(kind)}


def _containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def test_all_yaml_parses_and_has_a_kind() -> None:
    assert DOCS, "no manifests found"
    for path, doc in DOCS:
        assert "kind" in doc and "apiVersion" in doc, f"{path.relative_to(ROOT)}: missing kind/apiVersion"


def test_kustomization_resources_exist() -> None:
    for path, doc in DOCS:
        if doc["kind"] not in {"Kustomization", "Component"}:
            continue
        for ref in [*doc.get("resources", []), *doc.get("components", [])]:
            assert (path.parent / ref).exists(), f"{path.relative_to(ROOT)} references missing {ref}"


def test_one_deployment_service_and_account_per_service() -> None:
    deployments, services, accounts = _by_name("Deployment"), _by_name("Service"), _by_name("ServiceAccount")
    for name in SERVICES:
        full = f"ksbb-{name}"
        assert full in deployments and full in services and full in accounts, f"{full} incomplete"
        pod = deployments[full]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == full
        selector = services[full]["spec"]["selector"]
        labels = deployments[full]["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), f"Service {full} selects no pod of its Deployment"


@pytest.mark.parametrize("deployment", _of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_deployment_probes_resources_security(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    pod_sc = pod.get("securityContext", {})
    for c in pod["containers"]:
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", c["name"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", c["name"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{c['name']}: {kind} incomplete"
        sc = c.get("securityContext", {})
        assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, c["name"]
        assert sc.get("readOnlyRootFilesystem") is True, c["name"]
        assert sc.get("allowPrivilegeEscalation") is False, c["name"]


@pytest.mark.parametrize("deployment", _of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_deployment_env_from_config_and_secret(deployment: dict[str, Any]) -> None:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {"configMapRef": {"name": "ksbb-config"}} in c["envFrom"]
    env = c.get("env", [])
    secret_refs = {
        e["valueFrom"]["secretKeyRef"]["name"] for e in env if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert secret_refs == {"ksbb-secrets"}
    literal = {e["name"]: e.get("value") for e in c.get("env", []) if "value" in e}
    assert not any(word in name for name in literal for word in ("SECRET", "PASSWORD", "TOKEN", "KEY"))


def test_secret_is_referenced_but_not_defined() -> None:
    assert not [d for d in _of_kind("Secret") if d["metadata"]["name"] == "ksbb-secrets"]


def test_topics_init_job() -> None:
    jobs = _by_name("Job")
    job = jobs["ksbb-topics-init"]
    pod = job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["command"] == ["ksbb", "topics", "create"]
    assert c["image"].startswith("ksbb-registry")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"cpu", "memory"} <= set(c["resources"]["limits"])


def test_hpa_component_covers_each_service() -> None:
    hpas = _by_name("HorizontalPodAutoscaler")
    deployments = _by_name("Deployment")
    assert set(hpas) == {f"ksbb-{s}" for s in SERVICES}
    for name, hpa in hpas.items():
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment" and ref["name"] in deployments, name
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    component = yaml.safe_load((K8S / "components" / "hpa" / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
