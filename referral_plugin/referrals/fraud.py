"""Fraud signals: self-referral matching and the hold-for-review rules, each with its evidence."""

from __future__ import annotations

import datetime as dt
import typing as t
from collections.abc import Mapping

from flask import current_app
from sqlalchemy import func
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Referral
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from referral_plugin.referrals.customers import address_hash
from referral_plugin.referrals.customers import canonical_email
from referral_plugin.referrals.customers import normalize_email
from referral_plugin.referrals.customers import normalize_phone
from referral_plugin.referrals.customers import phone_region
from referral_plugin.referrals.reasons import Reason

#: Throwaway-inbox domains; a friend on one of these is held for review, not rejected.
DISPOSABLE_DOMAINS = frozenset({
    "10minutemail.com", "20minutemail.com", "33mail.com", "discard.email", "dispostable.com", "emailondeck.com",
    "fakeinbox.com", "getairmail.com", "getnada.com", "guerrillamail.biz", "guerrillamail.com",
    "guerrillamail.de", "guerrillamail.net", "guerrillamail.org", "guerrillamailblock.com", "grr.la",
    "harakirimail.com", "inboxkitten.com", "mailcatch.com", "maildrop.cc", "mailinator.com", "mailinator.net",
    "mailnesia.com", "mintemail.com", "mohmal.com", "moakt.com", "mytemp.email", "nada.email",
    "sharklasers.com", "spamgourmet.com", "temp-mail.org", "temp-mail.io", "tempail.com", "tempmail.com",
    "tempmail.net", "tempmailo.com", "tempr.email", "throwawaymail.com", "trashmail.com", "trashmail.de",
    "trashmail.net", "yopmail.com", "yopmail.fr", "yopmail.net", "mailpoof.com", "burnermail.io",
})
#: Referrals of one advocate within :data:`VELOCITY_WINDOW` beyond which new ones wait for review
#: (config ``REVIEW_VELOCITY_LIMIT`` overrides; 0 turns the rule off).
VELOCITY_LIMIT = 20
VELOCITY_WINDOW = dt.timedelta(hours=24)
#: How far back a shared address between two friends of one advocate is looked for.
SHARED_ADDRESS_WINDOW = dt.timedelta(days=90)
_COUNTED_STATUSES = (ReferralStatus.REWARDED, ReferralStatus.HELD, ReferralStatus.PARTIALLY_REVERSED)


def friend_identity(shop: Shop, order: Mapping[str, t.Any], friend: Customer | None) -> dict[str, str | None]:
    """Return the friend's canonical email, E.164 phone and address hash, from the customer and the order."""
    email = friend.email if friend is not None else None
    if not email:
        for key in ("email", "contact_email"):
            raw = order.get(key)
            if isinstance(raw, str) and raw.strip():
                try:
                    email = normalize_email(raw)
                    break
                except Exception:  # noqa: BLE001 - an unusable email is simply not evidence
                    continue
    phone = friend.phone if friend is not None else None
    if not phone and isinstance(order.get("phone"), str):
        try:
            phone = normalize_phone(order["phone"], phone_region(shop))
        except Exception:  # noqa: BLE001 - an unusable phone is simply not evidence
            phone = None
    shipping = order.get("shipping_address")
    hashed = address_hash(shipping) if isinstance(shipping, Mapping) else None
    return {
        "email_canonical": canonical_email(email) if email else None,
        "phone": phone,
        "address_hash": hashed or (friend.address_hash if friend is not None else None),
        "email_domain": email.rpartition("@")[2] if email else None,
    }


def self_referral_match(advocate: Customer, friend: Customer | None, identity: Mapping[str, str | None]) -> str | None:
    """Return which identifier shows the friend is the advocate (customer, email, phone, address), or None."""
    if friend is not None and friend.id == advocate.id:
        return "customer"
    if identity.get("email_canonical") and identity["email_canonical"] == advocate.email_canonical:
        return "email"
    if identity.get("phone") and identity["phone"] == advocate.phone:
        return "phone"
    if identity.get("address_hash") and identity["address_hash"] == advocate.address_hash:
        return "address"
    return None


def review_signal(
    shop: Shop, advocate: Customer, friend: Customer | None, identity: Mapping[str, str | None], now: dt.datetime
) -> tuple[Reason, dict[str, t.Any]] | None:
    """Return the first reason to hold a qualified referral for the merchant's review, with evidence, or None."""
    domain = (identity.get("email_domain") or "").lower()
    if domain in DISPOSABLE_DOMAINS:
        return Reason.REVIEW_DISPOSABLE_EMAIL, {"email_domain": domain}
    hashed = identity.get("address_hash")
    if hashed:
        # From the few customers at that address (usually none) to their referrals, never through all of
        # the advocate's referrals: a popular advocate has thousands, and the databases' planners walked them.
        neighbours = [customer_id for customer_id in db.session.execute(select(Customer.id).where(
            Customer.shop_id == shop.id, Customer.address_hash == hashed)).scalars()
            if friend is None or customer_id != friend.id]
        shared = db.session.scalar(
            select(Referral.id).where(
                Referral.shop_id == shop.id, Referral.friend_id.in_(neighbours),
                Referral.advocate_id == advocate.id, Referral.status.in_(_COUNTED_STATUSES),
                Referral.decided_at >= now - SHARED_ADDRESS_WINDOW,
            ).order_by(Referral.id).limit(1)) if neighbours else None
        if shared is not None:
            return Reason.REVIEW_SHARED_ADDRESS, {"shared_with_referral": shared}
    limit = velocity_limit()
    if limit <= 0:
        return None
    recent = db.session.scalar(select(func.count(Referral.id)).where(
        Referral.shop_id == shop.id, Referral.advocate_id == advocate.id,
        Referral.status.in_(_COUNTED_STATUSES), Referral.decided_at >= now - VELOCITY_WINDOW))
    if recent is not None and recent >= limit:
        return Reason.REVIEW_VELOCITY, {"referrals_last_24h": int(recent), "limit": limit}
    return None


def velocity_limit() -> int:
    """Return how many referrals per advocate a day pass without review (``REVIEW_VELOCITY_LIMIT``)."""
    try:
        return int(current_app.config.get("REVIEW_VELOCITY_LIMIT", VELOCITY_LIMIT))
    except (TypeError, ValueError):
        return VELOCITY_LIMIT
