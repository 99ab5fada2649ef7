"""Production settings: secrets from examples or defaults are refused, dev defaults must be overridden,
topics are not created, and the Kafka security settings reach every client."""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ksbb_kit.kafka import KafkaConnection, kafka_connection
from ksbb_kit.settings import KitSettings
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
ENV_EXAMPLE = ROOT / "deploy" / "compose" / "env.example"
PRODUCTION: dict[str, Any] = {
    "env": "production", "kafka_bootstrap": "kafka:9092", "mongodb_url": "mongodb://db:27017/",
    "jwks_url": "https://id.example.net/jwks", "jwt_issuer": "https://id.example.net/",
}
GENERATED = "q4Zr8vN2xLwT7pKe0sJd"  # what `openssl rand -base64 15` prints: no recognisable shape


@pytest.fixture(autouse=True)
def _no_ksbb_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests give every value explicitly; the test run's infra variables must not fill the gaps."""
    import os

    for name in [n for n in os.environ if n.startswith("KSBB_")]:
        monkeypatch.delenv(name)


class SmtpSettings(KitSettings):
    """A service with an SMTP password typed as a plain string (as the notifier's is)."""

    service_name: ClassVar[str] = "mailer"
    smtp_password: str | None = None


def _example_values() -> dict[str, str]:
    """Every KSBB_ assignment in env.example, commented-out ones too."""
    pattern = re.compile(r"^#?\s*(KSBB_[A-Z0-9_]+)=(.*)$")
    found = (pattern.match(line.strip()) for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines())
    return {m.group(1): m.group(2) for m in found if m}


def test_env_example_secrets_are_refused_in_production() -> None:
    secrets = {k: v for k, v in _example_values().items() if k.endswith(("SECRET_KEY", "PASSWORD"))}
    assert secrets, "env.example lists no secrets"
    for name, value in secrets.items():
        field = "secret_key" if name.endswith("SECRET_KEY") else "smtp_password"
        with pytest.raises(ValidationError, match=field) as caught:
            SmtpSettings(**{**PRODUCTION, "secret_key": GENERATED, "smtp_password": GENERATED, field: value})
        assert "placeholder, example or development value" in str(caught.value), name


@pytest.mark.parametrize("value", ["changeme-dev-secret", "Change-Me_please", "CHANGEME", "placeholder-1",
                                   "dev-only-key", "replace_me", "example-secret", "  ", ""])
def test_placeholder_shapes_and_defaults_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="secret_key"):
        KitSettings(**PRODUCTION, secret_key=SecretStr(value))


def test_development_default_is_refused_even_without_a_placeholder_shape() -> None:
    class Service(KitSettings):
        service_name: ClassVar[str] = "svc"
        api_token: SecretStr = SecretStr("x7-default-token")

    with pytest.raises(ValidationError, match="api_token"):
        Service(**PRODUCTION, secret_key=SecretStr(GENERATED))
    assert Service(**PRODUCTION, secret_key=SecretStr(GENERATED), api_token=SecretStr(GENERATED)).env == "production"


def test_generated_secrets_pass_and_development_accepts_defaults() -> None:
    assert SmtpSettings(**PRODUCTION, secret_key=SecretStr(GENERATED), smtp_password=GENERATED).env == "production"
    assert SmtpSettings(env="development").secret_key.get_secret_value() == "changeme-dev-secret"


@pytest.mark.parametrize("missing", ["kafka_bootstrap", "mongodb_url", "jwks_url", "jwt_issuer"])
def test_production_requires_settings_whose_default_is_a_developer_machine(missing: str) -> None:
    values = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(ValidationError) as caught:
        KitSettings(**values, secret_key=SecretStr(GENERATED))
    assert f"KSBB_{missing.upper()}" in str(caught.value)


def test_missing_secret_message_names_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    class Registry(KitSettings):
        model_config = SettingsConfigDict(env_prefix="KSBB_REGISTRY_")
        service_name: ClassVar[str] = "registry"

    for key, value in PRODUCTION.items():
        monkeypatch.setenv(f"KSBB_{key.upper()}", value)
    with pytest.raises(SystemExit) as caught:
        Registry.load()
    message = str(caught.value)
    assert message.startswith("Registry: the configuration is not usable:")
    assert "KSBB_REGISTRY_SECRET_KEY or KSBB_SECRET_KEY" in message
    monkeypatch.setenv("KSBB_SECRET_KEY", GENERATED)
    assert Registry.load().env == "production"


def test_topics_are_created_outside_production_only_unless_asked() -> None:
    assert KitSettings(env="development").creates_topics
    assert KitSettings(env="test").creates_topics
    assert not KitSettings(**PRODUCTION, secret_key=SecretStr(GENERATED)).creates_topics
    assert KitSettings(**PRODUCTION, secret_key=SecretStr(GENERATED), kafka_create_topics=True).creates_topics
    assert not KitSettings(env="test", kafka_create_topics=False).creates_topics


def test_sasl_needs_username_and_password() -> None:
    with pytest.raises(ValidationError, match="KSBB_KAFKA_SASL_USERNAME"):
        KitSettings(kafka_security_protocol="SASL_SSL")
    with pytest.raises(ValidationError):
        KitSettings(kafka_sasl_mechanism="PLAIN")


def test_connection_options_carry_tls_and_scram(tmp_path: Path) -> None:
    settings = KitSettings(
        kafka_bootstrap="b:9093", kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="ksbb-registry", kafka_sasl_password=SecretStr(GENERATED),
    )
    connection = settings.kafka_connection
    assert GENERATED not in repr(connection)
    options = connection.client_options()
    assert options["bootstrap_servers"] == "b:9093" and options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("ksbb-registry", GENERATED)
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED and options["ssl_context"].check_hostname
    security = connection.broker_security()
    assert security is not None and security.use_ssl

    plain = kafka_connection("127.0.0.1:19092")
    assert plain == KafkaConnection("127.0.0.1:19092")
    assert plain.client_options() == {"bootstrap_servers": "127.0.0.1:19092", "security_protocol": "PLAINTEXT"}
    assert plain.broker_security() is None

    missing_ca = KafkaConnection("b:9093", security_protocol="SSL", ssl_ca_file=str(tmp_path / "none.pem"))
    with pytest.raises(FileNotFoundError):
        missing_ca.client_options()
