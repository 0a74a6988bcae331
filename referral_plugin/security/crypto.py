"""Encryption at rest for Shopify tokens (Fernet), and keyed hashes for data we must not keep raw."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken
from cryptography.fernet import MultiFernet
from flask import current_app

from referral_plugin.errors import ConfigurationError


def _derive_fernet_key(secret_key: str) -> bytes:
    """Derive a stable Fernet key from ``SECRET_KEY`` when no ``TOKEN_ENCRYPTION_KEY`` is set."""
    digest = hashlib.sha256(b"referral-plugin/token-encryption/" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def _fernet() -> MultiFernet:
    """Return the cipher for this app; several comma-separated keys allow key rotation (first encrypts)."""
    configured = current_app.config.get("TOKEN_ENCRYPTION_KEY")
    keys = [k.strip().encode() for k in configured.split(",")] if configured else []
    if not keys:
        keys = [_derive_fernet_key(current_app.config["SECRET_KEY"])]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ConfigurationError("TOKEN_ENCRYPTION_KEY must be url-safe base64 Fernet keys") from exc


def encrypt(plaintext: str) -> str:
    """Encrypt a secret for storage."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str | None:
    """Decrypt a stored secret; None when it cannot be read with the current keys."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        return None


def keyed_hash(purpose: str, value: str) -> str:
    """Return a hex HMAC of ``value`` under a key derived from ``SECRET_KEY`` for ``purpose``.

    Used for click visitor hashes and address hashes: comparable, but not reversible, and
    useless outside this deployment.
    """
    key = hashlib.sha256(f"referral-plugin/{purpose}/".encode() + current_app.config["SECRET_KEY"].encode())
    return hmac.new(key.digest(), value.encode(), hashlib.sha256).hexdigest()
