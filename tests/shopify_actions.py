"""Play Shopify in tests: sign webhooks, app-proxy calls, admin redirects and session tokens.

Signing is written here from the published algorithms, independently of the app's own code, so a
bug in the app's verification cannot hide behind the same bug in the tests.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import json
import time
import typing as t
import uuid
from pathlib import Path
from urllib.parse import quote
from urllib.parse import urlencode

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

FIXTURES = Path(__file__).parent / "fixtures" / "shopify"

API_KEY = "test-api-key"
API_SECRET = "hush"
OLD_API_SECRET = "old-hush"
SHOP = "test-shop.myshopify.com"
OTHER_SHOP = "other-shop.myshopify.com"


def load_payload(name: str) -> dict[str, t.Any]:
    """Return a fresh copy of one of Shopify's published sample payloads (e.g. ``orders_paid``)."""
    return copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text()))


def raw_payload(name: str) -> bytes:
    """Return the exact bytes of a published sample payload."""
    return (FIXTURES / f"{name}.json").read_bytes()


def webhook_hmac(body: bytes, secret: str = API_SECRET) -> str:
    """Return the base64 HMAC-SHA256 of ``body``, as ``X-Shopify-Hmac-Sha256`` carries it."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def admin_hmac(params: t.Mapping[str, str], secret: str = API_SECRET) -> str:
    """Return the hex hmac over sorted ``k=v`` pairs joined by ``&`` (admin/OAuth redirects)."""
    message = "&".join(sorted(f"{k}={v}" for k, v in params.items() if k != "hmac"))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed_admin_query(params: t.Mapping[str, str], secret: str = API_SECRET) -> dict[str, str]:
    """Return ``params`` plus a fresh ``timestamp`` (unless given) and its ``hmac``."""
    signed = {"timestamp": str(int(time.time())), **params}
    signed["hmac"] = admin_hmac(signed, secret)
    return signed


def proxy_signature(pairs: t.Sequence[tuple[str, str]], secret: str = API_SECRET) -> str:
    """Return the app-proxy signature: ``k=v1,v2`` per key, sorted, concatenated, hex HMAC."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    message = "".join(sorted(f"{k}={','.join(v)}" for k, v in grouped.items()))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def proxy_query(
    customer_id: int | str | None = None,
    *,
    shop: str = SHOP,
    extra: t.Sequence[tuple[str, str]] = (),
    timestamp: int | None = None,
    secret: str = API_SECRET,
) -> str:
    """Return a signed app-proxy query string as Shopify would append it."""
    pairs = [
        *extra,
        ("shop", shop),
        ("logged_in_customer_id", "" if customer_id is None else str(customer_id)),
        ("path_prefix", "/apps/referrals"),
        ("timestamp", str(int(time.time()) if timestamp is None else timestamp)),
    ]
    pairs.append(("signature", proxy_signature(pairs, secret)))
    return urlencode(pairs, quote_via=quote)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def session_token(
    shop: str = SHOP,
    *,
    secret: str = API_SECRET,
    alg: str = "HS256",
    **overrides: t.Any,
) -> str:
    """Return an App Bridge session token (HS256 JWT) for ``shop``; ``overrides`` replace claims.

    Pass a claim as None to drop it.
    """
    now = int(time.time())
    claims: dict[str, t.Any] = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": API_KEY,
        "sub": "42",
        "exp": now + 60,
        "nbf": now,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "sid": uuid.uuid4().hex,
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    header = _b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = _b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{body}".encode()
    if alg == "none":
        return f"{header}.{body}."
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{body}.{_b64url(signature)}"


class ShopifyActions:
    """Drive the app the way Shopify does."""

    def __init__(self, client: FlaskClient, secret: str = API_SECRET) -> None:
        self.client = client
        self.secret = secret

    def post_webhook(
        self,
        topic: str,
        payload: t.Mapping[str, t.Any] | bytes,
        *,
        shop: str = SHOP,
        webhook_id: str | None = None,
        event_id: str | None = None,
        valid: bool = True,
        headers: t.Mapping[str, str] | None = None,
        triggered_at: dt.datetime | None = None,
    ) -> TestResponse:
        """POST a signed webhook delivery; a fresh webhook id and the current trigger time unless given."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        signature = webhook_hmac(body, self.secret if valid else "wrong-secret")
        sent = {
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-API-Version": "2026-10",
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": (triggered_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        if event_id:
            sent["X-Shopify-Event-Id"] = event_id
        sent.update(headers or {})
        return self.client.post("/webhooks", data=body, headers=sent, content_type="application/json")

    def proxy_get(self, path: str, customer_id: int | str | None = None, *, shop: str = SHOP,
                  extra: t.Sequence[tuple[str, str]] = (), **kwargs: t.Any) -> TestResponse:
        """GET ``/proxy/{path}`` as the app proxy forwards it, signed."""
        query = proxy_query(customer_id, shop=shop, extra=extra, secret=self.secret)
        return self.client.get(f"/proxy/{path.lstrip('/')}?{query}", **kwargs)

    def proxy_post(self, path: str, customer_id: int | str | None = None, *, shop: str = SHOP,
                   extra: t.Sequence[tuple[str, str]] = (), **kwargs: t.Any) -> TestResponse:
        """POST to ``/proxy/{path}`` as the app proxy forwards it, signed."""
        query = proxy_query(customer_id, shop=shop, extra=extra, secret=self.secret)
        return self.client.post(f"/proxy/{path.lstrip('/')}?{query}", **kwargs)

    def session_token(self, shop: str = SHOP, **overrides: t.Any) -> str:
        """Return a valid session token for ``shop``."""
        return session_token(shop, secret=self.secret, **overrides)
