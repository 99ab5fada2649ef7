"""Pure rules of the publisher: projection merging, public views, feed, areas, statistics, open data (no I/O)."""
