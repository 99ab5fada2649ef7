"""HTTP routes of the notifier service."""

from __future__ import annotations

from fastapi import APIRouter


def build_api() -> APIRouter:
    """The notifier service's /v1 routes."""
    return APIRouter(prefix="/v1")
