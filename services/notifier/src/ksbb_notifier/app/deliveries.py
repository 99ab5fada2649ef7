"""Delivery use cases: fan events out to endpoints, send test events, read the log, redeliver and recover."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ksbb_contracts import CloudEvent
from ksbb_kit.auth import Principal
from ksbb_kit.ids import derived_id, new_id

from ksbb_notifier.app.dispatcher import Dispatcher
from ksbb_notifier.app.endpoints import Endpoints
from ksbb_notifier.app.ports import Clock, DeliveryLog, EndpointStore, ReplicaStore
from ksbb_notifier.domain.deliveries import Delivery, Message, new_delivery, requeued
from ksbb_notifier.domain.endpoints import Endpoint
from ksbb_notifier.domain.errors import DeliveryNotFound
from ksbb_notifier.domain.routing import (
    TEST_EVENT_TYPE,
    MessageScope,
    endpoint_receives,
    is_webhook_type,
    scope_of,
)

#: The data of the message the "send test event" action delivers.
TEST_MESSAGE = "Uji webhook KSBB / KSBB webhook test"


@dataclass(frozen=True)
class TestSent:
    """The queued test message and its delivery."""

    message_id: str
    delivery_id: str
    type: str


@dataclass(frozen=True)
class LogPage:
    """A page of an endpoint's delivery log, newest first; `has_more` when older entries follow."""

    items: list[Delivery]
    has_more: bool


class Deliveries:
    """Messages and their deliveries, as events and endpoint owners create and inspect them."""

    def __init__(
        self,
        log: DeliveryLog,
        endpoint_store: EndpointStore,
        replicas: ReplicaStore,
        endpoints: Endpoints,
        *,
        wake_dispatcher: Callable[[], None],
        clock: Clock,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self._log = log
        self._endpoint_store = endpoint_store
        self._replicas = replicas
        self._endpoints = endpoints
        self._wake = wake_dispatcher
        self._dispatcher = dispatcher
        self._clock = clock

    async def fan_out(self, envelope: CloudEvent) -> int:
        """Store the message and one delivery per matching enabled endpoint (idempotent on redelivery)."""
        if not is_webhook_type(envelope.type):
            return 0
        data = envelope.data
        # The organisation and programme-wide reach do not depend on the recipient's kind: the kind and
        # the endpoints are read at once.
        reach = scope_of(envelope.type, data)
        kind, candidates = await asyncio.gather(
            self._replicas.recipient_kind(_recipient_of(data)),
            self._endpoint_store.enabled_for(reach.organisation_id, programme_wide=reach.programme_wide),
        )
        scope = scope_of(envelope.type, data, kind)
        now = self._clock.now()
        message = Message(envelope.id, envelope.type, envelope.time, data, scope.organisation_id, now)
        deliveries = [
            _delivery(envelope.id, endpoint, envelope.type, now)
            for endpoint in candidates
            if endpoint_receives(endpoint.filter, envelope.type, scope)
        ]
        return await self._store([message], deliveries)

    async def fan_out_many(self, envelopes: Sequence[CloudEvent]) -> int:
        """`fan_out` for many events at once: one read of recipient kinds and of endpoints, one write of the
        messages, one of the deliveries (idempotent on redelivery, like one at a time)."""
        webhooks = [e for e in envelopes if is_webhook_type(e.type)]
        if len(webhooks) <= 1:
            return sum([await self.fan_out(e) for e in webhooks])
        recipients = [r for r in (_recipient_of(e.data) for e in webhooks) if r is not None]
        kinds, endpoints = await asyncio.gather(
            self._replicas.recipient_kinds(recipients),
            self._endpoint_store.enabled_for(None, programme_wide=True),
        )
        now = self._clock.now()
        messages: list[Message] = []
        deliveries: list[Delivery] = []
        for envelope in webhooks:
            recipient_id = _recipient_of(envelope.data)
            scope = scope_of(envelope.type, envelope.data, kinds.get(recipient_id) if recipient_id else None)
            messages.append(
                Message(envelope.id, envelope.type, envelope.time, envelope.data, scope.organisation_id, now)
            )
            deliveries += [
                _delivery(envelope.id, endpoint, envelope.type, now)
                for endpoint in endpoints
                if _may_receive(endpoint, scope) and endpoint_receives(endpoint.filter, envelope.type, scope)
            ]
        return await self._store(messages, deliveries)

    async def _store(self, messages: Sequence[Message], deliveries: Sequence[Delivery]) -> int:
        """Store a fan-out and hand it to the delivery loop when it runs here: the new deliveries it has room
        for leased to it (it sends them at once, with no query and no claim), its messages so it need not read
        them back. The others wait in the queue for a claim, as always. A message serves only its deliveries
        (their requests and log): one that no endpoint takes is not stored at all."""
        needed = {delivery.message_id for delivery in deliveries}
        messages = [message for message in messages if message.id in needed]
        reservation = self._dispatcher.reserve(deliveries, self._clock.now()) if self._dispatcher else None
        new: list[Delivery] = []
        started = 0
        try:
            new = await self._log.add_fan_out(
                messages, deliveries,
                lease_until=reservation.lease_until if reservation else None,
                leased_ids=set(reservation.slots) if reservation else frozenset(),
            )
        finally:
            # Also when the write failed: the reserved slots go back (a delivery stored leased meanwhile is
            # taken over once its lease runs out).
            if reservation is not None and self._dispatcher is not None:
                started = self._dispatcher.hand_off(messages, new, reservation)
        if len(deliveries) > started:  # some wait for a claim (or were there already): the loop looks now
            self._wake()
        return len(new)

    async def send_test(self, caller: Principal, endpoint_id: str) -> TestSent:
        """Queue a signed test message to one enabled endpoint."""
        endpoint = await self._endpoints.get_enabled(caller, endpoint_id)
        now = self._clock.now()
        message = Message(
            id=new_id("msg"),
            type=TEST_EVENT_TYPE,
            timestamp=now,
            data={"endpoint_id": endpoint_id, "organisation_id": endpoint.organisation_id, "message": TEST_MESSAGE},
            organisation_id=endpoint.organisation_id,
            created_at=now,
        )
        await self._log.add_message(message)
        delivery = _delivery(message.id, endpoint, TEST_EVENT_TYPE, now)
        await self._log.add_deliveries([delivery])
        self._wake()
        return TestSent(message.id, delivery.id, TEST_EVENT_TYPE)

    async def page(
        self,
        endpoint: Endpoint,
        *,
        status: str | None = None,
        event_type: str | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> LogPage:
        """The delivery log of an endpoint the caller may manage (read with `Endpoints.get`), newest first."""
        found = await self._log.page(endpoint.id, status=status, event_type=event_type, before=before, limit=limit + 1)
        return LogPage(found[:limit], len(found) > limit)

    async def get(self, caller: Principal, endpoint_id: str, delivery_id: str) -> Delivery:
        """One delivery with every attempt."""
        await self._endpoints.get(caller, endpoint_id)
        delivery = await self._log.get(endpoint_id, delivery_id)
        if delivery is None:
            raise DeliveryNotFound(delivery_id)
        return delivery

    async def redeliver(self, caller: Principal, endpoint_id: str, delivery_id: str) -> Delivery:
        """Send one message again now, on a fresh retry schedule."""
        await self._endpoints.get_enabled(caller, endpoint_id)
        delivery = await self._log.change(endpoint_id, delivery_id, requeued(self._clock.now()))
        if delivery is None:
            raise DeliveryNotFound(delivery_id)
        self._wake()
        return delivery

    async def recover(self, caller: Principal, endpoint_id: str, since: datetime) -> int:
        """Requeue every failed delivery of messages since a time; how many."""
        await self._endpoints.get_enabled(caller, endpoint_id)
        count = await self._log.requeue_failed(endpoint_id, since, requeued(self._clock.now()))
        self._wake()
        return count

    async def sweep_finished(self, cutoff: datetime) -> dict[str, int]:
        """Forget finished deliveries, and messages no delivery needs, created before `cutoff`."""
        return await self._log.sweep_finished(cutoff)


class FanOutBatch:
    """Collects the fan-outs of a batch of events and makes them at once (`Deliveries.fan_out_many`)."""

    def __init__(self, deliveries: Deliveries) -> None:
        self._deliveries = deliveries
        self._pending: list[CloudEvent] = []

    async def fan_out(self, envelope: CloudEvent) -> int:
        """Note an event to fan out with the rest of its batch."""
        self._pending.append(envelope)
        return 0

    async def flush(self) -> int:
        """Fan out every noted event; how many deliveries were new."""
        pending, self._pending = self._pending, []
        return await self._deliveries.fan_out_many(pending)


def _recipient_of(data: dict[str, Any]) -> str | None:
    """The recipient a pledge or need event is about, if any."""
    snapshot: dict[str, Any] = next((data[k] for k in ("pledge", "need") if isinstance(data.get(k), dict)), {})
    recipient_id = snapshot.get("recipient_id")
    return recipient_id if isinstance(recipient_id, str) else None


def _may_receive(endpoint: Endpoint, scope: MessageScope) -> bool:
    """Whether the endpoint's owner may see the event: programme-wide ones everyone, others their organisation's."""
    return bool(scope.programme_wide) or endpoint.organisation_id in (None, scope.organisation_id)


def _delivery(message_id: str, endpoint: Endpoint, event_type: str, now: datetime) -> Delivery:
    """A new pending delivery; its id derives from message and endpoint, so fan-out is idempotent."""
    return new_delivery(derived_id("dlv", message_id, endpoint.id), message_id, endpoint, event_type, now)
