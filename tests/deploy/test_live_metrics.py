"""Every metric the alert rules and the Grafana dashboard read has series on the running services' /metrics.

The four services run as separate processes (each its own /metrics, as in a pod) on the shared broker and
database, and are exercised until the labelled series exist: a webhook delivered, an e-mail attempted,
background jobs run, a poison record dead-lettered by every consuming group, an event published through an
outbox. A name that only has a HELP line (a labelled metric nobody touched) does not count; histograms count
by their `_bucket`/`_sum`/`_count` samples; every label a selector matches on must be on a live series too.
The dead-letter gauge is also checked for its value and its clearing by `ksbb dlq trim`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from ksbb_contracts.events import PledgeCreated
from ksbb_contracts.topics import ORGANISATIONS, topics_consumed_by
from ksbb_kit.auth import DevIssuer
from ksbb_kit.cli import trim_dead_letters
from ksbb_kit.kafka import KafkaRecordPublisher
from ksbb_kit.testing.factories import consumed_record, make_event
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.waiting import eventually
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.conftest import (
    SERVICES,
    ContainerProcess,
    dashboard_queries,
    free_ports,
    process_environment,
    promql_metric_names,
    rule_groups,
)

pytestmark = pytest.mark.integration

# Metrics of Prometheus itself or kube-state-metrics, not of the services.
EXTERNAL_METRICS = {"up", "kube_job_status_failed"}


def series_names(exposition: str) -> set[str]:
    """Names of the samples a /metrics page really carries (a family without samples contributes nothing)."""
    return {sample.name for family in text_string_to_metric_families(exposition) for sample in family.samples}


def samples(exposition: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Labels and value of every sample called `name`."""
    return [(s.labels, s.value) for f in text_string_to_metric_families(exposition) for s in f.samples
            if s.name == name]


def names_read_but_missing(live: set[str]) -> dict[str, set[str]]:
    """Per rule or dashboard query: the metric names it reads that no live endpoint carries."""
    recorded = {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}
    missing: dict[str, set[str]] = {}
    for group in rule_groups():
        for rule in group["rules"]:
            absent = promql_metric_names(rule["expr"]) - live - recorded - EXTERNAL_METRICS
            if absent:
                missing[rule.get("alert") or rule["record"]] = absent
    for query in dashboard_queries():
        absent = promql_metric_names(query) - live - EXTERNAL_METRICS
        if absent:
            missing[query] = absent
    return missing


#: Labels Prometheus adds to every scraped series (the target's); a metric's own `job` label is renamed to
#: `exported_job` on the way in, so a selector on `exported_job` reads the metric's `job`.
TARGET_LABELS = {"job", "instance"}


def selector_labels(expr: str) -> set[tuple[str, str]]:
    """(metric, label) for each label matcher of a selector in a PromQL expression or Grafana query."""
    import re

    found = set()
    for metric, matchers in re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}", expr):
        for label in re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", re.sub(r'"(?:[^"\\]|\\.)*"', "", matchers)):
            if label not in TARGET_LABELS:
                found.add((metric, "job" if label == "exported_job" else label))
    return found


def labels_read_but_missing(pages: list[str]) -> set[tuple[str, str]]:
    """(metric, label) pairs the rules and the dashboard select on that no live series carries."""
    carried = {(s.name, label) for page in pages for family in text_string_to_metric_families(page)
               for s in family.samples for label in s.labels}
    wanted = set().union(*(selector_labels(r["expr"]) for g in rule_groups() for r in g["rules"]),
                         *(selector_labels(q) for q in dashboard_queries()))
    return {pair for pair in wanted if pair not in carried and pair[0] not in EXTERNAL_METRICS}


def test_selector_labels_are_found() -> None:
    expr = ('sum(rate(ksbb_webhook_attempts_total{job=~"$job", outcome=~"a|b"}[5m])) '
            'and ksbb_job_lease_held{exported_job!~"x"}')
    assert selector_labels(expr) == {("ksbb_webhook_attempts_total", "outcome"), ("ksbb_job_lease_held", "job")}


def test_a_name_no_service_exports_is_reported() -> None:
    live = {"ksbb_http_requests_total"}
    assert promql_metric_names("sum(rate(ksbb_made_up_total[5m]))") - live == {"ksbb_made_up_total"}
    assert "ksbb_dead_letter_records" in set().union(*names_read_but_missing(live).values())
    assert ("ksbb_webhook_attempts_total", "outcome") in labels_read_but_missing(["ksbb_webhook_attempts_total 1\n"])


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, list[bytes]]]:
    """A local HTTP receiver answering 204 to every POST; its URL and the bodies it got."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers.get("content-length") or 0)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", bodies
    finally:
        server.shutdown()


def _environment(service: str, infra: Infra, namespace: str, issuer: DevIssuer, port: int) -> dict[str, str]:
    return process_environment(service, infra, namespace, issuer, port) | {"KSBB_HANDLER_BACKOFF_SECONDS": "0.05"}


async def _publish_pledge_created(bootstrap: str, namespace: str) -> None:
    """A valid PledgeCreated, as the pledges service would publish it: the notifier queues e-mails for it."""
    record = consumed_record(make_event(PledgeCreated), prefix=namespace)
    publisher = KafkaRecordPublisher(bootstrap, client_id="live-metrics-test")
    await publisher.start()
    try:
        await publisher.send(record.topic, record.key, record.value, record.headers)
    finally:
        await publisher.stop()


async def _poison(bootstrap: str, topic: str) -> None:
    """A record no consumer can read: every group of the topic dead-letters it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, key=b"poison", value=b"\xffnot an event")
    finally:
        await producer.stop()


async def test_every_metric_the_rules_and_dashboard_read_is_exported_by_the_running_services(
    infra: Infra, namespace: str, dev_issuer: DevIssuer, tmp_path: Path, processes: list[ContainerProcess],
    webhook_receiver: tuple[str, list[bytes]],
) -> None:
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    for service in SERVICES:
        proc = ContainerProcess(service, [f"ksbb-{service}"],
                                _environment(service, infra, namespace, dev_issuer, ports[service]), tmp_path / service)
        processes.append(proc.start())
    for proc in processes:
        await asyncio.to_thread(proc.wait_http, ports[proc.name], "/readyz", 180)
    base = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}

    async with httpx.AsyncClient(timeout=30) as client:
        admin = {"authorization": f"Bearer {dev_issuer.token('admin')}"}
        # an event through the registry's outbox
        organisation = await client.post(f"{base['registry']}/v1/organisations", headers=admin, json={
            "name": "Yayasan Metrik", "kind": "zakat", "area_codes": ["31.71"],
            "contact": {"name": "Sekretariat", "email": "sekretariat@metrik.example"},
        })
        assert organisation.status_code == 201, organisation.text
        # one webhook delivered by the notifier's dispatcher
        url, bodies = webhook_receiver
        endpoint = await client.post(f"{base['notifier']}/v1/webhooks/endpoints", headers=admin, json={"url": url})
        assert endpoint.status_code == 201, endpoint.text
        queued = await client.post(f"{base['notifier']}/v1/webhooks/endpoints/{endpoint.json()['id']}/test",
                                   headers=admin)
        assert queued.status_code == 202, queued.text
        # a pledge event the notifier mails about (sent, skipped or failed: each is an e-mail send outcome)
        await _publish_pledge_created(infra.kafka_bootstrap, namespace)
        # a poison record on a topic of every consuming group of the platform
        poisoned = {topic for service in SERVICES for topic in topics_consumed_by(service)[:1]} | {ORGANISATIONS}
        for topic in poisoned:
            await _poison(infra.kafka_bootstrap, namespace + topic.name)
        expected_dlqs = {service: {namespace + t.dlq(service).name for t in topics_consumed_by(service)
                                   if t in poisoned} for service in SERVICES}

        async def scrape() -> dict[str, str]:
            return {s: (await client.get(f"{base[s]}/metrics")).text for s in SERVICES}

        async def all_series_present() -> dict[str, str] | None:
            pages = await scrape()
            live = set().union(*(series_names(page) for page in pages.values()))
            if names_read_but_missing(live):
                return None
            for service, page in pages.items():
                letters = {labels["dlq"]: value for labels, value in samples(page, "ksbb_dead_letter_records")}
                if any(letters.get(dlq, 0) < 1 for dlq in expected_dlqs[service]):
                    return None
            return pages

        try:
            pages = await eventually(all_series_present, within=120, interval=1,
                                     what="every metric of the rules and the dashboard with series")
        except AssertionError:
            pages = await scrape()
            live = set().union(*(series_names(page) for page in pages.values()))
            raise AssertionError(f"read but not exported: {names_read_but_missing(live)}; dead letters: "
                                 f"{ {s: samples(p, 'ksbb_dead_letter_records') for s, p in pages.items()} }") from None
        assert not labels_read_but_missing(list(pages.values())), "rules or dashboard select on labels no series has"
        assert bodies, "the webhook receiver got nothing"
        succeeded = samples(pages["notifier"], "ksbb_webhook_attempts_total")
        assert any(labels["outcome"] == "succeeded" and value >= 1 for labels, value in succeeded)

        # the gauge counts what the topic holds: trimming the dead-letter topic brings it back to 0
        dlq = sorted(expected_dlqs["publisher"])[0]
        assert await trim_dead_letters(infra.kafka_bootstrap, dlq) >= 1

        async def trimmed() -> bool:
            page = (await client.get(f"{base['publisher']}/metrics")).text
            return {labels["dlq"]: value for labels, value in samples(page, "ksbb_dead_letter_records")}[dlq] == 0

        await eventually(trimmed, within=30, interval=0.5, what=f"{dlq} counted empty after ksbb dlq trim")


def test_dashboard_json_is_valid() -> None:
    board = json.loads((Path(__file__).resolve().parents[2] / "deploy" / "observability" / "grafana"
                        / "ksbb-overview.json").read_text(encoding="utf-8"))
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])
