"""The delivery loop: leases due deliveries, sends them concurrently, records attempts and schedules retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ksbb_kit.jobs import JOB_ITEM_FAILURES, StuckItems
from ksbb_kit.wakeup import woken

from ksbb_notifier.app.endpoints import Endpoints
from ksbb_notifier.app.observability import WEBHOOK_ATTEMPT_SECONDS, WEBHOOK_ATTEMPTS, WEBHOOK_DELIVERY_SECONDS
from ksbb_notifier.app.ports import Clock, DeliveryQueue, DeliverySlots, RateGate, WebhookSender
from ksbb_notifier.domain.deliveries import (
    Delivery,
    DueDelivery,
    Message,
    abandoned,
    attempt_outcome,
    signed_request,
    undeliverable_reason,
)
from ksbb_notifier.domain.schedule import Outcome, decide
from ksbb_notifier.settings import NotifierSettings

log = logging.getLogger(__name__)
#: Messages never change, so a small cache serves a fan-out to many endpoints.
MESSAGE_CACHE_SIZE = 2000
#: When only a few slots are free while attempts are running, wait this long for more to finish first,
#: so one claim (a query and two writes) leases many deliveries instead of one or two.
CLAIM_GATHER_SECONDS = 0.01


@dataclass(frozen=True)
class Reservation:
    """Concurrency slots a fan-out reserved for its new deliveries (id → endpoint), leased until `lease_until`."""

    lease_until: datetime
    slots: dict[str, str]


class Dispatcher:
    """Delivers pending webhooks; a slow endpoint only ever occupies its own concurrency slots."""

    def __init__(
        self,
        queue: DeliveryQueue,
        endpoints: Endpoints,
        sender: WebhookSender,
        *,
        slots: DeliverySlots,
        rate_gate: RateGate,
        clock: Clock,
        settings: NotifierSettings,
        stuck: StuckItems | None = None,
    ) -> None:
        self._queue = queue
        self._stuck = stuck
        self._endpoints = endpoints
        self._sender = sender
        self._slots = slots
        self._rate_gate = rate_gate
        self._clock = clock
        self._settings = settings
        self._lease = timedelta(seconds=settings.delivery_timeout_seconds + 30)
        self._claim_batch = max(1, settings.global_concurrency // 8)
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._leased: dict[str, Delivery] = {}
        #: Deliveries holding one of their endpoint's concurrency slots (given back when the request is over).
        self._slotted: set[str] = set()
        self._messages: dict[str, Message] = {}
        #: Whether `serve` runs: only then do fan-outs lease their new deliveries to this loop.
        self._serving = False
        #: Whether due deliveries may wait beyond the ones handed over (after a wake-up, a periodic sweep or
        #: a pass that left some for want of a slot): only then does a freed slot start a claim pass, which
        #: otherwise would read an empty due index after every delivery.
        self._may_wait = True

    # -- loop ------------------------------------------------------------------------------------

    def reserve(self, deliveries: Sequence[Delivery], now: datetime) -> Reservation | None:
        """Take concurrency slots for those of a fan-out's new deliveries that fit within the limits now: the
        fan-out stores them leased to this loop (until the reservation's time) and hands them over. None while
        the loop is not serving (tests drive `run_due` by hand, and that claims only unleased deliveries)."""
        if not self._serving:
            return None
        endpoints = {d.id: d.endpoint_id for d in deliveries}
        chosen = self._slots.pick([DueDelivery(d.id, d.endpoint_id) for d in deliveries], self._slots.room())
        for delivery_id in chosen:
            self._slots.take(endpoints[delivery_id])
        return Reservation(now + self._lease, {i: endpoints[i] for i in chosen})

    def hand_off(self, messages: Sequence[Message], leased: Sequence[Delivery], reservation: Reservation) -> int:
        """Take a fan-out's messages (they never change) and start its new deliveries leased to this loop in
        their reserved slots; reserved slots of deliveries that were not new (a redelivered event) go back.
        How many it started."""
        for message in messages:
            self._remember(message)
        started: set[str] = set()
        for delivery in leased:
            if delivery.id in reservation.slots and delivery.lease_token is not None:
                self._start(delivery, slot_taken=True)
                started.add(delivery.id)
        for delivery_id, endpoint_id in reservation.slots.items():
            if delivery_id not in started:
                self._slots.release(endpoint_id)
        if len(started) < len(reservation.slots):
            self.wake()
        return len(started)

    def wake(self) -> None:
        """Look for due deliveries now (called right after fan-out, redelivery and recovery)."""
        self._may_wait = True
        self._wakeup.set()

    async def serve(self) -> None:
        """Run until cancelled: claim and spawn, then wait for a wake-up or the periodic sweep."""
        self._serving = True
        try:
            while True:
                self._wakeup.clear()
                try:
                    await self._claim_and_spawn()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self._may_wait = True
                    log.exception("webhook dispatch pass failed; will retry")
                if not await woken(self._wakeup, self._settings.dispatch_sweep_seconds):
                    self._may_wait = True  # the periodic sweep: retries come due, other instances left some
                if self._tasks and 0 < self._slots.room() < self._claim_batch:
                    await asyncio.sleep(CLAIM_GATHER_SECONDS)
        finally:
            self._serving = False
            await self.shutdown()
            await self._sender.close()

    async def run_due(self) -> int:
        """Deliver everything due now and wait for those attempts (tests and sweeps drive this by hand)."""
        total = 0
        while True:
            spawned = await self._claim_and_spawn()
            if not spawned:
                return total
            total += len(spawned)
            await asyncio.gather(*spawned, return_exceptions=True)

    async def shutdown(self) -> None:
        """Stop in-flight attempts and hand their leases back so another instance can take over at once."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        for delivery in list(self._leased.values()):
            with contextlib.suppress(Exception):
                await self._queue.release(delivery)
        self._leased.clear()

    async def _claim_and_spawn(self) -> list[asyncio.Task[None]]:
        """Lease as many due deliveries as the concurrency limits allow and start their attempts."""
        spawned: list[asyncio.Task[None]] = []
        self._may_wait = False  # a wake-up during this pass sets it again
        while (room := self._slots.room()) > 0:
            now = self._clock.now()
            # One query finds candidates, one write leases them (each atomically, so another
            # instance racing for the same ones wins each at most once), one read returns the winners.
            saturated = self._slots.saturated()
            candidates = await self._queue.due(now, room * 2, saturated)
            chosen = self._slots.pick(candidates, room)
            if saturated or len(chosen) < len(candidates):
                self._may_wait = True  # some wait for a slot, or are hidden behind a full endpoint
            if not chosen:
                break
            claimed = await self._queue.claim(chosen, now, now + self._lease)
            try:
                # The endpoints and messages of the whole batch in one read each, before the attempts start
                # (concurrent attempts of one message would otherwise each miss the cache and read it).
                await self._endpoints.cache.warm([delivery.endpoint_id for delivery in claimed])
                await self._warm_messages([delivery.message_id for delivery in claimed])
            except Exception:  # each attempt reads its endpoint and message itself then
                log.warning("could not read the endpoints or messages of %d leased deliveries at once",
                            len(claimed), exc_info=True)
            spawned += [self._start(delivery) for delivery in claimed]
            if not claimed:
                break  # another instance took them; the next wake-up or sweep looks again
        else:
            self._may_wait = True  # no slot left: whatever else is due waits for one
        return spawned

    def _start(self, delivery: Delivery, *, slot_taken: bool = False) -> asyncio.Task[None]:
        """Take the delivery's concurrency slot (unless reserved already) and start its attempt."""
        if not slot_taken:
            self._slots.take(delivery.endpoint_id)
        self._slotted.add(delivery.id)
        self._leased[delivery.id] = delivery
        task = asyncio.create_task(self._attempt_guarded(delivery), name=f"webhook-{delivery.id}")
        self._tasks.add(task)
        return task

    async def _attempt_guarded(self, delivery: Delivery) -> None:
        try:
            await self.attempt(delivery)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Only this delivery waits for its lease to expire; the others go on. Operators see it stuck.
            log.exception("webhook attempt for %s crashed; the lease expires and it is retried", delivery.id)
            JOB_ITEM_FAILURES.labels(job="webhook-delivery").inc()
            if self._stuck is not None:
                with contextlib.suppress(Exception):
                    await self._stuck.mark("webhook-delivery", delivery.id, f"{type(exc).__name__}: {exc}")
        finally:
            self._leased.pop(delivery.id, None)
            self._free_slot(delivery)
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)

    def _free_slot(self, delivery: Delivery) -> None:
        """Give the delivery's endpoint slot back (once); look for more work if some may be waiting for it."""
        if delivery.id in self._slotted:
            self._slotted.discard(delivery.id)
            self._slots.release(delivery.endpoint_id)
            if self._may_wait:
                self._wakeup.set()

    # -- one attempt -----------------------------------------------------------------------------

    async def attempt(self, delivery: Delivery) -> None:
        """Send one leased delivery and record the outcome (guarded by the lease token)."""
        now = self._clock.now()
        endpoint = await self._endpoints.cache.get(delivery.endpoint_id)
        message = await self._message(delivery.message_id)
        reason = undeliverable_reason(endpoint, message)
        if reason is not None:
            await self._queue.settle(delivery, abandoned(reason, now))
            WEBHOOK_ATTEMPTS.labels(outcome="abandoned").inc()
            return
        assert endpoint is not None and message is not None  # a missing one has a reason above
        if endpoint.rate_limit_per_second:
            retry_at = await self._rate_gate.admit(endpoint.id, endpoint.rate_limit_per_second, now)
            if retry_at is not None:
                await self._queue.postpone(delivery, retry_at)
                WEBHOOK_ATTEMPTS.labels(outcome="rate_limited").inc()
                return
        request = signed_request(endpoint, message, self._endpoints.open_secrets(endpoint, now), now)
        sending = time.perf_counter()
        result = await self._sender.send(request)
        WEBHOOK_ATTEMPT_SECONDS.observe(time.perf_counter() - sending)
        # The slots limit requests to the receiver: the next delivery to this endpoint need not wait while
        # this one's outcome is written (the lease keeps it from being claimed again meanwhile).
        self._free_slot(delivery)
        done_at = self._clock.now()
        decision = decide(
            status_code=result.status_code,
            retry_after=result.retry_after,
            attempts_in_round=delivery.round_attempts + 1,
            schedule=self._settings.retry_schedule_seconds,
            now=done_at,
            max_retry_after=self._settings.max_retry_after_seconds,
        )
        outcome = attempt_outcome(delivery, endpoint, message, result, decision, attempted_at=now, finished_at=done_at)
        await self._queue.record_attempt(delivery, outcome, keep_attempts=self._settings.attempts_kept)
        WEBHOOK_ATTEMPTS.labels(outcome=outcome.outcome.value).inc()
        if outcome.outcome is Outcome.SUCCEEDED:
            WEBHOOK_DELIVERY_SECONDS.observe(max(0.0, (done_at - delivery.created_at).total_seconds()))
        if decision.next_attempt_at is not None and decision.next_attempt_at <= done_at:
            self.wake()  # a retry due at once (Retry-After: 0) need not wait for the periodic sweep
        if outcome.outcome is Outcome.SUCCEEDED:
            await self._endpoints.delivered(endpoint)
        elif outcome.outcome is Outcome.GONE:
            await self._endpoints.gone(endpoint.id)
        else:
            await self._endpoints.failed(endpoint.id, done_at)

    async def _message(self, message_id: str) -> Message | None:
        message = self._messages.get(message_id)
        if message is None:
            message = await self._queue.message(message_id)
            if message is not None:
                self._remember(message)
        return message

    async def _warm_messages(self, message_ids: list[str]) -> None:
        """Read the messages not cached yet among these, at once."""
        missing = [i for i in dict.fromkeys(message_ids) if i not in self._messages]
        for message in await self._queue.messages(missing) if missing else []:
            self._remember(message)

    def _remember(self, message: Message) -> None:
        self._messages[message.id] = message
        while len(self._messages) > MESSAGE_CACHE_SIZE:
            self._messages.pop(next(iter(self._messages)))
