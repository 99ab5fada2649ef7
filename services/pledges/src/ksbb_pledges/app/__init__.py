"""Use cases: the only thing routes and event handlers call (read, decide with the domain, write)."""
