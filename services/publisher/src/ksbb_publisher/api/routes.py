"""HTTP routes of the publisher service."""

from __future__ import annotations

from fastapi import APIRouter


def build_api() -> APIRouter:
    """The publisher service's /v1 routes."""
    return APIRouter(prefix="/v1")
