"""End-to-end fixtures: the gateway package on the path and the services' OpenAPI documents."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy" / "gateway"))

from ksbb_gateway.config import load_config
from ksbb_gateway.sources import service_documents_async


@pytest.fixture(scope="session")
async def documents() -> dict[str, dict[str, Any]]:
    """Each service's OpenAPI document (the gateway's route table is generated from them)."""
    return await service_documents_async(load_config().services)
