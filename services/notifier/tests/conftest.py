"""Shared fixtures of the notifier tests: a scripted HTTP receiver, a real SMTP server, app factories."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from ksbb_contracts.events.pledges import PledgeCreated, PledgePublic
from ksbb_contracts.events.registry import (
    Beneficiaries,
    NeedOpened,
    NeedPublic,
    RecipientPublic,
    RecipientRegistered,
)
from ksbb_contracts.vocab import (
    DeliveryMode,
    Item,
    NeedStatus,
    PledgeStatus,
    Priority,
    RecipientKind,
    RecipientStatus,
)
from ksbb_kit.auth import DevIssuer
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.plugin import running
from ksbb_kit.testing.waiting import eventually
from ksbb_notifier.bootstrap import Notifier, build_notifier, create_app_for
from ksbb_notifier.settings import NotifierSettings

__all__ = ["eventually"]  # test modules reach it as `h.eventually`


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        """The parsed body."""
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records POSTs and answers with scripted statuses."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    scripts: dict[str, deque[tuple[int, dict[str, str], str]]] = field(default_factory=lambda: defaultdict(deque))
    defaults: dict[str, tuple[int, dict[str, str], str]] = field(default_factory=dict)
    hang_seconds: dict[str, float] = field(default_factory=dict)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """The URL of one path on this receiver."""
        return f"http://{host}:{self.port}{path}"

    def script(self, path: str, *responses: tuple[int, dict[str, str], str]) -> None:
        """Answer the next requests to `path` with these responses, in order."""
        self.scripts[path].extend(responses)

    def at(self, path: str) -> list[Received]:
        """Requests received on one path."""
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A scripted receiver for one test."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length).decode()
            path = self.path
            hang = state.hang_seconds.get(path)
            if hang:
                time.sleep(hang)
            state.requests.append(Received(path, {k.lower(): v for k, v in self.headers.items()}, body))
            queue = state.scripts.get(path)
            status, headers, text = queue.popleft() if queue else state.defaults.get(path, (200, {}, "ok"))
            payload = text.encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


class SmtpSink:
    """Collects the messages a real aiosmtpd server accepted."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd hook: store the message."""
        message = message_from_bytes(envelope.content, policy=email_policy.default)
        message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        """Messages addressed to one address."""
        return [m for m in self.messages if address in m["X-Envelope-To"]]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    """A real SMTP server on a free local port."""
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def base_settings(infra: Infra, issuer: DevIssuer, namespace: str, **overrides: Any) -> NotifierSettings:
    """Test settings: isolated namespace, local receivers allow-listed, loops driven by hand."""
    values: dict[str, Any] = {
        "env": "test",
        "kafka_bootstrap": infra.kafka_bootstrap,
        "mongodb_url": infra.mongodb_url,
        "topic_prefix": namespace,
        "jwks_url": str(issuer.jwks_path),
        "jwt_issuer": issuer.issuer,
        "jwt_audience": issuer.audience,
        "outbox_sweep_seconds": 0.5,
        "handler_backoff_seconds": 0.05,
        "insecure_http_hosts": ["127.0.0.1", "localhost"],
        "ssrf_allow_hosts": ["127.0.0.1"],
        "dispatcher_autostart": False,
        "mailer_autostart": False,
        "delivery_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return NotifierSettings(**values)


def new_namespace() -> str:
    """A unique topic/database prefix for a module-scoped app."""
    return f"t{uuid.uuid4().hex[:10]}."


@dataclass
class RunningNotifier:
    """A started notifier app with its HTTP client, clock and the wired instance behind it."""

    client: Any
    clock: Any
    notifier: Notifier
    settings: NotifierSettings
    app: Any = None

    @property
    def db(self) -> Any:
        """The notifier's own database, to check what it stored."""
        return self.notifier.runtime.db


@contextlib.asynccontextmanager
async def start_notifier(settings: NotifierSettings, clock: Any, **kwargs: Any) -> AsyncIterator[RunningNotifier]:
    """Start an app and yield it once ready."""
    notifier = build_notifier(settings, clock=clock, **kwargs)
    app = create_app_for(notifier)
    async with running(app) as client:
        yield RunningNotifier(client, clock, notifier, settings, app)


def auth(issuer: DevIssuer, role: str, **claims: Any) -> dict[str, str]:
    """Authorization header for a role."""
    return {"authorization": f"Bearer {issuer.token(role, **claims)}"}


# -- event factories ---------------------------------------------------------------------------------

KELURAHAN_PUSAT = "31.71.01.1001"  # Gambir, Jakarta Pusat


def pledge_public(
    pledge_id: str,
    org: str,
    recipient: str,
    *,
    donor: str = "dnr_1",
    status: str = "pledged",
    kelurahan: str = KELURAHAN_PUSAT,
    version: int = 1,
) -> PledgePublic:
    """A public pledge snapshot."""
    return PledgePublic(
        pledge_id=pledge_id,
        need_id=f"need_{pledge_id}",
        recipient_id=recipient,
        organisation_id=org,
        donor_id=donor,
        kelurahan_code=kelurahan,
        item=Item.SEMBAKO,
        quantity=10,
        mode=DeliveryMode.OWN_DELIVERY,
        planned_date=date(2026, 1, 10),
        status=PledgeStatus(status),
        version=version,
    )


def pledge_created(pledge_id: str, org: str, recipient: str, **kwargs: Any) -> PledgeCreated:
    """A PledgeCreated event."""
    return PledgeCreated(pledge=pledge_public(pledge_id, org, recipient, **kwargs), occurred_at=datetime.now(UTC))


def need_opened(need_id: str, org: str, recipient: str, kelurahan: str = KELURAHAN_PUSAT) -> NeedOpened:
    """A NeedOpened event (programme-wide)."""
    return NeedOpened(
        need=NeedPublic(
            need_id=need_id,
            recipient_id=recipient,
            organisation_id=org,
            kelurahan_code=kelurahan,
            item=Item.SEMBAKO,
            quantity=20,
            unit="paket",
            priority=Priority.HIGH,
            needed_by=date(2026, 2, 1),
            status=NeedStatus.OPEN,
            version=1,
        ),
        occurred_at=datetime.now(UTC),
    )


def recipient_registered(
    recipient_id: str,
    org: str,
    name: str = "Panti Asuhan Harapan",
    kind: RecipientKind = RecipientKind.PANTI_ASUHAN,
    kelurahan: str = KELURAHAN_PUSAT,
) -> RecipientRegistered:
    """A RecipientRegistered event."""
    return RecipientRegistered(
        recipient=RecipientPublic(
            recipient_id=recipient_id,
            name=name,
            kind=kind,
            organisation_id=org,
            kelurahan_code=kelurahan,
            beneficiaries=Beneficiaries(households=5, people=40),
            status=RecipientStatus.REGISTERED,
            version=1,
        ),
        occurred_at=datetime.now(UTC),
    )


@pytest.fixture(scope="session")
def h() -> Any:
    """These helpers as a module (test files cannot import conftest under importlib mode)."""
    return sys.modules[__name__]
