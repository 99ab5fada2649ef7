"""Webhook endpoint bodies at the edge: strict numbers and booleans, and the shared limits on every field."""

from __future__ import annotations

from typing import Any

import pytest
from ksbb_contracts import limits
from ksbb_notifier.api.models import EndpointCreate, EndpointUpdate
from pydantic import ValidationError

pytestmark = pytest.mark.unit

URL = "https://lsm.example/hooks/ksbb"


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (EndpointCreate, {"url": URL, "rate_limit_per_second": "5"}, "rate_limit_per_second"),
        (EndpointCreate, {"url": URL, "rate_limit_per_second": True}, "rate_limit_per_second"),
        (EndpointCreate, {"url": URL, "rate_limit_per_second": limits.WEBHOOK_RATE_MAX + 1}, "rate_limit_per_second"),
        (EndpointUpdate, {"enabled": "true"}, "enabled"),
        (EndpointUpdate, {"enabled": 1}, "enabled"),
        (EndpointCreate, {"url": URL + "/" + "x" * limits.WEBHOOK_URL[1]}, "url"),
        (EndpointCreate, {"url": URL, "organisation_id": "o" * (limits.ID[1] + 1)}, "organisation_id"),
        (EndpointCreate, {"url": URL, "recipient_kinds": ["panti_asuhan"] * 50}, "recipient_kinds"),
    ],
)
def test_bodies_take_json_numbers_and_booleans_within_the_limits(
    model: type[EndpointCreate | EndpointUpdate], body: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    assert refused.value.errors()[0]["loc"][0] == field


def test_numbers_and_booleans_given_as_json_values_are_accepted() -> None:
    assert EndpointCreate.model_validate({"url": URL, "rate_limit_per_second": 5}).rate_limit_per_second == 5.0
    assert EndpointUpdate.model_validate({"enabled": False}).enabled is False


def test_the_schema_shows_the_shared_limits() -> None:
    properties = EndpointCreate.model_json_schema()["properties"]
    assert properties["url"]["maxLength"] == limits.WEBHOOK_URL[1]
    rate = next(option for option in properties["rate_limit_per_second"]["anyOf"] if option.get("type") == "number")
    assert rate["maximum"] == limits.WEBHOOK_RATE_MAX
