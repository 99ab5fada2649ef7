"""Domain layer: the registry's rules as pure functions and value objects (no I/O, no HTTP)."""
