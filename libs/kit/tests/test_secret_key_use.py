"""Production refuses a placeholder `secret_key` only in services that use one (`requires_secret_key`)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import pytest
from ksbb_kit.settings import KitSettings
from pydantic import SecretStr, ValidationError

pytestmark = pytest.mark.unit

PRODUCTION: dict[str, Any] = {
    "env": "production", "kafka_bootstrap": "kafka:9092", "mongodb_url": "mongodb://db:27017/",
    "jwks_url": "https://id.example.net/jwks", "jwt_issuer": "https://id.example.net/",
}


class Sealing(KitSettings):
    """A service that encrypts with its secret key."""

    service_name: ClassVar[str] = "notifier"


class Plain(KitSettings):
    """A service that never reads its secret key."""

    service_name: ClassVar[str] = "registry"
    requires_secret_key: ClassVar[bool] = False


@pytest.fixture(autouse=True)
def _no_ksbb_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every value is given explicitly; the test run's infra variables must not fill the gaps."""
    for name in list(os.environ):
        if name.startswith("KSBB_"):
            monkeypatch.delenv(name)


def test_a_service_using_its_secret_key_refuses_the_development_default() -> None:
    with pytest.raises(ValidationError, match="secret_key"):
        Sealing(**PRODUCTION)
    assert Sealing(**PRODUCTION, secret_key=SecretStr("q4Zr8vN2xLwT7pKe0sJd")).env == "production"


def test_a_service_without_use_for_a_secret_key_starts_without_one() -> None:
    assert Plain(**PRODUCTION).env == "production"


def test_other_secrets_are_still_refused_where_the_secret_key_is_not_needed() -> None:
    class PlainWithToken(Plain):
        api_token: SecretStr = SecretStr("changeme")

    with pytest.raises(ValidationError, match="api_token"):
        PlainWithToken(**PRODUCTION)
