"""MongoDB stores implementing the use cases' ports."""
