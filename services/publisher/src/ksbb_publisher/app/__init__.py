"""Use cases of the publisher: projecting events, public queries, open data, snapshots, the live stream."""
