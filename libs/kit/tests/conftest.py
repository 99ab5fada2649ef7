"""Fixtures for the kit's integration tests: run the kit test process with the test's namespace."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from ksbb_kit.testing.infra import Infra
from pymongo import AsyncMongoClient

PROC = Path(__file__).parent / "procs" / "kit_process.py"


class KitProcesses:
    """Starts kit_process.py in the test's namespace and reads its database."""

    def __init__(self, infra: Infra, namespace: str) -> None:
        self.infra = infra
        self.namespace = namespace
        self.env = {
            **os.environ,
            "KSBB_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            "KSBB_MONGODB_URL": infra.mongodb_url,
            "KSBB_TOPIC_PREFIX": namespace,
            "KSBB_ENV": "test",
        }
        self.mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
        self.db = self.mongo[f"{namespace.replace('.', '_')}ksbb_publisher"]
        self.children: list[subprocess.Popen[str]] = []

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, str(PROC), *args], env={**self.env, **env}, stdout=subprocess.PIPE, text=True,
        )
        self.children.append(child)
        return child

    async def wait_line(self, child: subprocess.Popen[str], expected: str, timeout: float = 60) -> None:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), timeout)
        assert expected in line, f"expected {expected!r}, got {line!r} (exit {child.poll()})"

    async def wait_exit(self, child: subprocess.Popen[str], timeout: float = 120) -> int:
        return await asyncio.wait_for(asyncio.to_thread(child.wait), timeout)

    def close(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.kill()
                child.wait()


@pytest.fixture
async def kit_processes(infra: Infra, namespace: str) -> AsyncIterator[KitProcesses]:
    procs = KitProcesses(infra, namespace)
    try:
        yield procs
    finally:
        procs.close()
        await procs.mongo.close()


@pytest.fixture
def repo() -> Iterator[Path]:
    yield Path(__file__).resolve().parents[3]
