"""KSBB publisher service."""
