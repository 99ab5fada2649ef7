"""Application layer: the registry's use cases, the only thing routes and event handlers call."""
