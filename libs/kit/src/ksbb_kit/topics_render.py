"""Render the topics declared in the contracts into deploy files (`ksbb topics render`).

One source (`ksbb_contracts.topics`), three outputs, checked in and kept current by a deploy test:
Strimzi `KafkaTopic` resources (production replication and durability), Strimzi `KafkaUser` resources with
the least-privilege ACLs each service needs, and the compose stack's topics-init script for the official
Kafka image's `kafka-topics.sh`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ksbb_contracts.topics import TOPICS, Topic, all_topics_with_dlqs, topics_consumed_by

PRODUCTION_REPLICATION = 3
STRIMZI_CLUSTER = "ksbb"
STRIMZI_API = "kafka.strimzi.io/v1beta2"
# Every service the contracts name, as owner or consumer (registry, pledges, notifier, publisher).
SERVICES = tuple(dict.fromkeys([t.owner for t in TOPICS.values()] + [c for t in TOPICS.values() for c in t.consumers]))
HEADER = "Rendered by `ksbb topics render` from libs/contracts/src/ksbb_contracts/topics.py; do not edit."

_PLAIN_SCALAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN_SCALAR.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for plain dicts, lists, strings, ints and booleans (deterministic, no dependency)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        out = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{_scalar(key)}:\n{to_yaml(item, indent + 2)}")
            else:
                inline = "{}" if item == {} else "[]" if item == [] else _scalar(item)
                out.append(f"{pad}{_scalar(key)}: {inline}\n")
        return "".join(out)
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                nested = to_yaml(item, indent + 2)
                out.append(f"{pad}- {nested[indent + 2:]}")
            else:
                out.append(f"{pad}- {_scalar(item)}\n")
        return "".join(out)
    return pad + _scalar(value) + "\n"


def _documents(docs: Iterable[dict[str, Any]], comment: str) -> str:
    body = "---\n".join(to_yaml(doc) for doc in docs)
    return f"# {HEADER}\n# {comment}\n---\n{body}"


def _labels(**extra: str) -> dict[str, str]:
    return {"strimzi.io/cluster": STRIMZI_CLUSTER, "app.kubernetes.io/part-of": "ksbb", **extra}


def _config_values(topic: Topic, replication_factor: int) -> dict[str, Any]:
    return {key: int(value) if re.fullmatch(r"-?\d+", value) else value
            for key, value in topic.config(replication_factor).items()}


def kafka_topic(topic: Topic, replication_factor: int = PRODUCTION_REPLICATION) -> dict[str, Any]:
    """One Strimzi KafkaTopic resource."""
    return {
        "apiVersion": STRIMZI_API,
        "kind": "KafkaTopic",
        "metadata": {"name": topic.name, "labels": _labels(**{"ksbb.io/owner": topic.owner})},
        "spec": {
            "topicName": topic.name,
            "partitions": topic.partitions,
            "replicas": replication_factor,
            "config": _config_values(topic, replication_factor),
        },
    }


def render_kafka_topics() -> str:
    """Every domain and dead-letter topic as Strimzi KafkaTopic resources (3 replicas, 2 in sync)."""
    return _documents(
        (kafka_topic(t) for t in all_topics_with_dlqs()),
        f"Every topic and dead-letter topic, {PRODUCTION_REPLICATION} replicas, "
        "min.insync.replicas 2 (writes use acks=all).",
    )


def _acl(kind: str, name: str | None, *operations: str) -> dict[str, Any]:
    resource: dict[str, Any] = {"type": kind}
    if name is not None:
        resource |= {"name": name, "patternType": "literal"}
    return {"resource": resource, "operations": list(operations), "host": "*"}


def service_acls(service: str) -> list[dict[str, Any]]:
    """What one service may do: write its own topics and its dead letters, read what it consumes, its group."""
    acls = [_acl("topic", t.name, "Describe", "Write") for t in TOPICS.values() if t.owner == service]
    for topic in topics_consumed_by(service):
        acls.append(_acl("topic", topic.name, "Describe", "Read"))
        acls.append(_acl("topic", topic.dlq(service).name, "Describe", "Write"))
    if topics_consumed_by(service):
        acls.append(_acl("group", service, "Describe", "Read"))
    for topic, job in followed_by(service):
        acls.append(_acl("topic", topic.name, "Describe", "Read"))
        acls.append(_acl("group", f"{service}-{job}", "Describe", "Read"))
    acls.append(_acl("cluster", None, "IdempotentWrite"))
    return acls


def followed_by(service: str) -> list[tuple[Topic, str]]:
    """The topics a service reads back (`Topic.followers`), each with the follower's job."""
    return [(t, job) for t in TOPICS.values() for who, job in t.followers if who == service]


def kafka_user(service: str) -> dict[str, Any]:
    """One Strimzi KafkaUser (SCRAM-SHA-512) for a service; its password lands in the Secret `ksbb-<service>`."""
    return {
        "apiVersion": STRIMZI_API,
        "kind": "KafkaUser",
        "metadata": {"name": f"ksbb-{service}", "labels": _labels(**{"app.kubernetes.io/component": service})},
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": service_acls(service)},
        },
    }


def operator_acls() -> list[dict[str, Any]]:
    """What the on-call operator's user may do: read every topic, replay dead letters, inspect groups."""
    acls = [_acl("topic", t.name, "Describe", "Read", "Write") for t in TOPICS.values()]
    # Delete on dead-letter topics: `ksbb dlq trim` drops letters once they were replayed or judged.
    acls += [_acl("topic", t.name, "Describe", "Read", "Delete")
             for t in all_topics_with_dlqs() if t.name not in TOPICS]
    acls += [_acl("group", s, "Describe") for s in SERVICES if topics_consumed_by(s)]
    acls += [_acl("group", f"{s}-{job}", "Describe") for s in SERVICES for _, job in followed_by(s)]
    acls.append(_acl("cluster", None, "Describe", "IdempotentWrite"))
    return acls


def render_kafka_users() -> str:
    """A SCRAM user per service with ACLs derived from topic owners and consumers, plus the operator's."""
    operator = {
        "apiVersion": STRIMZI_API,
        "kind": "KafkaUser",
        "metadata": {"name": "ksbb-operator", "labels": _labels(**{"app.kubernetes.io/component": "operator"})},
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": operator_acls()},
        },
    }
    return _documents(
        [*(kafka_user(s) for s in SERVICES), operator],
        "One SCRAM-SHA-512 user per service; ACLs follow each topic's owner and consumers in the contracts. "
        "ksbb-operator: `ksbb dlq list/replay/trim` and inspection (docs/operations.md).",
    )


def _shell_word(text: str) -> str:
    return text if re.fullmatch(r"[A-Za-z0-9_.,=/:\-]+", text) else "'" + text.replace("'", "'\"'\"'") + "'"


def render_compose_topics_init() -> str:
    """A POSIX shell script creating every topic with kafka-topics.sh (compose's one-shot topics-init)."""
    lines = [
        "#!/bin/sh",
        f"# {HEADER}",
        "# Creates every KSBB topic and dead-letter topic if missing (idempotent), with explicit partitions,",
        "# retention and compaction, using kafka-topics.sh from the official apache/kafka image.",
        "#   KAFKA_BOOTSTRAP        broker address                 (default kafka:9092)",
        "#   REPLICATION_FACTOR     replicas of each topic         (default 1: the compose stack has one broker)",
        "#   KSBB_TOPIC_PREFIX      prefix of every topic name     (default none)",
        "#   KAFKA_COMMAND_CONFIG   client properties file (TLS, SASL), optional",
        "#   KAFKA_TOPICS           kafka-topics command           (default /opt/kafka/bin/kafka-topics.sh)",
        "set -eu",
        ': "${KAFKA_BOOTSTRAP:=kafka:9092}"',
        ': "${REPLICATION_FACTOR:=1}"',
        ': "${KSBB_TOPIC_PREFIX:=}"',
        ': "${KAFKA_TOPICS:=/opt/kafka/bin/kafka-topics.sh}"',
        "# A write (acks=all) needs 2 in-sync replicas from 3 replicas on, else all of them.",
        'if [ "$REPLICATION_FACTOR" -ge 3 ]; then MIN_ISR=2; else MIN_ISR=1; fi',
        "",
        "create() {",
        "    name=$1; partitions=$2; shift 2",
        '    echo "topics-init: ${KSBB_TOPIC_PREFIX}${name} (${partitions} partitions)"',
        '    $KAFKA_TOPICS --bootstrap-server "$KAFKA_BOOTSTRAP" \\',
        '        ${KAFKA_COMMAND_CONFIG:+--command-config "$KAFKA_COMMAND_CONFIG"} \\',
        '        --create --if-not-exists --topic "${KSBB_TOPIC_PREFIX}${name}" --partitions "$partitions" \\',
        '        --replication-factor "$REPLICATION_FACTOR" --config "min.insync.replicas=$MIN_ISR" "$@"',
        "}",
        "",
    ]
    topics = all_topics_with_dlqs()
    for topic in topics:
        config = {k: v for k, v in topic.config().items() if k != "min.insync.replicas"}
        args = " ".join(f"--config {_shell_word(f'{k}={v}')}" for k, v in config.items())
        lines.append(f"create {_shell_word(topic.name)} {topic.partitions} {args}")
    lines += ["", f'echo "topics-init: {len(topics)} topics present"', ""]
    return "\n".join(lines)


RENDERED: dict[str, Callable[[], str]] = {
    "deploy/k8s/components/strimzi/topics.yaml": render_kafka_topics,
    "deploy/k8s/components/strimzi/users.yaml": render_kafka_users,
    "deploy/compose/topics-init.sh": render_compose_topics_init,
}


def render_all() -> dict[str, str]:
    """Every rendered file's repository path and current content."""
    return {path: render() for path, render in RENDERED.items()}


def stale_files(root: Path) -> list[str]:
    """Rendered files under `root` that differ from what the contracts produce now."""
    return [path for path, text in render_all().items()
            if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != text]


def write_all(root: Path) -> list[str]:
    """Write every rendered file under `root`; returns the paths that changed."""
    changed = stale_files(root)
    for path, text in render_all().items():
        if path in changed:
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            if path.endswith(".sh"):
                target.chmod(0o755)
    return changed
