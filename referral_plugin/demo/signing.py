"""Sign requests the way Shopify would, with the app's own (demo) secret: proxy URLs, session tokens, webhooks.

Demo mode has no Shopify in front of the app, so these stand in for it. They exist only for the
demo shop and only in demo mode (see :mod:`referral_plugin.demo.views`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import typing as t
import uuid
from urllib.parse import quote
from urllib.parse import urlencode

from referral_plugin.security.signatures import compute_proxy_signature
from referral_plugin.security.signatures import compute_webhook_hmac

#: How long a demo session token lives; App Bridge's own tokens live a minute too.
SESSION_TOKEN_TTL = 60


def signed_proxy_query(shop: str, secret: str, *, customer_id: int | str | None = None,
                       path_prefix: str = "/apps/referrals", extra: t.Sequence[tuple[str, str]] = (),
                       now: float | None = None) -> str:
    """Return an app-proxy query string signed as Shopify signs it (``logged_in_customer_id`` empty = anonymous)."""
    pairs = [
        *extra,
        ("shop", shop),
        ("logged_in_customer_id", "" if customer_id is None else str(customer_id)),
        ("path_prefix", path_prefix),
        ("timestamp", str(int(time.time() if now is None else now))),
    ]
    pairs.append(("signature", compute_proxy_signature(pairs, secret)))
    return urlencode(pairs, quote_via=quote)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def session_token(shop: str, api_key: str, secret: str, *, now: float | None = None) -> str:
    """Return an App Bridge-style session token (HS256 JWT, ``aud`` = client id) for ``shop``."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": api_key,
        "sub": "1",
        "exp": issued + SESSION_TOKEN_TTL,
        "nbf": issued,
        "iat": issued,
        "jti": str(uuid.uuid4()),
        "sid": uuid.uuid4().hex,
    }
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{body}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{body}.{_b64url(signature)}"


def webhook_headers(topic: str, body: bytes, shop: str, secret: str, *, webhook_id: str,
                    api_version: str, triggered_at: str | None = None) -> dict[str, str]:
    """Return the headers of a signed webhook delivery of ``body``."""
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": compute_webhook_hmac(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": webhook_id,
        "X-Shopify-Triggered-At": triggered_at or time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
    }
