"""Pure rules: signatures, SSRF policy, retry decisions, routing scope and filters, e-mail rendering."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from ksbb_notifier.adapters.http_sender import check_url
from ksbb_notifier.adapters.secrets import RandomSecrets, SecretBox
from ksbb_notifier.domain.emails import TEMPLATES, compiled, render
from ksbb_notifier.domain.errors import AddressRefused, UrlRefused
from ksbb_notifier.domain.routing import EndpointFilter, MessageScope, endpoint_receives, scope_of
from ksbb_notifier.domain.schedule import Outcome, decide, parse_retry_after
from ksbb_notifier.domain.signing import signature_header
from ksbb_notifier.domain.ssrf import AddressPolicy
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

pytestmark = pytest.mark.unit
generate_secret = RandomSecrets().new_secret
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SCHEDULE = [0.0, 5.0, 300.0]


def test_signatures_verify_with_the_reference_library() -> None:
    old, new = generate_secret(), generate_secret()
    body = '{"type":"ksbb.pledge.created.v1","timestamp":"2026-01-05T08:00:00Z","data":{"a":1}}'
    ts = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(ts),
        "webhook-signature": signature_header([new, old], "msg_1", ts, body),
    }
    assert Webhook(new).verify(body, headers)["data"] == {"a": 1}
    assert Webhook(old).verify(body, headers)["data"] == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body.replace("1", "2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(body, headers)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.3.4",
        "192.168.1.5",
        "169.254.169.254",
        "::1",
        "fd00:ec2::254",
        "fe80::1",
        "224.0.0.1",
        "0.0.0.0",
        "100.64.0.1",
        "::ffff:127.0.0.1",
        "240.0.0.1",
    ],
)
def test_policy_refuses_non_public_addresses(address: str) -> None:
    with pytest.raises(AddressRefused):
        AddressPolicy.build([], []).check("hooks.example.org", address)


def test_policy_allows_public_and_allow_listed_destinations() -> None:
    policy = AddressPolicy.build(["receiver.local"], ["10.20.0.0/16"])
    assert str(policy.check("hooks.example.org", "93.184.216.34")) == "93.184.216.34"
    assert str(policy.check("receiver.local", "127.0.0.1")) == "127.0.0.1"
    assert str(policy.check("other.local", "10.20.1.1")) == "10.20.1.1"
    with pytest.raises(AddressRefused):
        policy.check("other.local", "10.21.1.1")


def test_urls_must_be_https_unless_allow_listed() -> None:
    assert check_url("https://ngo.example.org/hooks", []).host == "ngo.example.org"
    assert check_url("http://localhost:8080/x", ["localhost"]).port == 8080
    for bad in (
        "http://ngo.example.org/x",
        "ftp://ngo.example.org",
        "https://user:pw@ngo.example.org/",
        "not a url",
    ):
        with pytest.raises(UrlRefused):
            check_url(bad, ["localhost"])


def test_retry_decisions() -> None:
    def after(status: int | None, attempts: int, retry_after: str | None = None) -> tuple[Outcome, object]:
        d = decide(
            status_code=status,
            retry_after=retry_after,
            attempts_in_round=attempts,
            schedule=SCHEDULE,
            now=NOW,
            max_retry_after=3600,
        )
        return d.outcome, d.next_attempt_at

    assert after(204, 1) == (Outcome.SUCCEEDED, None)
    assert after(410, 1) == (Outcome.GONE, None)
    assert after(500, 1) == (Outcome.RETRY, NOW + timedelta(seconds=5))
    assert after(None, 2) == (Outcome.RETRY, NOW + timedelta(seconds=300))
    assert after(500, 3) == (Outcome.FAILED, None)
    assert after(429, 1, "60") == (Outcome.RETRY, NOW + timedelta(seconds=60))
    assert after(503, 1, "999999") == (Outcome.RETRY, NOW + timedelta(seconds=3600))
    assert after(500, 1, "60") == (Outcome.RETRY, NOW + timedelta(seconds=5))  # only throttling statuses
    assert after(301, 1) == (Outcome.RETRY, NOW + timedelta(seconds=5))
    assert parse_retry_after(format_datetime(NOW + timedelta(minutes=2), usegmt=True), NOW) == 120
    assert parse_retry_after("soon", NOW) is None


def test_scope_and_filters() -> None:
    pledge = {"pledge": {"organisation_id": "org_a", "recipient_id": "rcp_1", "kelurahan_code": "31.71.01.1001"}}
    scope = scope_of("ksbb.pledge.created.v1", pledge, "pesantren")
    assert scope == MessageScope("org_a", False, "31.71.01.1001", "rcp_1", "pesantren")
    assert scope.kota_code == "31.71"
    own, other, admin = EndpointFilter("org_a"), EndpointFilter("org_b"), EndpointFilter(None)
    assert endpoint_receives(own, "ksbb.pledge.created.v1", scope)
    assert not endpoint_receives(other, "ksbb.pledge.created.v1", scope)
    assert endpoint_receives(admin, "ksbb.pledge.created.v1", scope)
    need = scope_of("ksbb.need.opened.v1", {"need": {"organisation_id": "org_a", "kelurahan_code": "31.74.01.1001"}})
    assert need.programme_wide and endpoint_receives(other, "ksbb.need.opened.v1", need)
    assert not endpoint_receives(EndpointFilter("org_b", event_types=("ksbb.pledge.*",)), "ksbb.need.opened.v1", need)
    assert not endpoint_receives(EndpointFilter("org_a", kota_codes=("31.71",)), "ksbb.need.opened.v1", need)
    assert endpoint_receives(EndpointFilter("org_a", recipient_kinds=("pesantren",)), "x", scope)
    assert not endpoint_receives(EndpointFilter("org_a", recipient_kinds=("panti_lansia",)), "x", scope)
    organisation = scope_of("ksbb.organisation.updated.v1", {"organisation": {"organisation_id": "org_a"}})
    assert endpoint_receives(
        EndpointFilter("org_a", kota_codes=("31.72",)), "ksbb.organisation.updated.v1", organisation
    )


def test_every_template_renders_bilingual_text_and_escaped_html() -> None:
    context = {
        "name": "Budi <b>",
        "recipient_name": "Panti & Co",
        "item": "sembako",
        "quantity": 3,
        "planned_date": "2026-01-10",
        "pledge_id": "plg_1",
        "call_by": "07-01-2026 15:00 WIB",
        "contact": {"contact_name": "Ibu Siti", "phone": "0812", "email": None, "street_address": None},
        "expires_at": "x",
        "reason": "r",
        "received_quantity": 3,
        "endpoint_id": "whe_1",
        "url": "https://x",
    }
    for kind in TEMPLATES:
        email = render(kind, context)
        assert "---- English ----" in email.text and email.subject
        assert "<b>" not in email.html and "&lt;b&gt;" in email.html


def test_each_template_is_compiled_once_and_renders_every_context_anew() -> None:
    compiled.cache_clear()
    first = render("pledge_cancelled", {"name": "Budi", "recipient_name": "Panti A", "reason": "r1", "item": "beras",
                                        "quantity": 1, "planned_date": "2026-01-10", "pledge_id": "plg_1"})
    second = render("pledge_cancelled", {"name": "Siti", "recipient_name": "Panti B", "reason": "r2", "item": "air",
                                         "quantity": 2, "planned_date": "2026-01-11", "pledge_id": "plg_2"})
    assert "Budi" in first.text and "Siti" in second.text and "Budi" not in second.text
    assert compiled.cache_info().misses == 3, "subject and both bodies compiled once each"
    assert compiled.cache_info().hits == 3


def test_secret_box_round_trip() -> None:
    box = SecretBox("key-1")
    sealed = box.seal("whsec_abc")
    assert "whsec_abc" not in sealed and box.open(sealed) == "whsec_abc"
    with pytest.raises(Exception):  # noqa: B017 - any authentication failure
        SecretBox("key-2").open(sealed)


def test_demo_seed_finds_an_organisation_in_any_registry_state_shape() -> None:
    from ksbb_notifier.demo import _first_organisation

    assert _first_organisation({"organisations": [{"organisation_id": "org_1"}]}) == "org_1"
    assert _first_organisation({"organisations": {"a": "x"}, "org_id": "org_2"}) == "org_2"
    assert _first_organisation({"organisation_ids": ["org_3"]}) == "org_3"
    assert _first_organisation(None) is None and _first_organisation({"recipients": []}) is None


def test_plain_http_hosts_skip_the_address_check_only_in_development() -> None:
    from ksbb_notifier.settings import NotifierSettings

    development = NotifierSettings(env="development", insecure_http_hosts=["127.0.0.1"])
    assert development.ssrf_exempt_hosts == ["127.0.0.1"]
    test = NotifierSettings(env="test", insecure_http_hosts=["127.0.0.1"], ssrf_allow_hosts=["hooks.local"])
    assert test.ssrf_exempt_hosts == ["hooks.local"]
