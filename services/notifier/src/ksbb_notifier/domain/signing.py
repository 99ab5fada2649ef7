"""Standard Webhooks signing: `whsec_` secrets and `v1,<base64 HMAC-SHA256>` signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def generate_secret() -> str:
    """A new signing secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def secret_bytes(secret: str) -> bytes:
    """The raw key of a `whsec_` secret."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """One `v1,<signature>` of `id.timestamp.body` with one secret."""
    payload = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_bytes(secret), payload, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: list[str], message_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` value: one signature per valid secret, space-separated (rotation overlap)."""
    return " ".join(sign(secret, message_id, timestamp, body) for secret in secrets)


def secret_hint(secret: str) -> str:
    """A short non-secret reminder of which secret is in use (shown in listings)."""
    return secret[: len(SECRET_PREFIX) + 4] + "…"
