"""Standard Webhooks signing: `whsec_` secrets, `v1,<base64 HMAC-SHA256>` signatures and the signed headers."""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"
#: Random bytes in a new secret (the generator port supplies them).
SECRET_BYTES = 32
USER_AGENT = "KSBB-Webhooks/1.0"


def secret_from_bytes(raw: bytes) -> str:
    """A signing secret from random bytes: `whsec_` + base64."""
    return SECRET_PREFIX + base64.b64encode(raw).decode()


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


def webhook_headers(secrets: list[str], message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """Every header of one signed request; `secrets` are the valid ones, current first."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, message_id, timestamp, body),
    }


def secret_hint(secret: str) -> str:
    """A short non-secret reminder of which secret is in use (shown in listings)."""
    return secret[: len(SECRET_PREFIX) + 4] + "…"
