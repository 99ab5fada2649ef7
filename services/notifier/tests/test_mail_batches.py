"""E-mails go out in batches: claimed together yet each by one instance, over one SMTP connection, none lost."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from ksbb_contracts.events.pledges import PledgeConfirmed
from ksbb_kit.clock import ManualClock
from ksbb_kit.mongo import connect
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.service import free_port
from ksbb_notifier.adapters.mail_store import MongoEmailQueue
from ksbb_notifier.adapters.replica_store import MongoReplicaStore
from ksbb_notifier.adapters.smtp import SmtpMailer
from ksbb_notifier.app.mail import MAIL_BATCH, Mailer
from ksbb_notifier.domain.emails import RenderedEmail
from ksbb_notifier.domain.mailing import QueuedEmail, pledge_confirmed_mail
from ksbb_notifier.settings import NotifierSettings

pytestmark = pytest.mark.integration
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SENDER = "KSBB <noreply@ksbb.example>"


class ConnectionSink:
    """A real aiosmtpd handler that records each accepted message with the client connection it came on."""

    def __init__(self) -> None:
        self.received: list[tuple[str, tuple[str, int]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd hook: remember the recipient and the client's address (one port per connection)."""
        self.received.append((envelope.rcpt_tos[0], tuple(session.peer)))
        return "250 Message accepted for delivery"

    def connections(self) -> set[tuple[str, int]]:
        """The distinct client connections messages came on."""
        return {peer for _, peer in self.received}


@pytest.fixture
def sink() -> Iterator[tuple[ConnectionSink, int]]:
    """A fresh SMTP server of this test's own (its connections are this test's alone)."""
    handler = ConnectionSink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def queued(h: Any, email_id: str, to_id: str) -> QueuedEmail:
    """A pending pledge-confirmed e-mail to a donor, with the facts the domain's plan gives it."""
    plan = pledge_confirmed_mail(
        PledgeConfirmed(pledge=h.pledge_public("plg_1", "org_1", "rcp_1", donor=to_id), occurred_at=NOW)
    )
    [addressee] = plan.addressees
    return QueuedEmail(
        id=email_id, kind=addressee.kind, to_kind="donor", to_id=to_id, context=plan.context,
        status="pending", attempts=0, next_attempt_at=NOW, created_at=NOW,
    )


@contextlib.asynccontextmanager
async def mail_database(infra: Infra, name: str, donors: int = 0) -> AsyncIterator[tuple[Any, MongoReplicaStore]]:
    """A fresh database with the e-mail queue's indexes and the contacts of donors dnr_0.. (d0@example.org..),
    dropped afterwards. Opened by the test itself, so the client lives on the test's event loop."""
    client = connect(infra.mongodb_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_{name}"]
    try:
        await MongoEmailQueue(db).create_indexes()
        replicas = MongoReplicaStore(db)
        for i in range(donors):
            await replicas.save_contact(f"dnr_{i}", "donor", {"name": f"Donor {i}", "email": f"d{i}@example.org"})
        yield db, replicas
    finally:
        await client.drop_database(db.name)
        await client.close()


def rendered(subject: str) -> RenderedEmail:
    """A small rendered e-mail."""
    return RenderedEmail(subject=subject, text="Halo / Hello", html="<p>Halo / Hello</p>")


async def test_one_smtp_connection_carries_many_emails_and_a_broken_one_is_replaced(
    sink: tuple[ConnectionSink, int],
) -> None:
    handler, port = sink
    mailer = SmtpMailer("127.0.0.1", port, sender=SENDER, timeout=5)
    try:
        for i in range(5):
            await mailer.send(f"d{i}@example.org", rendered(f"s{i}"), message_id=f"eml_{i}")
        assert len(handler.received) == 5
        assert len(handler.connections()) == 1, "e-mails sent one after another share one connection"

        # The server side drops the connection (a restart, an idle timeout): the next send gets a new one.
        client = mailer._client
        assert client is not None
        client.close()
        await mailer.send("after@example.org", rendered("after"), message_id="eml_after")
        assert [to for to, _ in handler.received][-1] == "after@example.org"
        assert len(handler.connections()) == 2
    finally:
        await mailer.close()


async def test_a_failed_send_raises_and_the_next_one_connects_afresh(sink: tuple[ConnectionSink, int]) -> None:
    handler, port = sink
    unreachable = SmtpMailer("127.0.0.1", free_port(), sender=SENDER, timeout=2)
    with pytest.raises(Exception):  # noqa: B017 - any SMTP or connection error; the caller schedules a retry
        await unreachable.send("x@example.org", rendered("x"), message_id="eml_x")
    assert unreachable._client is None
    mailer = SmtpMailer("127.0.0.1", port, sender=SENDER, timeout=5)
    try:
        with pytest.raises(Exception):  # noqa: B017 - the server refuses a recipient without a domain
            await mailer.send("not an address", rendered("x"), message_id="eml_bad")
        await mailer.send("ok@example.org", rendered("ok"), message_id="eml_ok")
        assert [to for to, _ in handler.received] == ["ok@example.org"]
    finally:
        await mailer.close()


async def test_two_instances_claiming_at_once_send_every_email_exactly_once(
    infra: Infra, h: Any, sink: tuple[ConnectionSink, int]
) -> None:
    handler, port = sink
    settings = NotifierSettings(smtp_port=port)
    clock = ManualClock(NOW)
    count = MAIL_BATCH * 3 + 7
    async with mail_database(infra, "mail_batches", donors=count) as (db, replicas):
        queue = MongoEmailQueue(db)
        await queue.add_many([queued(h, f"eml_{i}", f"dnr_{i}") for i in range(count)])
        senders = [SmtpMailer("127.0.0.1", port, sender=SENDER, timeout=5) for _ in range(2)]
        mailers = [Mailer(MongoEmailQueue(db), replicas, s, clock, settings) for s in senders]
        try:
            handled = await asyncio.gather(*(m.run_due() for m in mailers))
        finally:
            for sender in senders:
                await sender.close()
        assert sum(handled) == count, "each e-mail handled by exactly one of the two"
        assert sorted(to for to, _ in handler.received) == sorted(f"d{i}@example.org" for i in range(count))
        assert await db.emails.count_documents({"status": "sent"}) == count
        assert await db.email_due.count_documents({}) == 0, "sent e-mails leave the due index"


class SlowSender:
    """The real SMTP sender, on a clock that moves on by the whole send timeout with every e-mail."""

    def __init__(self, inner: SmtpMailer, clock: ManualClock, seconds: float) -> None:
        self._inner = inner
        self._clock = clock
        self._seconds = seconds

    async def send(self, to: str, email: RenderedEmail, *, message_id: str) -> None:
        """Send for real, then let the clock show that it took as long as it may."""
        await self._inner.send(to, email, message_id=message_id)
        self._clock.advance(self._seconds)

    async def close(self) -> None:
        """Close the real sender's connection."""
        await self._inner.close()


async def test_emails_a_batch_cannot_send_within_its_lease_are_handed_back_and_sent_later(
    infra: Infra, h: Any, sink: tuple[ConnectionSink, int]
) -> None:
    handler, port = sink
    settings = NotifierSettings(smtp_port=port, smtp_timeout_seconds=10)
    clock = ManualClock(NOW)
    sender = SlowSender(SmtpMailer("127.0.0.1", port, sender=SENDER, timeout=5), clock, 10)
    async with mail_database(infra, "mail_lease", donors=6) as (db, replicas):
        try:
            queue = MongoEmailQueue(db)
            await queue.add_many([queued(h, f"eml_{i}", f"dnr_{i}") for i in range(6)])
            mailer = Mailer(queue, replicas, sender, clock, settings)
            # The lease is 10 + 30 s; with every send taking the full 10 s, a batch gets through 4 e-mails in
            # time and hands the other 2 back unsent and unleased, due at once (no attempt counted).
            claimed = await queue.claim_due_many(clock.now(), clock.now() + timedelta(seconds=40), MAIL_BATCH)
            assert len(claimed) == 6
            await mailer._send_batch(claimed, clock.now(), clock.now() + timedelta(seconds=40))
            assert len(handler.received) == 4
            waiting = await db.emails.find({"status": "pending"}).to_list(None)
            assert len(waiting) == 2
            assert all(e["attempts"] == 0 and e["leased_until"] < clock.now() for e in waiting)
            assert await db.email_due.count_documents({}) == 2
            # The next pass sends them; nobody got a second e-mail.
            assert await mailer.run_due() == 2
            assert sorted(to for to, _ in handler.received) == sorted(f"d{i}@example.org" for i in range(6))
        finally:
            await sender.close()


class CountingQueue(MongoEmailQueue):
    """The real e-mail queue, counting the claims made on it."""

    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self.claims = 0

    async def claim_due_many(self, now: datetime, lease_until: datetime, limit: int) -> list[QueuedEmail]:
        """Count, then claim for real."""
        self.claims += 1
        return await super().claim_due_many(now, lease_until, limit)


async def test_emails_queued_while_the_sender_runs_go_out_without_a_claim_and_no_other_instance_takes_them(
    infra: Infra, h: Any, sink: tuple[ConnectionSink, int]
) -> None:
    handler, port = sink
    settings = NotifierSettings(smtp_port=port, dispatch_sweep_seconds=3600)
    clock = ManualClock(NOW)
    sender = SmtpMailer("127.0.0.1", port, sender=SENDER, timeout=5)
    async with mail_database(infra, "mail_hand_off", donors=3) as (db, replicas):
        queue, other = CountingQueue(db), CountingQueue(db)
        mailer = Mailer(queue, replicas, sender, clock, settings)
        serving = asyncio.create_task(mailer.serve())
        try:
            await h.eventually(lambda: queue.claims >= 1, what="the sender's first pass")
            claims_before = queue.claims
            # The sender is blocked from sending until this test has looked: the e-mails are stored leased to it.
            async with sender._lock:
                confirmed = [
                    PledgeConfirmed(pledge=h.pledge_public(f"plg_{i}", "org_1", "rcp_1", donor=f"dnr_{i}"),
                                    occurred_at=NOW)
                    for i in range(3)
                ]
                plans = [(pledge_confirmed_mail(event), f"evt_{i}") for i, event in enumerate(confirmed)]
                assert await mailer.queue_for_events(plans) == 3
                assert await other.claim_due_many(clock.now(), clock.now() + timedelta(seconds=45), MAIL_BATCH) == []
                stored = await db.emails.find({}).to_list(None)
                assert len(stored) == 3 and all(e["leased_until"] > clock.now() and e["lease_token"] for e in stored)
                assert await db.email_due.count_documents({}) == 3, "a crash before sending leaves them findable"

            async def sent() -> bool:
                return await db.emails.count_documents({"status": "sent"}) == 3

            await h.eventually(sent, what="the handed-over e-mails sent")
            assert sorted(to for to, _ in handler.received) == [f"d{i}@example.org" for i in range(3)]
            assert queue.claims == claims_before, "handed over: no claim was needed"
            assert await db.email_due.count_documents({}) == 0
            # A redelivered event's e-mails exist already: nothing is queued or sent twice.
            assert await mailer.queue_for_events(plans) == 0
            assert len(handler.received) == 3
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving


async def test_emails_stored_leased_to_an_instance_that_died_are_claimed_once_the_lease_runs_out(
    infra: Infra, h: Any
) -> None:
    async with mail_database(infra, "mail_lease_out") as (db, _):
        dead, survivor = MongoEmailQueue(db), MongoEmailQueue(db)
        lease_until = NOW + timedelta(seconds=45)
        new = await dead.add_many([queued(h, f"eml_{i}", f"dnr_{i}") for i in range(2)], lease_until=lease_until)
        assert [e.id for e in new] == ["eml_0", "eml_1"] and all(e.lease_token for e in new)
        assert await survivor.claim_due_many(NOW, NOW + timedelta(seconds=45), MAIL_BATCH) == []
        later = lease_until + timedelta(seconds=1)
        claimed = await survivor.claim_due_many(later, later + timedelta(seconds=45), MAIL_BATCH)
        assert sorted(e.id for e in claimed) == ["eml_0", "eml_1"]
