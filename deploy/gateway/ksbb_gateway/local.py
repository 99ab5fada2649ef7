"""The local gateway: Debian's nginx-light as a project-local, non-root process with its state in one folder.

`nginx -p <state> -c <state>/nginx.conf -e <state>/logs/error.log -g 'daemon off;'`: configuration, pid
file, temp folders, logs and the docs site all live in the state folder (`.ksbb/gateway` for `make run`).
Started as root (CI containers), nginx runs as `nobody` through `setpriv`, owning only that folder.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ksbb_gateway.config import HERE, GatewayConfig, Target, load_config
from ksbb_gateway.merge import merge_openapi
from ksbb_gateway.render import SITE, VENDOR_FILES, VENDOR_PACKAGE, local_paths, merged_document_text, render_nginx
from ksbb_gateway.routes import Route, route_table

ROOT = HERE.parent.parent
DEFAULT_STATE = ROOT / ".ksbb" / "gateway"
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/bin/nginx")
NGINX_PACKAGE = "nginx-light"
VENDOR_SOURCE = HERE / "node_modules" / VENDOR_PACKAGE
UNPRIVILEGED_USER = "nobody"


class GatewayError(RuntimeError):
    """The local gateway could not be installed, configured or started."""


def find_nginx() -> str | None:
    """The nginx binary, if installed."""
    found = shutil.which("nginx")
    if found:
        return found
    return next((c for c in NGINX_CANDIDATES if os.access(c, os.X_OK)), None)


def ensure_nginx() -> str:
    """The nginx binary; installs Debian's nginx-light when missing (needs root and Debian's archive)."""
    found = find_nginx()
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise GatewayError(f"nginx is missing: install Debian's {NGINX_PACKAGE} (`sudo apt-get install -y "
                           f"{NGINX_PACKAGE}`) or any nginx >= 1.22 on PATH")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", NGINX_PACKAGE]):
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0 and command[1] == "install":
            raise GatewayError(f"could not install {NGINX_PACKAGE}: {result.stderr[-2000:]}")
    found = find_nginx()
    if not found:
        raise GatewayError(f"{NGINX_PACKAGE} installed but no nginx binary found")
    return found


def ensure_vendor() -> Path:
    """Swagger UI from npm (deploy/gateway/node_modules); runs `npm ci` when it is missing."""
    if all((VENDOR_SOURCE / name).exists() for name in VENDOR_FILES):
        return VENDOR_SOURCE
    if shutil.which("npm") is None:
        raise GatewayError("npm is needed once to install Swagger UI for /docs (deploy/gateway/package.json)")
    result = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--silent"], cwd=HERE,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise GatewayError(f"`npm ci` in deploy/gateway failed: {result.stderr[-2000:]}")
    return VENDOR_SOURCE


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _unprivileged() -> tuple[int, int] | None:
    """uid/gid to drop to when running as root (nginx then owns nothing but its state folder)."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(UNPRIVILEGED_USER)
    return entry.pw_uid, entry.pw_gid


class LocalGateway:
    """One nginx gateway process for a target's configuration, rendered into its own state folder."""

    def __init__(
        self,
        state: Path = DEFAULT_STATE,
        *,
        config: GatewayConfig | None = None,
        target_name: str = "local",
        target_changes: dict[str, Any] | None = None,
    ) -> None:
        self.state = state
        self.config = config or load_config()
        self.target_name = target_name
        base = self.config.target(target_name)
        self.target: Target = Target.model_validate({**base.model_dump(), **(target_changes or {})})
        self.paths = local_paths(state)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        host, _, port = self.target.listen.rpartition(":")
        return f"http://{host or '127.0.0.1'}:{port}"

    @property
    def conf(self) -> Path:
        """The rendered nginx.conf."""
        return self.state / "nginx.conf"

    def prepare(self, documents: dict[str, dict[str, Any]], routes: list[Route] | None = None) -> list[Route]:
        """Render nginx.conf, the merged OpenAPI document and the docs site into the state folder."""
        table = routes if routes is not None else route_table(documents, self.config)
        for folder in ("logs", "tmp", "site"):
            (self.state / folder).mkdir(parents=True, exist_ok=True)
        site = Path(self.paths.site)
        shutil.copytree(SITE, site, dirs_exist_ok=True)
        vendor = ensure_vendor()
        (site / "docs" / "vendor").mkdir(parents=True, exist_ok=True)
        for name in VENDOR_FILES:
            shutil.copyfile(vendor / name, site / "docs" / "vendor" / name)
        # Fresh from the code this machine runs (the committed copy is for the container images).
        (site / "v1" / "openapi.json").write_text(merged_document_text(merge_openapi(documents, table, self.config)))
        self.conf.write_text(render_nginx(self.config, self.target_name, table, self.paths, self.target))
        self._hand_over()
        return table

    def use_conf(self, text: str) -> None:
        """Run a given configuration instead of the rendered one (e.g. a container target's, adapted)."""
        self.conf.write_text(text)
        self._hand_over()

    def _hand_over(self) -> None:
        ids = _unprivileged()
        if ids is None:
            return
        closed = [parent for parent in self.state.resolve().parents if not os.stat(parent).st_mode & 0o001]
        if closed:
            raise GatewayError(f"{closed[0]} is closed to other users, so nginx (running as {UNPRIVILEGED_USER}) "
                               f"could not reach {self.state}; use a state folder elsewhere")
        os.chown(self.state, *ids)
        for folder, dirs, files in os.walk(self.state):
            for name in (*dirs, *files):
                os.chown(os.path.join(folder, name), *ids)

    def command(self) -> list[str]:
        """The nginx command line (prefixed with setpriv when started as root)."""
        nginx = ensure_nginx()
        command = [nginx, "-p", str(self.state), "-c", str(self.conf), "-e", self.paths.error_log,
                   "-g", "daemon off;"]
        ids = _unprivileged()
        if ids is not None:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                raise GatewayError("running as root needs util-linux's setpriv to start nginx unprivileged")
            command = [setpriv, f"--reuid={ids[0]}", f"--regid={ids[1]}", "--clear-groups", "--", *command]
        return command

    def check(self) -> None:
        """`nginx -t` on the rendered configuration; raises with nginx's message when it is invalid."""
        command = self.command()
        index = command.index("-g")
        result = subprocess.run([*command[:index], "-t"], capture_output=True, text=True)
        if result.returncode != 0:
            raise GatewayError(f"nginx -t failed:\n{result.stderr}")

    def start(self, *, detached: bool = False, ready_timeout: float = 20.0) -> subprocess.Popen[bytes]:
        """Start nginx (a child process, or a detached one for the CLI) and wait until it answers."""
        self.check()
        log = (self.state / "logs" / "nginx.out").open("ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=detached)
        self.wait_ready(ready_timeout)
        return self.process

    def wait_ready(self, timeout: float) -> None:
        """Wait until the gateway accepts connections on its listen address."""
        host, _, port = self.target.listen.rpartition(":")
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise GatewayError(f"nginx exited with {self.process.returncode}; see {self.paths.error_log}")
            with contextlib.suppress(OSError), socket.create_connection((host or "127.0.0.1", int(port)), 0.5):
                return
            if time.monotonic() > deadline:
                raise GatewayError(f"nginx did not listen on {self.target.listen} within {timeout}s")
            time.sleep(0.05)

    def pid(self) -> int | None:
        """The pid of this state folder's nginx master, if one runs."""
        try:
            pid = int(Path(self.paths.pid).read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        # Only ever signal the nginx started for this very state folder (nginx rewrites its argv into one
        # "nginx: master process ..." string, so look for the configuration path inside it).
        return pid if b"nginx" in cmdline and str(self.conf).encode() in cmdline else None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGQUIT lets open requests finish), then terminate."""
        pid = self.process.pid if self.process is not None else self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
            return
        deadline = time.monotonic() + timeout
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    def log_lines(self, name: str = "access.log") -> list[str]:
        """Lines of one of the gateway's logs."""
        path = self.state / "logs" / name
        return path.read_text().splitlines() if path.exists() else []


@contextlib.contextmanager
def running_gateway(gateway: LocalGateway, documents: dict[str, dict[str, Any]]) -> Iterator[LocalGateway]:
    """Prepare, start and finally stop a gateway."""
    gateway.prepare(documents)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()
