"""Signing secrets at rest: AES-GCM with a key derived from the service's secret key."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


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
