"""Static checks of services/*/Dockerfile and .dockerignore (no Docker engine needed)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    return request.param


def test_dockerfile_exists(service: str) -> None:
    assert (ROOT / "services" / service / "Dockerfile").is_file()


def test_multi_stage(service: str) -> None:
    stages = _stages(ROOT / "services" / service / "Dockerfile")
    assert len(stages) >= 2, "expected a builder and a runtime stage"


def test_final_stage_runs_as_non_root(service: str) -> None:
    final = _stages(ROOT / "services" / service / "Dockerfile")[-1]
    users = [args for kw, args in final if kw == "USER"]
    assert users, "final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"final USER is {users[-1]}"


def test_final_stage_has_healthcheck_expose_entrypoint(service: str) -> None:
    final = _stages(ROOT / "services" / service / "Dockerfile")[-1]
    keywords = {kw for kw, _ in final}
    assert "HEALTHCHECK" in keywords
    health = next(args for kw, args in final if kw == "HEALTHCHECK")
    assert "/healthz" in health and "NONE" not in health.upper().split()
    assert ("EXPOSE", "8000") in final
    assert ("ENTRYPOINT", f'["ksbb-{service}"]') in final


def test_builder_uses_frozen_uv_sync_for_the_service(service: str) -> None:
    text = (ROOT / "services" / service / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r'pip install "?uv==', text), "uv must be installed pinned from PyPI"
    syncs = re.findall(r"uv sync[^\n]*", text)
    assert syncs
    for cmd in syncs:
        for flag in ("--frozen", "--no-dev", "--no-editable", "--package"):
            assert flag in cmd, f"{flag} missing in: {cmd}"
    assert re.search(r"SERVICE=" + service + r"\b", text)


def test_runtime_copies_only_the_venv(service: str) -> None:
    final = _stages(ROOT / "services" / service / "Dockerfile")[-1]
    copies = [args for kw, args in final if kw in {"COPY", "ADD"}]
    assert copies, "runtime stage copies nothing"
    for args in copies:
        assert args.startswith("--from="), f"runtime copies from the build context: {args}"
        assert "/app/.venv" in args


def test_every_workspace_member_manifest_is_copied(service: str) -> None:
    """uv needs every member's pyproject.toml for workspace discovery with --frozen."""
    root_cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = root_cfg["tool"]["uv"]["workspace"]["members"]
    manifests = [p for pattern in patterns for p in ROOT.glob(f"{pattern}/pyproject.toml")]
    members = sorted({p.parent.relative_to(ROOT).as_posix() for p in manifests})
    assert members
    text = (ROOT / "services" / service / "Dockerfile").read_text(encoding="utf-8")
    for member in members:
        assert f"COPY {member}/pyproject.toml" in text, f"Dockerfile does not copy {member}/pyproject.toml"


def test_dockerfiles_identical_except_service_name() -> None:
    def normalised(name: str) -> str:
        lines = (ROOT / "services" / name / "Dockerfile").read_text(encoding="utf-8").splitlines()
        return "\n".join(
            line  # the workspace-manifest COPY lines are the same in every file
            if line.startswith("COPY services/")
            else line.replace(name, "<svc>").replace(name.upper(), "<SVC>")
            for line in lines
        )

    reference = normalised(SERVICES[0])
    for name in SERVICES[1:]:
        assert normalised(name) == reference, f"services/{name}/Dockerfile drifted from the others"


def test_dockerignore_excludes_local_state() -> None:
    entries = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", ".ksbb", "**/__pycache__", "**/node_modules", ".git"):
        assert required in entries, f".dockerignore lacks {required}"
    # the build needs these, so they must not be ignored
    for needed in ("uv.lock", "pyproject.toml", "libs", "services"):
        assert needed not in entries
