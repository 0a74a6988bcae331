"""Per-request helpers of the embedded dashboard: the raw session token, links that carry it, CSRF tokens.

Embedded pages live in a third-party iframe, where cookies are unreliable, so nothing here uses the
Flask session: every document request carries ``id_token`` (App Bridge's session token) and every
plain form also carries a CSRF token derived from the shop and the Shopify user of that token.
"""

from __future__ import annotations

import hashlib
import hmac
import typing as t

from flask import current_app
from flask import g
from flask import request
from flask import url_for

from referral_plugin.errors import Forbidden
from referral_plugin.models import Shop
from referral_plugin.security.signatures import same_secret

CSRF_FIELD = "csrf_token"


def current_shop() -> Shop:
    """Return the shop of the request's session token (set by ``embedded_required``)."""
    return t.cast(Shop, g.shop)


def session_claims() -> dict[str, t.Any]:
    """Return the verified session token claims."""
    return t.cast(dict[str, t.Any], getattr(g, "session_claims", None) or {})


def raw_session_token() -> str | None:
    """Return the session token this request came with (query ``id_token`` or the bearer header)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip() or None
    return request.args.get("id_token") or request.form.get("id_token") or None


def actor() -> str:
    """Return who acts, for audit events: the Shopify staff user of the session token."""
    return f"shopify-user:{session_claims().get('sub', 'unknown')}"


def admin_url(endpoint: str, **values: t.Any) -> str:
    """Return a dashboard URL that carries the current session token, so links work without JavaScript.

    The page's script swaps in a fresh token on click (tokens live one minute); without the script the
    link still works while the token is fresh, and App Bridge's bounce re-issues one after that.
    """
    token = raw_session_token()
    cleaned = {key: value for key, value in values.items() if value not in (None, "")}
    if token:
        cleaned["id_token"] = token
    return url_for(endpoint, **cleaned)


def csrf_token() -> str:
    """Return the CSRF token of this shop and staff user (stable across their one-minute session tokens)."""
    shop = current_shop()
    subject = str(session_claims().get("sub", ""))
    message = f"dashboard-csrf:{shop.shopify_domain}:{subject}".encode()
    return hmac.new(str(current_app.config["SECRET_KEY"]).encode(), message, hashlib.sha256).hexdigest()


def check_csrf() -> None:
    """Refuse a form post whose CSRF token is missing or wrong.

    :raise Forbidden: ``CSRF_FAILED``.
    """
    sent = request.form.get(CSRF_FIELD, "")
    if not sent or not same_secret(csrf_token(), sent):
        raise Forbidden("The form expired or did not come from this app; reload the page and try again.",
                        code="CSRF_FAILED")
