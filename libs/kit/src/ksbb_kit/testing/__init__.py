"""Test support shared by every service's tests: infrastructure resolution, namespaces, running apps."""
