"""Dependencies of the notifier's routes as `Annotated` aliases; the composition root binds the use cases.

The routers are defined once at import time; `bind` gives one app its own use-case objects through
FastAPI's dependency overrides, so several apps (tests, replicas in one process) never share state.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI
from ksbb_kit.auth import Principal, Role, require_roles

from ksbb_notifier.app.deliveries import Deliveries
from ksbb_notifier.app.endpoints import Endpoints


async def endpoints_use_cases() -> Endpoints:
    """Placeholder for the app's endpoint use cases (bound by `bind`)."""
    raise RuntimeError("the notifier's routes were not bound to its use cases")


async def deliveries_use_cases() -> Deliveries:
    """Placeholder for the app's delivery use cases (bound by `bind`)."""
    raise RuntimeError("the notifier's routes were not bound to its use cases")


#: Admins, and facilitators for their own organisation's endpoints.
Staff = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.FACILITATOR))]
EndpointsDep = Annotated[Endpoints, Depends(endpoints_use_cases)]
DeliveriesDep = Annotated[Deliveries, Depends(deliveries_use_cases)]


def bind(app: FastAPI, *, endpoints: Endpoints, deliveries: Deliveries) -> None:
    """Let this app's routes use these use-case objects."""

    # async: FastAPI runs a plain function (a lambda too) in its thread pool, a thread hop on every request.
    async def bound_endpoints() -> Endpoints:
        return endpoints

    async def bound_deliveries() -> Deliveries:
        return deliveries

    app.dependency_overrides[endpoints_use_cases] = bound_endpoints
    app.dependency_overrides[deliveries_use_cases] = bound_deliveries
