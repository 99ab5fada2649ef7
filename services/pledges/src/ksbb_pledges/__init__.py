"""KSBB pledges service."""
