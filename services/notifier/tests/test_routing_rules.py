"""Routing as a rule: which events become webhook messages and which endpoints receive them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_contracts import EVENT_TYPES
from ksbb_notifier.domain.routing import (
    PROGRAMME_WIDE_TYPES,
    EndpointFilter,
    MessageScope,
    endpoint_receives,
    is_webhook_type,
    scope_of,
    type_matches,
)

pytestmark = pytest.mark.unit

WEBHOOK_TYPES = sorted(t for t in EVENT_TYPES if is_webhook_type(t))
KOTAS = ["31.01", "31.71", "31.72", "31.73", "31.74", "31.75"]
KELURAHAN_BY_KOTA = {"31.71": "31.71.01.1001", "31.74": "31.74.01.1001"}
KINDS = ["rw_rentan", "panti_asuhan", "panti_lansia", "panti_disabilitas", "pesantren", "lainnya"]

organisations = st.sampled_from(["org_a", "org_b", "org_c"])
scopes = st.builds(
    MessageScope,
    organisation_id=st.one_of(st.none(), organisations),
    programme_wide=st.booleans(),
    kelurahan_code=st.one_of(st.none(), st.sampled_from(sorted(KELURAHAN_BY_KOTA.values()))),
    recipient_id=st.one_of(st.none(), st.just("rcp_1")),
    recipient_kind=st.one_of(st.none(), st.sampled_from(KINDS)),
)


def test_the_catalogue_is_registry_and_pledge_facts_without_contacts() -> None:
    assert WEBHOOK_TYPES
    for event_type in EVENT_TYPES:
        family = event_type.split(".")[1]
        assert is_webhook_type(event_type) == (family in {"organisation", "recipient", "need", "pledge"}), event_type
    assert not any("contact" in t for t in WEBHOOK_TYPES)


@given(event_type=st.sampled_from(WEBHOOK_TYPES), scope=scopes)
def test_an_admin_endpoint_without_filters_receives_everything(event_type: str, scope: MessageScope) -> None:
    assert endpoint_receives(EndpointFilter(None), event_type, scope)


@given(event_type=st.sampled_from(WEBHOOK_TYPES), scope=scopes, owner=organisations)
def test_an_organisation_sees_others_events_only_when_programme_wide(
    event_type: str, scope: MessageScope, owner: str
) -> None:
    receives = endpoint_receives(EndpointFilter(owner), event_type, scope)
    if scope.organisation_id != owner and not scope.programme_wide:
        assert not receives
    else:
        assert receives


@given(event_type=st.sampled_from(WEBHOOK_TYPES), scope=scopes, kotas=st.lists(st.sampled_from(KOTAS), max_size=3))
def test_the_kota_filter_passes_events_without_a_location(
    event_type: str, scope: MessageScope, kotas: list[str]
) -> None:
    receives = endpoint_receives(EndpointFilter(None, kota_codes=tuple(kotas)), event_type, scope)
    assert receives == (not kotas or scope.kelurahan_code is None or scope.kota_code in kotas)


@given(event_type=st.sampled_from(WEBHOOK_TYPES), scope=scopes, kinds=st.lists(st.sampled_from(KINDS), max_size=3))
def test_the_kind_filter_refuses_recipient_events_of_unknown_kind(
    event_type: str, scope: MessageScope, kinds: list[str]
) -> None:
    receives = endpoint_receives(EndpointFilter(None, recipient_kinds=tuple(kinds)), event_type, scope)
    about_a_recipient = scope.recipient_id is not None or scope.recipient_kind is not None
    assert receives == (not kinds or not about_a_recipient or scope.recipient_kind in kinds)


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        ((), "ksbb.pledge.created.v1", True),
        (("ksbb.pledge.*",), "ksbb.pledge.created.v1", True),
        (("ksbb.pledge.*",), "ksbb.need.opened.v1", False),
        (("ksbb.need.opened.v1", "ksbb.pledge.c*"), "ksbb.pledge.cancelled.v1", True),
        (("ksbb.pledge.c*",), "ksbb.pledge.delivered.v1", False),
        (("ksbb.*.v?",), "ksbb.recipient.verified.v1", True),
        (("KSBB.pledge.*",), "ksbb.pledge.created.v1", False),  # case matters
    ],
)
def test_event_type_globs(patterns: tuple[str, ...], event_type: str, expected: bool) -> None:
    assert type_matches(patterns, event_type) is expected


def snapshot(**fields: Any) -> dict[str, Any]:
    """A public snapshot with the routing fields."""
    return {"organisation_id": "org_a", "recipient_id": "rcp_1", "kelurahan_code": "31.74.01.1001", **fields}


def test_the_scope_of_each_event_family() -> None:
    organisation = scope_of("ksbb.organisation.suspended.v1", {"organisation": {"organisation_id": "org_a"}})
    assert organisation == MessageScope("org_a", False, None, None, None)
    recipient = scope_of("ksbb.recipient.verified.v1", {"recipient": snapshot(kind="pesantren")}, "ignored")
    assert recipient == MessageScope("org_a", False, "31.74.01.1001", "rcp_1", "pesantren")
    assert recipient.kota_code == "31.74"
    need = scope_of("ksbb.need.opened.v1", {"need": snapshot()}, "panti_lansia")
    assert need.programme_wide and need.recipient_kind == "panti_lansia"
    assert not scope_of("ksbb.need.closed.v1", {"need": snapshot()}).programme_wide
    pledge = scope_of("ksbb.pledge.created.v1", {"pledge": snapshot(kelurahan_code="nowhere")}, None)
    assert pledge.kota_code is None and pledge.recipient_kind is None
    assert PROGRAMME_WIDE_TYPES == {"ksbb.need.opened.v1"}
