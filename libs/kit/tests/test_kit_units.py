"""Unit tests of the kit's pure parts: settings, tokens, redaction, HTTP helpers, tracing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from joserfc._rfc7519 import claims as jwt_claims
from ksbb_kit import auth
from ksbb_kit.auth import DevIssuer, Role, TokenVerifier
from ksbb_kit.clock import ManualClock
from ksbb_kit.consumer import ConsumedRecord, EventDispatcher, EventRouter
from ksbb_kit.errors import ApiError
from ksbb_kit.http import check_if_match, decode_cursor, encode_cursor, etag_for
from ksbb_kit.ids import derived_id, new_id
from ksbb_kit.logging import redact
from ksbb_kit.settings import KitSettings
from ksbb_kit.tracing import child_of, new_traceparent, trace_id
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

pytestmark = pytest.mark.unit


class DemoSettings(KitSettings):
    """Settings of an imaginary service."""

    service_name: ClassVar[str] = "demo"
    smtp_password: SecretStr = SecretStr("changeme")


def test_service_prefix_wins_over_shared_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KSBB_KAFKA_BOOTSTRAP", "shared:1")
    assert DemoSettings().kafka_bootstrap == "shared:1"

    class Prefixed(DemoSettings):
        model_config = SettingsConfigDict(env_prefix="KSBB_DEMO_")

    monkeypatch.setenv("KSBB_DEMO_KAFKA_BOOTSTRAP", "own:2")
    assert Prefixed().kafka_bootstrap == "own:2"
    assert Prefixed().database_name == "ksbb_demo"


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        DemoSettings(env="production", secret_key=SecretStr("real-secret-value"))
    DemoSettings(env="development")  # fine while developing
    ok = DemoSettings(
        env="production", secret_key=SecretStr("s3cr3t-x"), smtp_password=SecretStr("pw-123"),
        kafka_bootstrap="kafka:9092", mongodb_url="mongodb://db/", jwks_url="https://id/jwks", jwt_issuer="https://id/",
        dev_issuer_enabled=False,  # the test plugin trusts the development issuer through the environment
    )
    assert ok.env == "production"


def test_ids_are_prefixed_unique_and_derivable() -> None:
    assert new_id("rcp").startswith("rcp_") and new_id("rcp") != new_id("rcp")
    assert derived_id("plg", "donor", "key-1") == derived_id("plg", "donor", "key-1")
    assert derived_id("plg", "donor", "key-1") != derived_id("plg", "donor", "key-2")


def test_tokens_verified_against_jwks(tmp_path: Path) -> None:
    issuer = DevIssuer(tmp_path)
    verifier = TokenVerifier(str(issuer.jwks_path), issuer=issuer.issuer, audience=issuer.audience)
    principal = asyncio.run(verifier.verify(issuer.token(Role.FACILITATOR, org_id="org_1")))
    assert principal.role is Role.FACILITATOR and principal.is_facilitator_of("org_1")
    assert not principal.is_facilitator_of("org_2")

    for bad in (
        issuer.token(Role.ADMIN, audience="someone-else"),
        issuer.token(Role.ADMIN, issuer="evil"),
        issuer.token(Role.ADMIN, ttl_seconds=-10),
        issuer.token(Role.ADMIN)[:-4] + "AAAA",
        DevIssuer(tmp_path / "other").token(Role.ADMIN),  # signed by a key not in the JWKS
    ):
        with pytest.raises(ApiError) as caught:
            asyncio.run(verifier.verify(bad))
        assert caught.value.status == 401
    with pytest.raises(ApiError):
        asyncio.run(verifier.verify(issuer.token(Role.FACILITATOR)))  # facilitator without org


def test_a_token_accepted_once_skips_the_signature_check_until_it_expires_or_its_key_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = DevIssuer(tmp_path / "issuer")
    published = issuer.jwks_path.read_text()
    # The JWKS is read again on every request (cache_seconds=0): a key fetched again is still the same key.
    verifier = TokenVerifier(str(issuer.jwks_path), issuer=issuer.issuer, audience=issuer.audience,
                             cache_seconds=0, leeway_seconds=0)
    signature_checks: list[str] = []
    check = auth.jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        signature_checks.append(token)
        return check(token, *args, **kwargs)

    monkeypatch.setattr(auth.jwt, "decode", counted)

    async def scenario() -> None:
        token = issuer.token(Role.DONOR, subject="d1")
        for _ in range(5):
            assert (await verifier.verify(token)).subject == "d1"
        assert len(signature_checks) == 1 and len(verifier.verified) == 1

        # The issuer publishes another key instead (under the same kid when made in the same second): the
        # remembered token goes through the full check again, and fails.
        issuer.jwks_path.write_text(DevIssuer(tmp_path / "another").jwks_path.read_text())
        with pytest.raises(ApiError) as withdrawn:
            await verifier.verify(token)
        message = withdrawn.value.body.message
        assert withdrawn.value.status == 401 and ("no signing key" in message or "signature not valid" in message)
        assert len(verifier.verified) == 0

        # A remembered token's claims are checked on every request: it is refused once it expires (on the
        # claims check's own clock, moved here), and forgotten.
        issuer.jwks_path.write_text(published)
        short = issuer.token(Role.DONOR, subject="d2", ttl_seconds=60)
        assert (await verifier.verify(short)).subject == "d2"
        assert (await verifier.verify(short)).subject == "d2"
        expires = json.loads(auth._b64(short.split(".")[1]))["exp"]
        monkeypatch.setattr(jwt_claims, "_generate_now", lambda: expires + 1)
        with pytest.raises(ApiError) as expired:
            await verifier.verify(short)
        assert expired.value.status == 401 and "exp" in expired.value.body.message
        assert signature_checks.count(short) == 1 and len(verifier.verified) == 0

    asyncio.run(scenario())


def test_verified_tokens_keep_the_most_recently_used_within_their_limit(tmp_path: Path) -> None:
    issuer = DevIssuer(tmp_path)
    verifier = TokenVerifier(str(issuer.jwks_path), issuer=issuer.issuer, audience=issuer.audience)
    verifier.verified = auth.VerifiedTokens(kept=2)
    tokens = [issuer.token(Role.DONOR, subject=f"d{index}") for index in range(3)]

    async def scenario() -> list[bool]:
        for token in tokens[:2]:
            await verifier.verify(token)
        await verifier.verify(tokens[0])  # used again: the second is now the least recently used
        await verifier.verify(tokens[2])
        return [await verifier.verified.recall(token) is not None for token in tokens]

    assert asyncio.run(scenario()) == [True, False, True]


def test_issuer_keeps_its_key_across_restarts(tmp_path: Path) -> None:
    first = DevIssuer(tmp_path)
    token = first.token(Role.DONOR, subject="d1")
    second = DevIssuer(tmp_path)
    verifier = TokenVerifier(str(second.jwks_path), issuer=second.issuer, audience=second.audience)
    assert asyncio.run(verifier.verify(token)).subject == "d1"
    assert len(json.loads(second.jwks_path.read_text())["keys"]) == 1


def test_logs_redact_personal_data() -> None:
    text = "call Budi at 0812-3456-7890 or +62 812 3456 7890, mail budi.santoso@example.org"
    redacted = redact(text)
    assert "3456" not in redacted and "example.org" not in redacted
    assert redacted.count("[phone]") == 2 and "[email]" in redacted


def test_if_match_and_cursors() -> None:
    tag = etag_for("rcp_1", 3)
    check_if_match(None, "rcp_1", 3)
    check_if_match(tag, "rcp_1", 3)
    with pytest.raises(ApiError) as caught:
        check_if_match(etag_for("rcp_1", 2), "rcp_1", 3)
    assert caught.value.status == 412
    assert decode_cursor(encode_cursor(["2026-01-01", "rcp_9"])) == ["2026-01-01", "rcp_9"]
    with pytest.raises(ApiError):
        decode_cursor("%%%")


def test_trace_context_continues_the_parent_trace() -> None:
    parent = new_traceparent()
    child = child_of(parent)
    assert trace_id(child) == trace_id(parent) and child != parent
    assert trace_id(child_of("garbage")) is not None


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock()
    start = clock.now()
    assert clock.now() == start
    assert (clock.advance(90) - start).total_seconds() == 90


class RecordingPublisher:
    """Captures dead letters in memory (unit test of the dispatcher's routing only)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str | None, bytes | None, dict[str, str]]] = []

    async def send(self, topic: str, key: str | None, value: bytes | None, headers: dict[str, str]) -> None:
        self.sent.append((topic, key, value, headers))


def test_dispatcher_retries_with_backoff_then_dead_letters() -> None:
    from datetime import UTC, datetime

    from ksbb_contracts import CloudEvent
    from ksbb_contracts.events import DonorProfileUpdated

    router = EventRouter("publisher")
    calls: list[str] = []

    @router.on(DonorProfileUpdated)
    async def failing(event: DonorProfileUpdated, envelope: CloudEvent) -> None:
        calls.append(event.donor_id)
        raise RuntimeError("boom")

    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    dead = RecordingPublisher()
    dispatcher = EventDispatcher(router, dead, group="p.publisher", topic_prefix="p.", max_attempts=4,
                                 backoff_seconds=0.1, sleep=fake_sleep)
    envelope = CloudEvent(id="e1", source="/t", type=DonorProfileUpdated.event_type, subject="d1",
                          time=datetime.now(UTC), data={"donor_id": "d1", "kind": "person", "version": 1})
    headers = {"traceparent": new_traceparent()}
    record = ConsumedRecord("p.ksbb.pledges.donors", 0, 7, "d1", envelope.to_bytes(), headers)
    assert asyncio.run(dispatcher.handle(record)) == "dead_lettered"
    assert calls == ["d1"] * 4 and sleeps == [0.1, 0.2, 0.4]
    topic, key, value, headers = dead.sent[0]
    assert topic == "p.ksbb.pledges.donors.publisher.dlq" and key == "d1" and value == record.value
    assert headers["ksbb-dlq-attempts"] == "4" and headers["ksbb-dlq-offset"] == "7"
    unknown = ConsumedRecord("p.ksbb.pledges.donors", 0, 8, "d1", envelope.model_copy(
        update={"type": "ksbb.donor.renamed.v9"}).to_bytes(), {})
    assert asyncio.run(dispatcher.handle(unknown)) == "dead_lettered", "an unknown type is never dropped silently"
    assert dead.sent[-1][3]["ksbb-dlq-reason"] == "unknown_type"


def test_record_publisher_refuses_to_send_unstarted_and_can_start_again_after_a_failed_start() -> None:
    from aiokafka.errors import KafkaConnectionError
    from ksbb_kit.kafka import KafkaRecordPublisher, PublisherNotStarted
    from ksbb_kit.testing.service import free_port

    async def scenario() -> None:
        publisher = KafkaRecordPublisher(f"127.0.0.1:{free_port()}", client_id="nobody-listens")
        with pytest.raises(PublisherNotStarted, match=r"ksbb\.pledges\.donors"):
            await publisher.send("ksbb.pledges.donors", "d1", b"{}", {})
        for _ in range(2):  # the same object tries again, as the runtime does while Kafka is down
            with pytest.raises(KafkaConnectionError):
                await publisher.start()
            assert not publisher.started
        await publisher.stop()  # stopping a publisher that never connected is harmless

    asyncio.run(scenario())


def test_demo_waits_end_in_a_time_out_naming_what_was_awaited(tmp_path: Path) -> None:
    from ksbb_kit.demo import DemoContext

    context = DemoContext(urls={}, issuer=DevIssuer(tmp_path))
    answers = iter([None, {"needs": 3}])

    async def caught_up() -> dict[str, int] | None:
        return next(answers, None)

    assert asyncio.run(context.eventually(caught_up, timeout=5)) == {"needs": 3}
    with pytest.raises(TimeoutError, match="demo: the seeded needs"):
        asyncio.run(context.eventually(caught_up, timeout=0.05, what="the seeded needs"))
