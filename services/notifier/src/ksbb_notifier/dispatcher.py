"""The delivery loop: leases due deliveries, sends them concurrently, logs attempts and schedules retries."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ksbb_contracts.events.notifier import WebhookDeliveryFailed, WebhookEndpointDisabled
from ksbb_kit.clock import Clock
from ksbb_kit.outbox import with_outbox

from ksbb_notifier.adapters.http_sender import AttemptResult, WebhookSender
from ksbb_notifier.adapters.secrets import SecretBox
from ksbb_notifier.adapters.store import EPOCH, NotifierStore
from ksbb_notifier.domain.schedule import Outcome, decide
from ksbb_notifier.domain.signing import signature_header
from ksbb_notifier.settings import NotifierSettings

log = logging.getLogger(__name__)
ENDPOINT_CACHE_SECONDS = 1.0
MESSAGE_CACHE_SIZE = 2000
EventEntries = Callable[..., list[dict[str, Any]]]


def webhook_body(message: dict[str, Any]) -> str:
    """The JSON body of a message: `{type, timestamp, data}` (the event's public data only)."""
    timestamp = message["timestamp"]
    if isinstance(timestamp, datetime):
        timestamp = timestamp.isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"type": message["type"], "timestamp": timestamp, "data": message["data"]},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def valid_secrets(endpoint: dict[str, Any], box: SecretBox, now: datetime) -> list[str]:
    """The endpoint's current secret first, then previous ones still inside their rotation overlap."""
    result = []
    for entry in endpoint.get("secrets", []):
        valid_until = entry.get("valid_until")
        if valid_until is None or valid_until > now:
            result.append(box.open(entry["sealed"]))
    return result


class Dispatcher:
    """Delivers pending webhooks; a slow endpoint only ever occupies its own concurrency slots."""

    def __init__(
        self,
        store: NotifierStore,
        sender: WebhookSender,
        box: SecretBox,
        clock: Clock,
        settings: NotifierSettings,
        *,
        events: EventEntries,
        wake_relay: Callable[[], None],
        on_endpoint_disabled: Callable[[dict[str, Any], str], Any] | None = None,
    ) -> None:
        self._store = store
        self._sender = sender
        self._box = box
        self._clock = clock
        self._settings = settings
        self._events = events
        self._wake_relay = wake_relay
        self._on_disabled = on_endpoint_disabled
        self._wakeup = asyncio.Event()
        self._inflight: dict[str, int] = defaultdict(int)
        self._inflight_total = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._leases: dict[str, str] = {}
        self._next_slot: dict[str, datetime] = {}
        self._endpoints: dict[str, tuple[float, dict[str, Any]]] = {}
        self._messages: dict[str, dict[str, Any]] = {}
        self._lease = timedelta(seconds=settings.delivery_timeout_seconds + 30)

    # -- loop ------------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due deliveries now (called right after fan-out)."""
        self._wakeup.set()

    async def serve(self) -> None:
        """Run until cancelled: claim and spawn, then wait for a wake-up or the periodic sweep."""
        try:
            while True:
                self._wakeup.clear()
                try:
                    await self._claim_and_spawn()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook dispatch pass failed; will retry")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self._settings.dispatch_sweep_seconds)
        finally:
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
        for delivery_id, token in list(self._leases.items()):
            with contextlib.suppress(Exception):
                await self._store.release(self._store.deliveries, delivery_id, token)
        self._leases.clear()

    async def _claim_and_spawn(self) -> list[asyncio.Task[None]]:
        """Lease as many due deliveries as the concurrency limits allow and start their attempts."""
        spawned: list[asyncio.Task[None]] = []
        limit = self._settings.per_endpoint_concurrency
        while (room := self._settings.global_concurrency - self._inflight_total) > 0:
            now = self._clock.now()
            saturated = [e for e, n in self._inflight.items() if n >= limit]
            # One query finds candidates, one write leases them (each atomically, so another
            # instance racing for the same ones wins each at most once), one read returns the winners.
            candidates = await self._store.due(self._store.deliveries, now, room * 2, saturated)
            budget = dict(self._inflight)
            chosen: list[str] = []
            for candidate in candidates:
                endpoint_id = candidate["endpoint_id"]
                if budget.get(endpoint_id, 0) < limit and len(chosen) < room:
                    budget[endpoint_id] = budget.get(endpoint_id, 0) + 1
                    chosen.append(candidate["_id"])
            if not chosen:
                break
            claimed = await self._store.claim_many(self._store.deliveries, chosen, now, now + self._lease)
            for delivery in claimed:
                endpoint_id = delivery["endpoint_id"]
                self._inflight[endpoint_id] += 1
                self._inflight_total += 1
                self._leases[delivery["_id"]] = delivery["lease_token"]
                task = asyncio.create_task(self._attempt_guarded(delivery), name=f"webhook-{delivery['_id']}")
                self._tasks.add(task)
                spawned.append(task)
            if not claimed:
                break  # another instance took them; the next wake-up or sweep looks again
        return spawned

    async def _attempt_guarded(self, delivery: dict[str, Any]) -> None:
        endpoint_id = delivery["endpoint_id"]
        try:
            await self.attempt(delivery)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook attempt for %s crashed; the lease expires and it is retried", delivery["_id"])
        finally:
            self._leases.pop(delivery["_id"], None)
            self._inflight[endpoint_id] -= 1
            if self._inflight[endpoint_id] <= 0:
                del self._inflight[endpoint_id]
            self._inflight_total -= 1
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)
            self.wake()  # a slot is free: more work for this endpoint may be waiting

    # -- one attempt -----------------------------------------------------------------------------

    async def attempt(self, delivery: dict[str, Any]) -> None:
        """Send one leased delivery and record the outcome (guarded by the lease token)."""
        store = self._store
        now = self._clock.now()
        endpoint = await self._endpoint(delivery["endpoint_id"])
        message = await self._message(delivery["message_id"])
        if endpoint is None or message is None or not endpoint.get("enabled", False):
            reason = (
                "endpoint_deleted"
                if endpoint is None
                else ("message_missing" if message is None else "endpoint_disabled")
            )
            await self._finish(delivery, {"status": "failed", "failed_at": now, "failure_reason": reason})
            return
        if await self._throttled(delivery, endpoint, now):
            return
        body = webhook_body(message)
        timestamp = int(now.timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": "KSBB-Webhooks/1.0",
            "webhook-id": message["_id"],
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                valid_secrets(endpoint, self._box, now), message["_id"], timestamp, body
            ),
        }
        result = await self._sender.send(endpoint["url"], headers, body)
        done_at = self._clock.now()
        round_attempts = delivery.get("round_attempts", 0) + 1
        decision = decide(
            status_code=result.status_code,
            retry_after=result.retry_after,
            attempts_in_round=round_attempts,
            schedule=self._settings.retry_schedule_seconds,
            now=done_at,
            max_retry_after=self._settings.max_retry_after_seconds,
        )
        log_entry = _log_entry(result, now, delivery.get("attempts", 0) + 1)
        changes: dict[str, Any] = {
            "last_attempt_at": now,
            "last_status_code": result.status_code,
            "updated_at": done_at,
        }
        entries: list[dict[str, Any]] = []
        if decision.outcome is Outcome.SUCCEEDED:
            changes.update(status="succeeded", succeeded_at=done_at)
        elif decision.outcome is Outcome.RETRY:
            assert decision.next_attempt_at is not None
            changes.update(status="pending", next_attempt_at=decision.next_attempt_at)
        else:
            reason = "gone" if decision.outcome is Outcome.GONE else "retries_exhausted"
            changes.update(status="failed", failed_at=done_at, failure_reason=reason)
            if decision.outcome is Outcome.FAILED:
                entries = self._events(
                    WebhookDeliveryFailed(
                        endpoint_id=endpoint["_id"],
                        organisation_id=endpoint.get("organisation_id"),
                        message_id=message["_id"],
                        message_type=message["type"],
                        attempts=delivery.get("attempts", 0) + 1,
                        occurred_at=done_at,
                    )
                )
        await self._finish(delivery, changes, log_entry=log_entry, entries=entries, round_attempts=round_attempts)
        if decision.outcome is Outcome.SUCCEEDED:
            # The cached endpoint is at most a second old; a streak started meanwhile elsewhere is
            # seen (and cleared) by the next success after the refresh.
            if endpoint.get("failing_since") is not None:
                await store.note_endpoint_success(endpoint["_id"])
                self.forget_endpoint(endpoint["_id"])
        elif decision.outcome is Outcome.GONE:
            await self.disable_endpoint(endpoint["_id"], "gone: the endpoint answered 410")
        else:
            current = await store.note_endpoint_failure(endpoint["_id"], done_at)
            cached = self._endpoints.get(endpoint["_id"])
            if current is not None and cached is not None:
                cached[1]["failing_since"] = current.get("failing_since")
            limit = timedelta(days=self._settings.disable_after_failing_days)
            if current and current.get("failing_since") and done_at - current["failing_since"] >= limit:
                await self.disable_endpoint(
                    endpoint["_id"],
                    f"failing continuously for {self._settings.disable_after_failing_days:g} days",
                )

    def forget_endpoint(self, endpoint_id: str | None = None) -> None:
        """Drop a cached endpoint, or all (called after the API or this dispatcher changed one)."""
        if endpoint_id is None:
            self._endpoints.clear()
        else:
            self._endpoints.pop(endpoint_id, None)

    async def _endpoint(self, endpoint_id: str) -> dict[str, Any] | None:
        """The endpoint, cached briefly: other instances' changes apply within `ENDPOINT_CACHE_SECONDS`."""
        cached = self._endpoints.get(endpoint_id)
        if cached is not None and time.monotonic() - cached[0] < ENDPOINT_CACHE_SECONDS:
            return cached[1]
        endpoint = await self._store.endpoints.find_one({"_id": endpoint_id})
        if endpoint is not None:
            self._endpoints[endpoint_id] = (time.monotonic(), endpoint)
        return endpoint

    async def _message(self, message_id: str) -> dict[str, Any] | None:
        """A message; they never change, so a small cache serves a fan-out to many endpoints."""
        message = self._messages.get(message_id)
        if message is None:
            message = await self._store.messages.find_one({"_id": message_id})
            if message is not None:
                self._messages[message_id] = message
                while len(self._messages) > MESSAGE_CACHE_SIZE:
                    self._messages.pop(next(iter(self._messages)))
        return message

    async def disable_endpoint(self, endpoint_id: str, reason: str) -> bool:
        """Disable an endpoint, emit the event and tell its organisation; False if it was off already."""
        now = self._clock.now()
        endpoint = await self._store.endpoints.find_one({"_id": endpoint_id})
        if endpoint is None:
            return False
        entries = self._events(
            WebhookEndpointDisabled(
                endpoint_id=endpoint_id,
                organisation_id=endpoint.get("organisation_id"),
                reason=reason,
                occurred_at=now,
            )
        )
        self.forget_endpoint(endpoint_id)
        updated = await self._store.disable_endpoint(endpoint_id, reason, now, entries)
        if updated is None:
            return False
        self._wake_relay()
        if self._on_disabled is not None:
            await self._on_disabled(updated, reason)
        return True

    async def _throttled(self, delivery: dict[str, Any], endpoint: dict[str, Any], now: datetime) -> bool:
        """Honour the endpoint's rate limit by postponing (not failing) deliveries over it."""
        rate = endpoint.get("rate_limit_per_second")
        if not rate:
            return False
        slot = self._next_slot.get(endpoint["_id"], now)
        if slot > now:
            await self._store.deliveries.update_one(
                {"_id": delivery["_id"], "lease_token": delivery["lease_token"]},
                {"$set": {"next_attempt_at": slot, "leased_until": EPOCH, "lease_token": None}},
            )
            return True
        self._next_slot[endpoint["_id"]] = max(slot, now) + timedelta(seconds=1 / rate)
        return False

    async def _finish(
        self,
        delivery: dict[str, Any],
        changes: dict[str, Any],
        *,
        log_entry: dict[str, Any] | None = None,
        entries: list[dict[str, Any]] | None = None,
        round_attempts: int | None = None,
    ) -> None:
        update: dict[str, Any] = {"$set": {**changes, "leased_until": EPOCH, "lease_token": None}}
        if log_entry is not None:
            update["$inc"] = {"attempts": 1}
            update["$push"] = {"attempt_log": {"$each": [log_entry], "$slice": -self._settings.attempts_kept}}
            update["$set"]["round_attempts"] = round_attempts
        update = with_outbox(update, entries or [])
        await self._store.deliveries.update_one(
            {"_id": delivery["_id"], "lease_token": delivery["lease_token"]}, update
        )
        if entries:
            self._wake_relay()


def _log_entry(result: AttemptResult, at: datetime, number: int) -> dict[str, Any]:
    return {
        "attempt": number,
        "at": at,
        "status_code": result.status_code,
        "latency_ms": result.latency_ms,
        "response_body": result.response_body,
        "error": result.error,
    }
