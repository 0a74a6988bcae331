"""HMAC checks for the three things Shopify signs: admin query strings, webhooks and app-proxy calls.

Every comparison is constant-time, and every check accepts the previous secret during rotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from collections.abc import Sequence
from urllib.parse import parse_qsl
from urllib.parse import quote

from referral_plugin.errors import InvalidSignature
from referral_plugin.errors import StaleRequest

Pairs = Sequence[tuple[str, str]]


def _hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def same_secret(expected: str, given: str) -> bool:
    """Compare a secret with a presented value in constant time; any text (non-ASCII too) is just unequal.

    ``hmac.compare_digest`` raises ``TypeError`` for ``str`` with non-ASCII characters, which would turn a
    garbage signature or token into a 500: comparing the UTF-8 bytes makes it a plain mismatch.
    """
    return hmac.compare_digest(expected.encode(), given.encode())


def _secrets(secret: str, old_secret: str | None) -> Iterable[str]:
    yield secret
    if old_secret:
        yield old_secret


def parse_query(query_string: str | bytes) -> list[tuple[str, str]]:
    """Parse a raw query string keeping blank values and order (Shopify signs blank values too)."""
    if isinstance(query_string, bytes):
        query_string = query_string.decode("utf-8", errors="replace")
    return parse_qsl(query_string, keep_blank_values=True)


def admin_message(pairs: Pairs) -> str:
    """Build the message Shopify signs for admin/OAuth redirects: sorted ``k=v`` pairs joined by ``&``.

    Keys and values are percent-encoded as Shopify's JS library does (space as ``%20``), which equals
    the raw form for every real OAuth parameter.
    """
    encoded = sorted(
        f"{quote(key, safe='')}={quote(value, safe='')}"
        for key, value in pairs
        if key not in ("hmac", "signature")
    )
    return "&".join(encoded)


def _legacy_admin_message(pairs: Pairs) -> str:
    """Build shopify_python_api's older form (only ``%``, ``&`` and ``=`` escaped), which some tools still sign."""

    def esc_key(value: str) -> str:
        return value.replace("%", "%25").replace("=", "%3D")

    def esc_value(value: str) -> str:
        return value.replace("%", "%25")

    # ``ids[]=2&ids[]=1`` is signed as ``ids=["2", "1"]`` (json.dumps of the values, in order).
    arrays: dict[str, list[str]] = {}
    plain: list[tuple[str, str]] = []
    for key, value in pairs:
        if key == "hmac":
            continue
        if key.endswith("[]"):
            arrays.setdefault(key[:-2], []).append(value)
        else:
            plain.append((key, value))
    plain.extend((key, json.dumps(values)) for key, values in arrays.items())
    return "&".join(sorted(f"{esc_key(key)}={esc_value(value)}".replace("&", "%26") for key, value in plain))


def compute_admin_hmac(pairs: Pairs, secret: str) -> str:
    """Return the lowercase hex hmac Shopify puts on admin/OAuth query strings."""
    return _hmac_sha256(secret, admin_message(pairs).encode()).hex()


def check_timestamp(raw: str | None, tolerance: int, now: float | None = None) -> int:
    """Return the timestamp if it is an integer within ``tolerance`` seconds of now.

    :raise StaleRequest: when it is missing, not an integer, or too old or too far ahead.
    """
    try:
        timestamp = int(raw or "")
    except ValueError:
        raise StaleRequest("timestamp is missing or not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise StaleRequest(f"timestamp is more than {tolerance} seconds away from now")
    return timestamp


def _single(pairs: Pairs, key: str) -> str | None:
    values = [value for name, value in pairs if name == key]
    if len(values) > 1:
        raise InvalidSignature(f"{key} appears more than once")
    return values[0] if values else None


def verify_admin_query(
    pairs: Pairs, secret: str, old_secret: str | None = None, *, tolerance: int | None = 90,
    now: float | None = None,
) -> None:
    """Verify the ``hmac`` and ``timestamp`` of an install or callback query string.

    :param tolerance: seconds of clock skew allowed; None skips the freshness check (test vectors).
    :raise InvalidSignature: when the hmac is missing or wrong.
    :raise StaleRequest: when the timestamp is stale.
    """
    given = _single(pairs, "hmac")
    if not given:
        raise InvalidSignature("hmac is missing")
    given = given.lower()
    for candidate_secret in _secrets(secret, old_secret):
        for message in (admin_message(pairs), _legacy_admin_message(pairs)):
            expected = _hmac_sha256(candidate_secret, message.encode()).hex()
            if same_secret(expected, given):
                if tolerance is not None:
                    check_timestamp(_single(pairs, "timestamp"), tolerance, now)
                return
    raise InvalidSignature("hmac does not match")


def compute_webhook_hmac(body: bytes, secret: str) -> str:
    """Return the base64 HMAC-SHA256 Shopify sends in ``X-Shopify-Hmac-Sha256``."""
    return base64.b64encode(_hmac_sha256(secret, body)).decode()


def verify_webhook(body: bytes, header: str | None, secret: str, old_secret: str | None = None) -> None:
    """Verify a webhook's HMAC over the raw body bytes.

    :raise InvalidSignature: when the header is missing or matches neither secret.
    """
    if not header:
        raise InvalidSignature("X-Shopify-Hmac-Sha256 is missing")
    given = header.strip().encode()
    for candidate_secret in _secrets(secret, old_secret):
        if hmac.compare_digest(compute_webhook_hmac(body, candidate_secret).encode(), given):
            return
    raise InvalidSignature("webhook hmac does not match")


def proxy_message(pairs: Pairs) -> str:
    """Build the app-proxy message: ``k=v1,v2`` per key (blank values kept), sorted, no separator."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        if key == "signature":
            continue
        grouped.setdefault(key, []).append(value)
    return "".join(sorted(f"{key}={','.join(values)}" for key, values in grouped.items()))


def compute_proxy_signature(pairs: Pairs, secret: str) -> str:
    """Return the hex ``signature`` Shopify adds to app-proxy requests."""
    return _hmac_sha256(secret, proxy_message(pairs).encode()).hex()


def verify_proxy_query(
    pairs: Pairs, secret: str, old_secret: str | None = None, *, tolerance: int | None = 90,
    now: float | None = None,
) -> None:
    """Verify an app-proxy query string: signature, single-valued security keys, fresh timestamp.

    :raise InvalidSignature: when the signature is missing or wrong, or ``shop``, ``timestamp``,
        ``signature``, ``hmac`` or ``logged_in_customer_id`` is repeated.
    :raise StaleRequest: when the timestamp is stale.
    """
    for key in ("shop", "timestamp", "hmac", "logged_in_customer_id"):
        _single(pairs, key)
    given = (_single(pairs, "signature") or "").lower()
    if not given:
        raise InvalidSignature("signature is missing")
    message = proxy_message(pairs).encode()
    for candidate_secret in _secrets(secret, old_secret):
        if same_secret(_hmac_sha256(candidate_secret, message).hex(), given):
            if tolerance is not None:
                check_timestamp(_single(pairs, "timestamp"), tolerance, now)
            return
    raise InvalidSignature("signature does not match")
