"""The deploy files, run: docker-compose rendered by the compose CLI and every Kubernetes overlay rendered by
kustomize; topics created the way each deploys them; then every service started as a local process with
exactly the rendered command and environment, in production mode with generated secrets.

Asserted for each service: it starts, listens on a non-loopback address, the readiness probe declared in the
manifest answers 200, it stops cleanly on SIGTERM, and its /metrics carry every metric the dashboard and the
alert rules read. A required secret left out, or left at an example value, stops it with a message naming the
variable.

What a container runtime would do and a local process cannot is mapped explicitly, nothing else:
- host names -> the local Kafka broker and MongoDB-wire server (the stand-in is not a replica set, so the
  `replicaSet` option of the compose URL is dropped) or, for the example overlay, a private broker that
  demands SCRAM-SHA-512 over TLS with one user per service;
- the container port -> a free local port (the manifest's port and KSBB_HTTP_PORT must agree first);
- mounted Secret files -> files in a temporary directory;
- isolation on the shared infrastructure: KSBB_TOPIC_PREFIX (or KSBB_MONGODB_DB on the private broker);
- a single local broker: replication factor and min.insync.replicas capped at 1 where topics are created.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from ksbb_contracts.topics import TOPICS, all_topics_with_dlqs
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.waiting import eventually

from tests.deploy.conftest import (
    ROOT,
    SERVICES,
    ContainerProcess,
    ScramBroker,
    compose_config,
    dashboard_queries,
    describe_topics,
    exported_metric_names,
    free_port,
    generated_secret,
    is_loopback,
    kustomize_build,
    listening_addresses,
    promql_metric_names,
    requires_secret_key,
    rule_groups,
    run_compose_topics_init,
)

pytestmark = pytest.mark.integration

K8S = ROOT / "deploy" / "k8s" / "overlays"
# The notifier treats SMTP credentials as optional (a relay without login); every other secret is required.
OPTIONAL_SECRETS = {"KSBB_NOTIFIER_SMTP_USERNAME", "KSBB_NOTIFIER_SMTP_PASSWORD"}
EXTERNAL_METRICS = {"up", "kube_job_status_failed"}


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


def compose_containers(rendered: dict[str, Any]) -> dict[str, Rendered]:
    """The four services of a `docker compose config` result."""
    out = {}
    for service in SERVICES:
        svc = rendered["services"][service]
        env = {k: str(v) for k, v in svc["environment"].items() if v is not None}
        check = " ".join(svc["healthcheck"]["test"])
        match = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", check)
        assert match, f"{service}: no HTTP readiness check in {check}"
        out[service] = Rendered(
            service=service, command=[*svc["entrypoint"], *(svc.get("command") or [])], env=env,
            http_port=int(svc["expose"][0]), readiness=(match.group(2), int(match.group(1))),
            secret_env={k for k in env if re.search(r"SECRET|PASSWORD", k)},
        )
    return out


def k8s_containers(docs: list[dict[str, Any]], secrets: dict[tuple[str, str], str]) -> dict[str, Rendered]:
    """The four services' containers of a kustomize build, with Secret values supplied by the test."""
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    out = {}
    for doc in docs:
        service = doc["metadata"]["name"].removeprefix("ksbb-")
        if doc["kind"] != "Deployment" or service not in SERVICES:  # e.g. the gateway's own Deployment
            continue
        pod = doc["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        env: dict[str, str] = {}
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
        files = {}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for mount in c.get("volumeMounts", []):
            secret = volumes[mount["name"]].get("secret")
            if secret:
                for item in secret["items"]:
                    files[f"{mount['mountPath']}/{item['path']}"] = secrets[(secret["secretName"], item["key"])]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        probe = c["readinessProbe"]["httpGet"]
        port = probe["port"] if isinstance(probe["port"], int) else ports[probe["port"]]
        out[service] = Rendered(service=service, command=[*c["command"], *c.get("args", [])], env=env,
                                http_port=ports["http"], readiness=(probe["path"], port), secret_env=secret_env,
                                files=files)
    assert set(out) == set(SERVICES)
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
        for name, value in rendered.env.items():
            for old, new in self.replacements:
                value = value.replace(old, new)
            for mounted in rendered.files:
                value = value.replace(mounted, str(self.files_dir / rendered.service / mounted.lstrip("/")))
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
          drop: str | None = None, override: dict[str, str] | None = None) -> tuple[ContainerProcess, int]:
    """Start one rendered container as a process (optionally without one variable, or with changed ones)."""
    port = free_port()
    env = mapping.environment(rendered, port)
    if drop:
        env.pop(drop)
    env.update(override or {})
    label = f"{rendered.service}-{drop or 'all'}"
    proc = ContainerProcess(label, rendered.command, env, workdir / label).start()
    processes.append(proc)
    return proc, port


def assert_serves(containers: dict[str, Rendered], mapping: Mapping, workdir: Path,
                  processes: list[ContainerProcess], while_running: Callable[[], None] | None = None) -> set[str]:
    """Start all four, check listening address, readiness, /metrics and a clean stop; the metric names seen."""
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
        while_running()
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
                                               processes: list[ContainerProcess]) -> None:
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
    mapping = Mapping(
        replacements=[(containers["registry"].env["KSBB_MONGODB_URL"], infra.mongodb_url),
                      ("kafka:9092", infra.kafka_bootstrap)],
        extra_env=lambda _service: {"KSBB_TOPIC_PREFIX": namespace},
        files_dir=tmp_path / "files",
    )
    exported = assert_serves(containers, mapping, tmp_path, processes)
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
        refused.append(proc)
    assert refused
    for proc in refused:
        assert proc.wait_exit(timeout=90) != 0, f"{proc.name} accepted an env.example secret"
        assert "KSBB_SECRET_KEY" in proc.log() and "placeholder, example or development value" in proc.log()


# ------------------------------------------------------------------------------- kubernetes --


def _generated_secrets(docs: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """A generated value for every (Secret, key) the rendered Deployments reference."""
    refs: dict[tuple[str, str], str] = {}
    for doc in docs:
        if doc["kind"] != "Deployment" or doc["metadata"]["name"].removeprefix("ksbb-") not in SERVICES:
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


def in_thread(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to completion from synchronous code called inside the test's event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


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
) -> None:
    docs = kustomize_build(K8S / "example")
    await _apply_kafka_topics(docs, scram_broker.plain)
    secrets = _generated_secrets(docs)
    for service in SERVICES:
        secrets[(f"ksbb-{service}", "password")] = scram_broker.users[f"ksbb-{service}"]
        secrets[(f"ksbb-mongodb-{service}", "connectionString.standard")] = infra.mongodb_url
    secrets[("ksbb-cluster-ca-cert", "ca.crt")] = scram_broker.ca_file.read_text()
    containers = k8s_containers(docs, secrets)
    registry_env = containers["registry"].env
    assert registry_env["KSBB_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert registry_env["KSBB_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    database_prefix = namespace.replace(".", "_")
    mapping = Mapping(
        replacements=[(registry_env["KSBB_KAFKA_BOOTSTRAP"], scram_broker.sasl_ssl)],
        extra_env=lambda service: {"KSBB_MONGODB_DB": f"{database_prefix}ksbb_{service}"},
        files_dir=tmp_path / "files",
    )
    exported = assert_serves(containers, mapping, tmp_path, processes,
                             while_running=lambda: in_thread(_groups_joined(scram_broker.plain, SERVICES)))
    assert {"ksbb_consumer_lag_records", "ksbb_http_requests_total"} <= exported
    assert_dashboard_and_alerts_use_exported_metrics(exported)
    checked = assert_missing_secrets_stop_services(containers, mapping, tmp_path, processes)
    # MongoDB URL and Kafka password of each service, and the secret key of those using one (the notifier)
    assert checked >= 2 * len(SERVICES) + sum(requires_secret_key(s) for s in SERVICES)
    assert {t.name for t in TOPICS.values()} <= {d["spec"]["topicName"] for d in docs if d["kind"] == "KafkaTopic"}
