"""HTTP routes of the registry service."""

from __future__ import annotations

from fastapi import APIRouter


def build_api() -> APIRouter:
    """The registry service's /v1 routes."""
    return APIRouter(prefix="/v1")
