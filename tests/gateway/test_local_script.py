"""deploy/gateway/gateway: the local nginx started, inspected and stopped by the script `make run` users have."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest
from ksbb_gateway.local import free_port
from ksbb_gateway.render import ROOT

pytestmark = pytest.mark.integration
SCRIPT = ROOT / "deploy" / "gateway" / "gateway"


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          env={**os.environ})


def test_start_status_stop_of_a_project_local_non_root_nginx() -> None:
    state = Path(tempfile.mkdtemp(prefix="ksbb-gateway-script-"))
    listen = f"127.0.0.1:{free_port()}"
    started = gateway("start", "--state", str(state), "--listen", listen)
    try:
        assert started.returncode == 0, started.stderr
        assert f"http://{listen}" in started.stdout
        status = gateway("status", "--state", str(state))
        assert status.returncode == 0 and "running" in status.stdout
        pid = int((state / "nginx.pid").read_text())
        owner = {line.split(":")[0]: line.split(":")[1].split() for line in
                 Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(("Uid", "Gid"))}
        assert owner["Uid"][0] != "0", "nginx must not run as root"
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        assert f"-p {state} -c {state}/nginx.conf".encode() in cmdline and b"daemon off;" in cmdline
        for name in ("nginx.conf", "nginx.pid", "logs/error.log", "tmp", "site/v1/openapi.json"):
            assert (state / name).exists(), name
        docs = httpx.get(f"http://{listen}/docs", timeout=10)
        assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
        again = gateway("start", "--state", str(state), "--listen", listen)
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        stopped = gateway("stop", "--state", str(state))
    assert stopped.returncode == 0, stopped.stderr
    assert gateway("status", "--state", str(state)).returncode == 1
    shutil.rmtree(state, ignore_errors=True)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{listen}/docs", timeout=5)


def test_render_check_reports_the_committed_renderings_current() -> None:
    checked = gateway("render", "--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
