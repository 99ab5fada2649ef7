"""The publisher's collaborators, built once by the composition root and shared by handlers and routes."""

from __future__ import annotations

from dataclasses import dataclass

from ksbb_kit.clock import Clock

from ksbb_publisher.adapters.projections import Projector
from ksbb_publisher.adapters.queries import ReadQueries
from ksbb_publisher.adapters.snapshots import SnapshotStore
from ksbb_publisher.adapters.stream import FeedBroadcaster, FeedPoller
from ksbb_publisher.settings import PublisherSettings


@dataclass
class Components:
    """Everything the publisher's routes and handlers need."""

    settings: PublisherSettings
    clock: Clock
    projector: Projector
    queries: ReadQueries
    broadcaster: FeedBroadcaster
    poller: FeedPoller
    snapshots: SnapshotStore
