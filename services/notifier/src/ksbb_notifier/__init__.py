"""KSBB notifier service."""
