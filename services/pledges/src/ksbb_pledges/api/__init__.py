"""HTTP routes: one router per resource, their dependencies, and the mapping of domain errors."""
