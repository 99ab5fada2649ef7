"""HTTP routes of the pledges service."""

from __future__ import annotations

from fastapi import APIRouter


def build_api() -> APIRouter:
    """The pledges service's /v1 routes."""
    return APIRouter(prefix="/v1")
