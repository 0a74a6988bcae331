"""Sanitize shop domains to the one canonical form we store: ``{handle}.myshopify.com``."""

from __future__ import annotations

import re

from referral_plugin.errors import InvalidShopDomain

# The strictest of the official libraries (shopify_python_api ``sanitize_shop_domain``), with the handle held to
# one DNS label (63 characters): a longer one names no host, and overflows the 255-character domain columns.
_HANDLE = r"[a-z0-9][a-z0-9-]{0,61}[a-z0-9]"
_CANONICAL = re.compile(_HANDLE + r"\.myshopify\.com")
_ADMIN_STORE = re.compile(r"admin\.shopify\.com/store/(" + _HANDLE + r")/?")


def sanitize_shop_domain(raw: str | None) -> str | None:
    """Return ``{handle}.myshopify.com`` for a valid shop, or None.

    Accepts a bare handle, the domain with or without ``http(s)://`` and a trailing slash, and
    ``admin.shopify.com/store/{handle}``; rejects anything with credentials, paths, ports, other
    hosts or extra labels.
    """
    if raw is None:
        return None
    value = raw.strip().lower()
    if _CANONICAL.fullmatch(value):  # what Shopify sends on every webhook and request: nothing to take apart
        return value
    if not value or any(ch.isspace() for ch in value) or "%" in value or "\\" in value:
        return None
    for scheme in ("https://", "http://"):
        if value.startswith(scheme):
            value = value[len(scheme) :]
            break
    admin = _ADMIN_STORE.fullmatch(value)
    if admin:
        return f"{admin.group(1)}.myshopify.com"
    value = value.rstrip("/")
    if "." not in value and re.fullmatch(_HANDLE, value):
        value += ".myshopify.com"
    # The canonical pattern admits no ``@``, ``:``, ``[``, ``/``, ``?`` or ``#``, so credentials, ports, IPv6
    # literals, paths and other hosts all fail here; urlsplit is not used because it raises on a port like
    # ``:abc`` or an unbalanced ``[``, which would turn a bad shop into a 500.
    if not _CANONICAL.fullmatch(value):
        return None
    return value


def require_shop_domain(raw: str | None) -> str:
    """Return the sanitized shop domain.

    :raise InvalidShopDomain: when ``raw`` is not a valid shop.
    """
    shop = sanitize_shop_domain(raw)
    if shop is None:
        raise InvalidShopDomain("shop must be a {handle}.myshopify.com domain")
    return shop


def names_another_shop(claimed: object, shop_domain: str) -> bool:
    """Tell whether a signed body's own shop field names a valid shop other than ``shop_domain``.

    The webhook hmac covers the body only, not ``X-Shopify-Shop-Domain``; a body that names its shop (the
    compliance topics' ``shop_domain``, app/uninstalled's ``myshopify_domain``) pins the delivery to it, so a
    captured body replayed under another shop's header cannot erase or uninstall that shop. A missing or
    placeholder value (Shopify's samples say ``{shop}.myshopify.com``) pins nothing.
    """
    other = sanitize_shop_domain(claimed) if isinstance(claimed, str) else None
    return other is not None and other != shop_domain
