"""Invite-link landing: count the click without keeping the visitor's IP, then send them to the shop."""

from __future__ import annotations

import ipaddress
from urllib.parse import quote

from referral_plugin.extensions import db
from referral_plugin.models import Click
from referral_plugin.models import Customer
from referral_plugin.models import ReferralCode
from referral_plugin.models import Shop
from referral_plugin.referrals.codes import find_code
from referral_plugin.security.crypto import keyed_hash


def client_ip(forwarded_for: str | None, remote_addr: str | None) -> str | None:
    """Return the visitor's IP: the first hop of ``X-Forwarded-For`` (as Shopify's proxy sets it), else the peer."""
    if forwarded_for:
        first = forwarded_for.split(",", 1)[0].strip()
        if first:
            return first
    return remote_addr


def mask_ip(raw: str | None) -> str:
    """Return the IP's network (/24 for IPv4, /48 for IPv6), or ``unknown`` when it is not an IP."""
    if not raw:
        return "unknown"
    candidate = raw.strip()
    # "[2001:db8::1]:443" and "203.0.113.9:5123" appear in some proxies' headers.
    if candidate.startswith("[") and "]" in candidate:
        candidate = candidate[1 : candidate.index("]")]
    elif candidate.count(":") == 1:
        candidate = candidate.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def visitor_hash(ip: str | None, user_agent: str | None) -> str:
    """Return the keyed hash that identifies a visitor across clicks: masked IP plus user agent."""
    return keyed_hash("click", f"{mask_ip(ip)}|{user_agent or ''}")


def landing_url(shop: Shop, code: ReferralCode | None) -> str:
    """Return where the visitor goes: the discount link for a live discount, the shop with ``?ref=``, or the shop."""
    base = f"https://{shop.shopify_domain}"
    if code is None:
        return f"{base}/"
    safe_code = quote(code.code, safe="")
    if code.discount_node_id:
        return f"{base}/discount/{safe_code}?redirect=/"
    return f"{base}/?ref={safe_code}"


def land(shop: Shop, raw_code: str, *, ip: str | None, user_agent: str | None,
         visitor_customer_id: int | None = None) -> str:
    """Record a click for a live code and return the URL to redirect to; unknown or retired codes count nothing.

    The advocate opening their own link (logged in, as the app proxy tells) lands too but counts no click:
    trying one's link is not a friend's visit, and would inflate their "Link clicks" and the shop's funnel.
    """
    code = find_code(shop, raw_code) if raw_code else None
    if code is None or code.retired_at is not None or code.shop_id != shop.id:
        return landing_url(shop, None)
    if visitor_customer_id is None or not _owns(code, visitor_customer_id):
        db.session.add(Click(shop_id=shop.id, referral_code_id=code.id, visitor_hash=visitor_hash(ip, user_agent)))
        db.session.commit()
    return landing_url(shop, code)


def _owns(code: ReferralCode, shopify_customer_id: int) -> bool:
    """Tell whether the code belongs to the customer with this Shopify id."""
    owner = db.session.get(Customer, code.customer_id)
    return owner is not None and owner.shopify_customer_id == shopify_customer_id
