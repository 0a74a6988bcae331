"""Trust for app-proxy requests: the signed query string names the shop and the customer, nothing else does."""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from referral_plugin.errors import InvalidSignature
from referral_plugin.errors import Unauthorized
from referral_plugin.extensions import db
from referral_plugin.models import Shop
from referral_plugin.security.shop_domain import sanitize_shop_domain
from referral_plugin.security.signatures import verify_proxy_query

# Shopify's proxy prefixes are one of apps|a|community|tools plus a merchant-editable subpath.
_PATH_PREFIX = re.compile(r"/(?:apps|a|community|tools)/[A-Za-z0-9._~-]{1,64}")


@dataclass(frozen=True)
class ProxyContext:
    """What a verified app-proxy request tells us: the shop, the customer (None = anonymous), the path prefix."""

    shop: Shop
    customer_id: int | None
    path_prefix: str


def _single(pairs: Sequence[tuple[str, str]], key: str) -> str | None:
    values = [value for name, value in pairs if name == key]
    return values[0] if values else None


def verify_proxy_request(pairs: Sequence[tuple[str, str]], config: Mapping[str, object]) -> ProxyContext:
    """Verify a proxied query string and resolve its installed shop and logged-in customer.

    :raise InvalidSignature: when the signature is missing, wrong or a security key is repeated.
    :raise StaleRequest: when the timestamp is outside ``HMAC_TIMESTAMP_TOLERANCE``.
    :raise Unauthorized: when the shop is not installed or the customer id is not a Shopify id.
    """
    tolerance = config.get("HMAC_TIMESTAMP_TOLERANCE", 90)
    verify_proxy_query(
        pairs,
        str(config["SHOPIFY_API_SECRET"]),
        _optional_str(config.get("SHOPIFY_API_SECRET_OLD")),
        tolerance=int(tolerance) if isinstance(tolerance, int | str) else 90,
    )
    domain = sanitize_shop_domain(_single(pairs, "shop"))
    if domain is None:
        raise InvalidSignature("shop is missing or not a myshopify.com domain")
    shop = db.session.scalars(sa.select(Shop).where(Shop.shopify_domain == domain)).first()
    if shop is None or not shop.is_installed:
        raise Unauthorized("this shop has not installed the app", code="SHOP_NOT_INSTALLED")
    raw_customer = (_single(pairs, "logged_in_customer_id") or "").strip()
    if raw_customer and not (raw_customer.isascii() and raw_customer.isdigit()):
        raise Unauthorized("logged_in_customer_id is not a customer id", code="INVALID_CUSTOMER")
    customer_id = int(raw_customer) if raw_customer else None
    prefix = _single(pairs, "path_prefix") or ""
    if not _PATH_PREFIX.fullmatch(prefix):
        prefix = str(config.get("APP_PROXY_PREFIX") or "/apps/referrals")
    return ProxyContext(shop=shop, customer_id=customer_id, path_prefix=prefix)


def _optional_str(value: object) -> str | None:
    return str(value) if value else None
