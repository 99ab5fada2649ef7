"""Shared fixtures of the notifier tests: a scripted HTTP receiver, a real SMTP server, the started notifier.

Event factories, namespaces, ports and polling come from the kit's testing toolbox; the helpers below
only fill in what these tests vary (ids, organisation, kelurahan, kind).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from ksbb_contracts.events.pledges import PledgeCreated, PledgePublic
from ksbb_contracts.events.registry import NeedOpened, RecipientRegistered
from ksbb_contracts.vocab import PledgeStatus, RecipientKind
from ksbb_kit.auth import DevIssuer
from ksbb_kit.testing import factories
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.service import free_port, new_namespace, running, service_env
from ksbb_kit.testing.waiting import eventually
from ksbb_notifier.bootstrap import Notifier, build_notifier, create_app_for
from ksbb_notifier.settings import NotifierSettings

__all__ = ["RecipientKind", "eventually", "new_namespace"]  # test modules reach these as `h.<name>`


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


class ReceiverServer(ThreadingHTTPServer):
    """The receivers' HTTP server, with room for every connection the dispatchers open at once (the default
    listen backlog of 5 overflows on a loaded machine: the connection is reset and the attempt fails)."""

    request_queue_size = 128


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

    server = ReceiverServer(("127.0.0.1", 0), Handler)
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
        "insecure_http_hosts": ["127.0.0.1", "localhost"],
        "ssrf_allow_hosts": ["127.0.0.1"],
        "dispatcher_autostart": False,
        "mailer_autostart": False,
        "delivery_timeout_seconds": 5.0,
        **overrides,
    }
    return NotifierSettings(**service_env(infra, namespace, issuer, **values))


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


# -- events ----------------------------------------------------------------------------------------

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
    """A public pledge snapshot of one organisation's recipient."""
    return factories.pledge_public(
        pledge_id=pledge_id,
        need_id=f"need_{pledge_id}",
        recipient_id=recipient,
        organisation_id=org,
        donor_id=donor,
        kelurahan_code=kelurahan,
        status=PledgeStatus(status),
        version=version,
    )


def pledge_created(pledge_id: str, org: str, recipient: str, **kwargs: Any) -> PledgeCreated:
    """A PledgeCreated event, now."""
    return factories.make_event(
        PledgeCreated, pledge=pledge_public(pledge_id, org, recipient, **kwargs), occurred_at=datetime.now(UTC)
    )


def need_opened(need_id: str, org: str, recipient: str, kelurahan: str = KELURAHAN_PUSAT) -> NeedOpened:
    """A NeedOpened event (programme-wide), now."""
    need = {"need_id": need_id, "recipient_id": recipient, "organisation_id": org, "kelurahan_code": kelurahan}
    return factories.make_event(NeedOpened, need=need, occurred_at=datetime.now(UTC))


def recipient_registered(
    recipient_id: str,
    org: str,
    name: str = "Panti Asuhan Harapan",
    kind: RecipientKind = RecipientKind.PANTI_ASUHAN,
    kelurahan: str = KELURAHAN_PUSAT,
) -> RecipientRegistered:
    """A RecipientRegistered event, now."""
    recipient = {
        "recipient_id": recipient_id,
        "name": name,
        "kind": kind,
        "organisation_id": org,
        "kelurahan_code": kelurahan,
    }
    return factories.make_event(RecipientRegistered, recipient=recipient, occurred_at=datetime.now(UTC))


@pytest.fixture(scope="session")
def h() -> Any:
    """These helpers as a module (test files cannot import conftest under importlib mode)."""
    return sys.modules[__name__]
