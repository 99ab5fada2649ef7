"""Resolve the Kafka broker and MongoDB-protocol server for tests: env, then Docker, then local infra."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HOW_TO = (
    "Integration tests need a real Kafka broker and MongoDB-protocol server. Either export "
    "KSBB_KAFKA_BOOTSTRAP and KSBB_MONGODB_URL, run a Docker engine (testcontainers), or install "
    "Java 17+ and Maven so `deploy/local/infra up` can start them (see README)."
)


@dataclass(frozen=True)
class Infra:
    """Where the test run's broker and database server are."""

    kafka_bootstrap: str
    mongodb_url: str
    how: str


def repo_root(start: Path | None = None) -> Path:
    """The repository root (the folder holding deploy/local/infra)."""
    here = (start or Path(__file__)).resolve()
    for candidate in [here, *here.parents]:
        if (candidate / "deploy" / "local" / "infra").exists():
            return candidate
    return Path.cwd()


def _from_env() -> Infra | None:
    kafka, mongo = os.environ.get("KSBB_KAFKA_BOOTSTRAP"), os.environ.get("KSBB_MONGODB_URL")
    if kafka and mongo:
        return Infra(kafka, mongo, "environment")
    return None


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _from_testcontainers() -> tuple[Infra, list[object]]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    kafka = KafkaContainer("apache/kafka:4.1.1").with_kraft()
    kafka.start()
    mongo = MongoDbContainer("mongo:7")
    mongo.start()
    return Infra(kafka.get_bootstrap_server(), mongo.get_connection_url(), "testcontainers"), [kafka, mongo]


def _from_local_infra() -> Infra:
    root = repo_root()
    script = root / "deploy" / "local" / "infra"
    result = subprocess.run([str(script), "up"], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"`deploy/local/infra up` failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    values = read_env_file(Path(os.environ.get("KSBB_INFRA_DIR", root / ".ksbb" / "infra")) / "infra.env")
    return Infra(values["KSBB_KAFKA_BOOTSTRAP"], values["KSBB_MONGODB_URL"], "local")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file."""
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"')
    return values


def resolve_infra() -> tuple[Infra, list[object]]:
    """The first infrastructure that can be had, in the documented order; raises with advice if none."""
    found = _from_env()
    if found:
        return found, []
    if os.environ.get("KSBB_TEST_USE_DOCKER", "auto") != "never" and _docker_answers():
        return _from_testcontainers()
    try:
        return _from_local_infra(), []
    except Exception as exc:
        raise RuntimeError(f"{HOW_TO}\n\nLocal infrastructure could not start: {exc}") from exc
