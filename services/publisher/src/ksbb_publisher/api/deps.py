"""Dependencies of the HTTP routes: the publisher's use cases (set by the composition root) and paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from ksbb_kit.clock import Clock
from ksbb_kit.errors import ApiError
from ksbb_kit.http import app_state_part, decode_cursor, encode_cursor

from ksbb_publisher.app.exports import OpenData
from ksbb_publisher.app.queries import PublicQueries
from ksbb_publisher.app.snapshots import Snapshots
from ksbb_publisher.app.stream import FeedStream
from ksbb_publisher.settings import PublisherSettings

#: OpenAPI entry of the 304 every cached public GET can answer.
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified (If-None-Match matched the ETag)"}
}


@dataclass(frozen=True)
class PublicApi:
    """What the routes use; the composition root builds it and installs it on the application."""

    settings: PublisherSettings
    clock: Clock
    queries: PublicQueries
    open_data: OpenData
    snapshots: Snapshots
    feed_stream: FeedStream

    def install(self, app: FastAPI) -> None:
        """Make this the application's dependencies."""
        app.state.public_api = self


def public_api(request: Request) -> PublicApi:
    """The application's use cases."""
    api: PublicApi = request.app.state.public_api
    return api


SettingsDep = Annotated[PublisherSettings, Depends(app_state_part("public_api", "settings"))]
ClockDep = Annotated[Clock, Depends(app_state_part("public_api", "clock"))]
QueriesDep = Annotated[PublicQueries, Depends(app_state_part("public_api", "queries"))]
OpenDataDep = Annotated[OpenData, Depends(app_state_part("public_api", "open_data"))]
SnapshotsDep = Annotated[Snapshots, Depends(app_state_part("public_api", "snapshots"))]
FeedStreamDep = Annotated[FeedStream, Depends(app_state_part("public_api", "feed_stream"))]
#: Page size of every list.
PageLimit = Annotated[int, Query(ge=1, le=200)]


def after_cursor(cursor: str | None) -> str | None:
    """The sort key a page cursor continues after; 422 when the cursor is not one of ours."""
    if not cursor:
        return None
    values = decode_cursor(cursor)
    if len(values) != 1 or not isinstance(values[0], str):
        raise ApiError(422, "invalid_cursor", "cursor is not valid", field="cursor")
    return values[0]


def page_cursor(last: str | None) -> str | None:
    """The cursor of the next page, or None on the last page."""
    return encode_cursor([last]) if last else None
