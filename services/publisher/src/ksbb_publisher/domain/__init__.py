"""Pure logic of the publisher: area attribution, feed entries, open-data columns (no I/O)."""
