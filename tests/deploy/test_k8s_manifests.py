"""Every Kubernetes overlay rendered with the real kustomize, core kinds validated strictly
(kubernetes-validate), and the platform's rules checked on what would be applied: probes and security,
pinned images, secrets only referenced, autoscaling bounded by the contracts' partitions, topics and users
from the contracts, MongoDB replica set, NetworkPolicies. Starting what they render: test_deploy_runs.py.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from ksbb_contracts.topics import TOPICS, all_topics_with_dlqs, topics_consumed_by
from ksbb_kit.topics_render import followed_by

from tests.deploy.conftest import ROOT, SERVICES, kustomize_build, requires_secret_key

pytestmark = pytest.mark.unit

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
CORE_GROUPS = ("v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1")
HTTP_HEAVY = ("registry", "pledges")  # CPU HPA
CONSUMER_HEAVY = ("notifier", "publisher")  # KEDA on consumer lag
PRIVATE_V4 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10"]
PRIVATE_V6 = ["fc00::/7", "fe80::/10", "::1/128"]


@functools.cache
def rendered(overlay: Path) -> tuple[dict[str, Any], ...]:
    """What `kustomize build` renders for an overlay (cached for the module)."""
    return tuple(kustomize_build(overlay))


def of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    """Documents of one kind by name."""
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def service_deployments(docs: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    """The four services' Deployments (an overlay may add others, e.g. the gateway)."""
    return {name: d for name, d in of_kind(docs, "Deployment").items() if name.removeprefix("ksbb-") in SERVICES}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    """The one container of a KSBB Deployment."""
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


overlay_ids = [p.name for p in OVERLAYS]


def test_there_are_overlays_and_the_base_builds() -> None:
    assert {"example", "minimal"} <= set(overlay_ids)
    assert of_kind(tuple(kustomize_build(K8S / "base")), "Deployment")


@pytest.mark.parametrize("overlay", OVERLAYS, ids=overlay_ids)
def test_core_kinds_validate_strictly(overlay: Path) -> None:
    version = kubernetes_validate.latest_version()
    checked = 0
    for doc in rendered(overlay):
        if doc["apiVersion"] in CORE_GROUPS:
            kubernetes_validate.validate(doc, version, strict=True)
            checked += 1
    assert checked >= 12


@pytest.mark.parametrize("overlay", OVERLAYS, ids=overlay_ids)
def test_one_deployment_service_and_account_per_service(overlay: Path) -> None:
    docs = rendered(overlay)
    deployments, services, accounts = of_kind(docs, "Deployment"), of_kind(docs, "Service"), of_kind(
        docs, "ServiceAccount")
    for name in SERVICES:
        full = f"ksbb-{name}"
        assert full in deployments and full in services and full in accounts, f"{full} incomplete"
        pod = deployments[full]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == full
        selector = services[full]["spec"]["selector"]
        assert selector.items() <= deployments[full]["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("overlay", OVERLAYS, ids=overlay_ids)
def test_containers_listen_on_the_pod_address_with_probes_resources_and_security(overlay: Path) -> None:
    for name, deployment in service_deployments(rendered(overlay)).items():
        pod = deployment["spec"]["template"]["spec"]
        c = container(deployment)
        assert c["command"] == [name], "the manifest names the service's entry point"
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["KSBB_HTTP_HOST"] == "0.0.0.0", f"{name} would listen on loopback only"
        (port,) = [p for p in c["ports"] if p["name"] == "http"]
        assert env["KSBB_HTTP_PORT"] == str(port["containerPort"])
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{name}: {kind} incomplete"
        sc = c["securityContext"]
        assert sc.get("runAsNonRoot", pod["securityContext"].get("runAsNonRoot")) is True
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("overlay", OVERLAYS, ids=overlay_ids)
def test_images_are_pinned(overlay: Path) -> None:
    for doc in rendered(overlay):
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        for c in doc["spec"]["template"]["spec"]["containers"]:
            image = c["image"]
            assert re.search(r"(:v?\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})$", image), (
                f"{doc['metadata']['name']}: {image} is not pinned by version or digest")


@pytest.mark.parametrize("overlay", OVERLAYS, ids=overlay_ids)
def test_secrets_are_referenced_never_defined_and_all_documented(overlay: Path) -> None:
    docs = rendered(overlay)
    assert not of_kind(docs, "Secret"), "Secrets are created outside git"
    documented = (K8S / "README.md").read_text(encoding="utf-8") + (ROOT / "docs" / "operations.md").read_text(
        encoding="utf-8")
    for name, deployment in service_deployments(docs).items():
        c = container(deployment)
        literal = {e["name"] for e in c["env"] if "value" in e}
        assert not [n for n in literal if re.search(r"SECRET|PASSWORD|TOKEN", n)], f"{name}: literal secret"
        for e in c["env"]:
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                service = name.removeprefix("ksbb-")
                forms = {ref["name"], ref["name"].replace(service, "<service>")}
                assert ref["key"] in documented and any(f in documented for f in forms), (
                    f"{name}: secret {ref['name']}/{ref['key']} is not documented")
        # the configuration the services read comes from the generated ConfigMap
        assert c["envFrom"][0]["configMapRef"]["name"].startswith("ksbb-config-")
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("ksbb-config"))
    assert config["data"]["KSBB_ENV"] == "production"
    assert config["data"]["KSBB_KAFKA_CREATE_TOPICS"] == "false"


def test_only_the_notifier_uses_a_secret_key() -> None:
    assert {s for s in SERVICES if requires_secret_key(s)} == {"notifier"}


@pytest.mark.parametrize("overlay", OVERLAYS, ids=overlay_ids)
def test_a_secret_key_goes_only_to_the_services_that_use_one(overlay: Path) -> None:
    for name, deployment in service_deployments(rendered(overlay)).items():
        given = any(e["name"] == "KSBB_SECRET_KEY" for e in container(deployment)["env"])
        assert given == requires_secret_key(name.removeprefix("ksbb-")), name


def _consumed_partitions(service: str) -> int:
    """The widest topic a service's consumer group reads: more replicas than this only idle."""
    return max(t.partitions for t in topics_consumed_by(service))


@pytest.mark.parametrize("overlay", OVERLAYS, ids=overlay_ids)
def test_autoscaling_never_exceeds_the_partitions_it_consumes(overlay: Path) -> None:
    docs = rendered(overlay)
    targets: dict[str, list[str]] = {}
    for hpa in of_kind(docs, "HorizontalPodAutoscaler").values():
        service = hpa["spec"]["scaleTargetRef"]["name"].removeprefix("ksbb-")
        targets.setdefault(service, []).append("hpa")
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= _consumed_partitions(service)
    for scaled in of_kind(docs, "ScaledObject").values():
        service = scaled["spec"]["scaleTargetRef"]["name"].removeprefix("ksbb-")
        targets.setdefault(service, []).append("keda")
        assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
        assert scaled["spec"]["maxReplicaCount"] <= _consumed_partitions(service)
        (kafka,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "kafka"]
        assert kafka["metadata"]["consumerGroup"] == service
        assert kafka["metadata"]["allowIdleConsumers"] == "false"
    assert all(len(kinds) == 1 for kinds in targets.values()), f"two autoscalers on one Deployment: {targets}"
    deployments = of_kind(docs, "Deployment")
    for service in targets:
        assert "replicas" not in deployments[f"ksbb-{service}"]["spec"], f"{service}: autoscaled but pins replicas"


def test_example_scales_http_services_on_cpu_and_consumers_on_lag() -> None:
    docs = rendered(K8S / "overlays" / "example")
    hpas, scaled = of_kind(docs, "HorizontalPodAutoscaler"), of_kind(docs, "ScaledObject")
    assert set(hpas) == {f"ksbb-{s}" for s in HTTP_HEAVY}
    assert set(scaled) == {f"ksbb-{s}" for s in CONSUMER_HEAVY}
    for hpa in hpas.values():
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    auths = of_kind(docs, "TriggerAuthentication")
    for name, obj in scaled.items():
        (kafka,) = [t for t in obj["spec"]["triggers"] if t["type"] == "kafka"]
        auth = auths[kafka["authenticationRef"]["name"]]
        password = next(r for r in auth["spec"]["secretTargetRef"] if r["parameter"] == "password")
        assert password["name"] == name, "the scaler logs in as the service's own Kafka user"


def test_example_declares_every_topic_from_the_contracts() -> None:
    topics = of_kind(rendered(K8S / "overlays" / "example"), "KafkaTopic")
    assert set(topics) == {t.name for t in all_topics_with_dlqs()}
    for topic in all_topics_with_dlqs():
        spec = topics[topic.name]["spec"]
        assert spec["topicName"] == topic.name and spec["partitions"] == topic.partitions
        assert spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == 2
        if topic.confidential:
            assert spec["config"]["cleanup.policy"] == "compact"
            assert spec["config"]["delete.retention.ms"] > 0 and spec["config"]["max.compaction.lag.ms"] > 0
    confidential = [t.name for t in TOPICS.values() if t.confidential]
    assert confidential, "the contracts declare the confidential contact topics"


def test_example_gives_each_service_its_own_kafka_user_with_least_privilege() -> None:
    docs = rendered(K8S / "overlays" / "example")
    users = of_kind(docs, "KafkaUser")
    deployments = of_kind(docs, "Deployment")
    for service in SERVICES:
        user = users[f"ksbb-{service}"]
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        acls = user["spec"]["authorization"]["acls"]
        topic_acls = [a for a in acls if a["resource"]["type"] == "topic"]
        writes = {a["resource"]["name"] for a in topic_acls if "Write" in a["operations"]}
        reads = {a["resource"]["name"] for a in topic_acls if "Read" in a["operations"]}
        owned = {t.name for t in TOPICS.values() if t.owner == service}
        consumed = {t.name for t in topics_consumed_by(service)}
        followed = {t.name for t, _ in followed_by(service)}  # its own topics it reads back (no DLQ)
        assert followed <= owned and reads == consumed | followed
        groups = {a["resource"]["name"] for a in acls if a["resource"]["type"] == "group"}
        assert groups == ({service} if consumed else set()) | {f"{service}-{job}" for _, job in followed_by(service)}
        assert writes == owned | {t.dlq(service).name for t in topics_consumed_by(service)}
        if service == "publisher":
            assert not any(t.confidential for t in topics_consumed_by(service)) and not (reads & {
                t.name for t in TOPICS.values() if t.confidential})
        env = {e["name"]: e for e in container(deployments[f"ksbb-{service}"])["env"]}
        assert env["KSBB_KAFKA_SASL_USERNAME"]["value"] == f"ksbb-{service}"
        assert env["KSBB_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"ksbb-{service}"


def test_example_runs_mongodb_as_a_replica_set_with_a_user_per_service() -> None:
    docs = rendered(K8S / "overlays" / "example")
    (mongo,) = of_kind(docs, "MongoDBCommunity").values()
    assert mongo["spec"]["type"] == "ReplicaSet" and mongo["spec"]["members"] >= 3
    users = {u["name"]: u for u in mongo["spec"]["users"]}
    deployments = of_kind(docs, "Deployment")
    for service in SERVICES:
        user = users[f"ksbb-{service}"]
        assert user["roles"] == [{"name": "readWrite", "db": f"ksbb_{service}"}], "only its own database"
        env = {e["name"]: e for e in container(deployments[f"ksbb-{service}"])["env"]}
        ref = env["KSBB_MONGODB_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": user["connectionStringSecretName"], "key": "connectionString.standard"}


def _egress_blocks(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [peer["ipBlock"] for rule in policy["spec"].get("egress", []) for peer in rule.get("to", [])
            if "ipBlock" in peer]


def test_example_network_policies() -> None:
    docs = rendered(K8S / "overlays" / "example")
    policies = of_kind(docs, "NetworkPolicy")
    deny = policies["ksbb-default-deny"]
    assert deny["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "ksbb"}}
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in deny["spec"]
    # only the gateway (and Prometheus) reach the services' HTTP port; nobody else, from nowhere else
    for name, policy in policies.items():
        if policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") == "ksbb-gateway":
            continue  # the gateway's own policy (its component): in from the ingress controller
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("from"), f"{name} admits ingress from everywhere"
            for peer in rule["from"]:
                assert "ipBlock" not in peer, f"{name} admits an address range"
                labels = peer.get("podSelector", {}).get("matchLabels", {})
                namespace = peer.get("namespaceSelector", {}).get("matchLabels", {})
                assert labels == {"app.kubernetes.io/name": "ksbb-gateway"} or (
                    namespace == {"kubernetes.io/metadata.name": "monitoring"}
                    and labels == {"app.kubernetes.io/name": "prometheus"}), f"{name}: unexpected peer {peer}"
            assert [p["port"] for p in rule["ports"]] == ["http"]
    # the internet only for the notifier, never private, loopback, link-local or CGNAT ranges
    for name, policy in policies.items():
        blocks = _egress_blocks(policy)
        if not blocks:
            continue
        assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "ksbb-notifier"}}, name
        for block in blocks:
            network = ipaddress.ip_network(block["cidr"])
            excluded = [ipaddress.ip_network(e) for e in block.get("except", [])]
            for private in PRIVATE_V4 if network.version == 4 else PRIVATE_V6:
                private_net = ipaddress.ip_network(private)
                if private_net.subnet_of(network):  # type: ignore[arg-type]
                    assert any(private_net.subnet_of(e) for e in excluded), (  # type: ignore[arg-type]
                        f"{name} lets the notifier reach {private}")
    egress_to_datastores = policies["ksbb-egress-platform"]["spec"]["egress"]
    ports = {p["port"] for rule in egress_to_datastores for p in rule["ports"]}
    assert {9093, 27017} <= ports


def test_example_has_service_monitor_alerts_and_dashboard() -> None:
    docs = rendered(K8S / "overlays" / "example")
    (monitor,) = of_kind(docs, "ServiceMonitor").values()
    assert set(monitor["spec"]["selector"]["matchExpressions"][0]["values"]) == {f"ksbb-{s}" for s in SERVICES}
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    (rule,) = of_kind(docs, "PrometheusRule").values()
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert {"KsbbConsumerLagGrowing", "KsbbDeadLettersPresent", "KsbbOutboxBacklogStuck",
            "KsbbWebhookEndpointFailing", "KsbbHttp5xxRate", "KsbbReadinessFlapping"} <= alerts
    dashboards = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get(
        "grafana_dashboard") == "1"]
    assert len(dashboards) == 1 and "ksbb-overview.json" in dashboards[0]["data"]


def test_minimal_overlay_creates_topics_with_a_job_and_production_replication() -> None:
    docs = rendered(K8S / "overlays" / "minimal")
    job = of_kind(docs, "Job")["ksbb-topics-init"]
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["ksbb", "topics", "create"]
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("ksbb-config"))
    assert config["data"]["KSBB_KAFKA_REPLICATION_FACTOR"] == "3"
    assert not of_kind(docs, "KafkaTopic")
