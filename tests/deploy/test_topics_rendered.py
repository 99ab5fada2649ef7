"""Topics rendered from the contracts: the checked-in files equal what the renderer produces now and the
Strimzi resources carry the contracts' settings. Running the compose topics-init script with Kafka's own
kafka-topics tool against the real broker is part of test_deploy_runs.py (compose)."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from ksbb_contracts.topics import all_topics_with_dlqs
from ksbb_kit.topics_render import RENDERED, render_all, render_compose_topics_init, stale_files

from tests.deploy.conftest import ROOT


@pytest.mark.unit
def test_rendered_files_are_current() -> None:
    assert not stale_files(ROOT), "run `uv run ksbb topics render` and commit the result"
    assert set(render_all()) == set(RENDERED)


@pytest.mark.unit
def test_renderer_output_is_valid_yaml_with_one_resource_per_topic_and_user() -> None:
    topics = [d for d in yaml.safe_load_all(render_all()["deploy/k8s/components/strimzi/topics.yaml"]) if d]
    assert [d["spec"]["topicName"] for d in topics] == [t.name for t in all_topics_with_dlqs()]
    users = [d for d in yaml.safe_load_all(render_all()["deploy/k8s/components/strimzi/users.yaml"]) if d]
    assert [u["metadata"]["name"] for u in users] == [
        "ksbb-registry", "ksbb-pledges", "ksbb-notifier", "ksbb-publisher", "ksbb-operator"]


@pytest.mark.unit
def test_a_contract_change_makes_the_files_stale(tmp_path: Path) -> None:
    for path, text in render_all().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text.replace("partitions: 3", "partitions: 6", 1))
    assert stale_files(tmp_path) == ["deploy/k8s/components/strimzi/topics.yaml"]


@pytest.mark.unit
def test_compose_script_is_executable_posix_shell() -> None:
    script = ROOT / "deploy" / "compose" / "topics-init.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert script.read_text(encoding="utf-8") == render_compose_topics_init()
