"""KSBB registry service."""
