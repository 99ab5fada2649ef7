"""Endpoint rules without I/O: switching off after 410 or days of failures, owners' changes, secret rotation."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_contracts.events.notifier import WebhookDeliveryFailed
from ksbb_notifier.domain.deliveries import (
    AttemptOutcome,
    AttemptResult,
    Delivery,
    DeliveryStatus,
    Message,
    attempt_outcome,
    signed_request,
)
from ksbb_notifier.domain.endpoints import (
    GONE_REASON,
    NEVER_NULL,
    OWNER_DISABLED_REASON,
    Endpoint,
    SigningSecret,
    failing_too_long,
    refuse_nulls,
    rotated_secrets,
    updated_fields,
)
from ksbb_notifier.domain.errors import FieldMayNotBeNull
from ksbb_notifier.domain.schedule import Decision, Outcome
from ksbb_notifier.domain.signing import secret_from_bytes, secret_hint
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

pytestmark = pytest.mark.unit
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    """A fresh signing secret."""
    return secret_from_bytes(os.urandom(32))


def stored(secret: str, at: datetime = NOW, valid_until: datetime | None = None) -> SigningSecret:
    """A secret as stored; "sealing" is the identity here, the adapter encrypts."""
    return SigningSecret(secret, secret_hint(secret), valid_until, at)


def endpoint(**fields: Any) -> Endpoint:
    """An enabled endpoint of organisation org_a, with these fields changed."""
    base = Endpoint(
        "whe_1", "org_a", "https://ngo.example.org/hooks", True, 3, NOW, NOW, secrets=(stored(new_secret()),)
    )
    return replace(base, **fields)


# -- disabling -----------------------------------------------------------------------------------


@given(hours=st.integers(0, 24 * 30))
def test_an_endpoint_is_disabled_once_it_has_failed_for_five_days(hours: int) -> None:
    reason = failing_too_long(NOW, NOW + timedelta(hours=hours), 5)
    if hours < 5 * 24:
        assert reason is None
    else:
        assert reason == "failing continuously for 5 days"


def test_no_failure_streak_never_disables_and_the_limit_is_a_setting() -> None:
    assert failing_too_long(None, NOW + timedelta(days=365), 5) is None
    assert failing_too_long(NOW, NOW + timedelta(hours=12), 0.5) == "failing continuously for 0.5 days"


def outcome_of(status: int | None, decision: Decision, *, attempts: int = 0) -> AttemptOutcome:
    """What one attempt with this answer changes on a delivery that had `attempts` before."""
    delivery = Delivery(
        "dlv_1",
        "msg_1",
        "whe_1",
        "org_a",
        "ksbb.pledge.created.v1",
        DeliveryStatus.PENDING,
        NOW,
        NOW,
        attempts=attempts,
        round_attempts=attempts,
    )
    message = Message("msg_1", "ksbb.pledge.created.v1", NOW, {"a": 1}, "org_a", NOW)
    result = AttemptResult(status, 12, "body")
    return attempt_outcome(
        delivery, endpoint(), message, result, decision, attempted_at=NOW, finished_at=NOW + timedelta(seconds=1)
    )


def test_410_fails_the_delivery_as_gone_without_a_delivery_failed_event() -> None:
    outcome = outcome_of(410, Decision(Outcome.GONE))
    assert outcome.changes["status"] == "failed" and outcome.changes["failure_reason"] == "gone"
    assert outcome.events == ()
    assert "410" in GONE_REASON


def test_exhausted_retries_fail_the_delivery_and_emit_delivery_failed() -> None:
    outcome = outcome_of(500, Decision(Outcome.FAILED), attempts=7)
    assert outcome.changes["failure_reason"] == "retries_exhausted"
    [event] = outcome.events
    assert isinstance(event, WebhookDeliveryFailed)
    assert (event.endpoint_id, event.message_id, event.attempts) == ("whe_1", "msg_1", 8)
    assert outcome.log_entry.attempt == 8 and outcome.log_entry.status_code == 500


def test_a_retry_and_a_success_record_the_attempt_only() -> None:
    retry = outcome_of(503, Decision(Outcome.RETRY, NOW + timedelta(seconds=5)))
    assert retry.changes["status"] == "pending" and retry.changes["next_attempt_at"] == NOW + timedelta(seconds=5)
    assert retry.changes["round_attempts"] == 1 and retry.events == ()
    success = outcome_of(204, Decision(Outcome.SUCCEEDED))
    assert success.changes["status"] == "succeeded" and "failure_reason" not in success.changes


# -- owners' changes -----------------------------------------------------------------------------


def test_re_enabling_clears_the_failure_streak_and_the_reason() -> None:
    off = endpoint(enabled=False, disabled_reason=GONE_REASON, failing_since=NOW)
    changes = updated_fields(off, {"enabled": True}, NOW)
    assert changes == {"enabled": True, "disabled_reason": None, "failing_since": None, "updated_at": NOW}


def test_switching_off_records_that_the_owner_did_it() -> None:
    assert updated_fields(endpoint(), {"enabled": False}, NOW)["disabled_reason"] == OWNER_DISABLED_REASON
    # No transition, no extra field: an enabled endpoint "enabled" again keeps its failure streak.
    assert updated_fields(endpoint(failing_since=NOW), {"enabled": True}, NOW) == {"enabled": True, "updated_at": NOW}
    assert "disabled_reason" not in updated_fields(endpoint(enabled=False), {"enabled": False}, NOW)


@pytest.mark.parametrize("field", NEVER_NULL)
def test_fields_that_always_have_a_value_may_not_be_set_to_null(field: str) -> None:
    with pytest.raises(FieldMayNotBeNull) as refused:
        refuse_nulls({"description": None, field: None}, NEVER_NULL)
    assert refused.value.field == field
    refuse_nulls({"description": None}, NEVER_NULL)


# -- rotation and signatures ---------------------------------------------------------------------


def sign_now(target: Endpoint, at: datetime) -> tuple[str, dict[str, str]]:
    """Body and headers of a delivery at `at`, signed with every secret valid then."""
    message = Message("msg_rot", "ksbb.webhook.test.v1", at, {"x": "y"}, "org_a", at)
    request = signed_request(target, message, target.sealed_secrets_valid_at(at), at)
    return request.body, request.headers


def test_during_the_overlap_both_secrets_sign_and_afterwards_only_the_new_one() -> None:
    old, new = new_secret(), new_secret()
    now = datetime.fromtimestamp(int(time.time()), UTC)  # the reference library checks the timestamp
    before = endpoint(secrets=(stored(old),))
    secrets, overlap_until = rotated_secrets(before.secrets, stored(new, now), now, OVERLAP)
    rotated = endpoint(secrets=secrets)
    assert overlap_until == now + OVERLAP
    assert rotated.secret_hint == secret_hint(new) and rotated.previous_secret_valid_until == overlap_until

    body, headers = sign_now(rotated, now)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert headers["webhook-signature"].split(" ")[0].startswith("v1,")
    assert Webhook(old).verify(body, headers)["data"] == {"x": "y"}
    assert Webhook(new).verify(body, headers)["data"] == {"x": "y"}

    # Once the overlap is over, only the new secret signs (the same rule, applied to a later time).
    expired = endpoint(secrets=(secrets[0], SigningSecret(old, secret_hint(old), now - timedelta(seconds=1), now)))
    body, headers = sign_now(expired, now)
    assert len(headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, headers)


def test_rotating_again_keeps_secrets_still_in_their_overlap_and_drops_expired_ones() -> None:
    first, second, third, fourth = new_secret(), new_secret(), new_secret(), new_secret()
    secrets, until_1 = rotated_secrets((stored(first),), stored(second), NOW, OVERLAP)
    later = NOW + timedelta(hours=1)
    secrets, until_2 = rotated_secrets(secrets, stored(third, later), later, OVERLAP)
    assert [s.sealed for s in secrets] == [third, second, first]
    assert [s.valid_until for s in secrets] == [None, until_2, until_1]
    assert endpoint(secrets=secrets).sealed_secrets_valid_at(later) == [third, second, first]
    much_later = NOW + OVERLAP + timedelta(minutes=1)
    secrets, _ = rotated_secrets(secrets, stored(fourth, much_later), much_later, OVERLAP)
    assert [s.sealed for s in secrets] == [fourth, third, second]  # the first, expired meanwhile, was dropped
