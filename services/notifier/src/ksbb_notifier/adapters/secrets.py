"""Signing secrets: random new ones, and AES-GCM at rest with a key derived from the service's secret key."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ksbb_notifier.domain.signing import SECRET_BYTES, secret_from_bytes


class RandomSecrets:
    """New signing secrets from the operating system's random source."""

    def new_secret(self) -> str:
        """A new `whsec_` secret of 32 random bytes."""
        return secret_from_bytes(os.urandom(SECRET_BYTES))


class SecretBox:
    """Encrypts webhook signing secrets so a database dump does not reveal them."""

    def __init__(self, key_material: str) -> None:
        self._aead = AESGCM(hashlib.sha256(b"ksbb-notifier-webhook-secrets\x00" + key_material.encode()).digest())

    def seal(self, secret: str) -> str:
        """Ciphertext (nonce + sealed bytes, base64) of one secret."""
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, secret.encode(), None)).decode()

    def open(self, sealed: str) -> str:
        """The secret inside a ciphertext produced by `seal`."""
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], None).decode()
