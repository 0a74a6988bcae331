"""Cross-site protection for the proxy's write routes.

Shopify signs every request a browser makes through the app proxy, including one a hostile page
triggers with a cross-site form, so the signature alone does not prove the shopper meant it. The
widget carries a token bound to the shop, the customer and the day; a post must bring it back
(or be a JSON call from the shop's own origin).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from referral_plugin.security.crypto import keyed_hash
from referral_plugin.security.signatures import same_secret

_PURPOSE = "proxy-form-token"


def _day(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).date().isoformat()


def form_token(shop_domain: str, customer_id: int, at: dt.datetime | None = None) -> str:
    """Return the token the widget renders for this customer today."""
    now = at or dt.datetime.now(dt.UTC)
    return keyed_hash(_PURPOSE, f"{shop_domain}|{customer_id}|{_day(now)}")


def check_form_token(shop_domain: str, customer_id: int, given: str | None, at: dt.datetime | None = None) -> bool:
    """Tell whether ``given`` is today's or yesterday's token (a widget left open over midnight still works)."""
    if not given:
        return False
    now = at or dt.datetime.now(dt.UTC)
    for day in (now, now - dt.timedelta(days=1)):
        if same_secret(form_token(shop_domain, customer_id, day), given.strip()):
            return True
    return False


def same_origin(origin: str | None, shop_domain: str) -> bool:
    """Tell whether an ``Origin`` header is the shop's own storefront (its myshopify domain over https)."""
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    return parts.scheme == "https" and (parts.hostname or "").lower() == shop_domain and parts.port in (None, 443)


def json_origin_ok(origin: str | None, fetch_site: str | None, shop_domain: str) -> bool:
    """Tell whether a JSON post without a token may pass: from the shop's origin, or from no browser page at all.

    A page on another site cannot send ``application/json`` without a CORS preflight, which this app never
    grants, and a browser always names the page's origin on such a post; so a foreign ``Origin`` or a
    ``Sec-Fetch-Site: cross-site`` is refused, and a post without either came from no web page.
    """
    if (fetch_site or "").strip().lower() == "cross-site":
        return False
    if origin is None:
        return True
    return same_origin(origin, shop_domain)
