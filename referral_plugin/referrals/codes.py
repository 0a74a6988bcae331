"""Referral codes and invite links: one stable, unguessable, easy-to-type code per customer and campaign."""

from __future__ import annotations

import re
import secrets

from flask import current_app
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import ReferralCode
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.referrals._db import insert_once

#: 32 symbols without 0/O/1/I, so ``secrets.choice`` gives exactly 5 bits per character.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
#: 8 characters x 5 bits = 40 bits: far beyond guessing through a rate-limited storefront.
CODE_LENGTH = 8
_SEPARATORS = re.compile(r"[\s\-_.]+")
_MAX_ATTEMPTS = 10


def new_code() -> str:
    """Return a fresh random code, e.g. ``K7QM2XPA``."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def canonical_code(raw: str | None) -> str:
    """Return the stored form of a typed code: upper-case, without the spaces or dashes people add."""
    return _SEPARATORS.sub("", (raw or "").strip()).upper()


def format_code(code: str) -> str:
    """Return a code grouped for reading aloud, e.g. ``K7QM-2XPA`` (both forms are accepted back)."""
    return f"{code[:4]}-{code[4:]}" if len(code) == CODE_LENGTH else code


def looks_like_code(token: str) -> bool:
    """Tell whether a token could be one of our codes (right length and alphabet)."""
    code = canonical_code(token)
    return len(code) == CODE_LENGTH and all(ch in CODE_ALPHABET for ch in code)


def find_code(shop: Shop, raw: str | None) -> ReferralCode | None:
    """Return the shop's code matching what a person typed (any case, dashes or spaces), or None."""
    code = canonical_code(raw)
    # No code holds control characters; PostgreSQL would refuse a NUL in the query itself.
    if not code or len(code) > 32 or not code.isprintable():
        return None
    return db.session.scalar(select(ReferralCode).where(ReferralCode.shop_id == shop.id, ReferralCode.code == code))


def codes_of(customer: Customer) -> list[ReferralCode]:
    """Return every code of a customer, oldest first."""
    return list(db.session.scalars(
        select(ReferralCode).where(ReferralCode.shop_id == customer.shop_id,
                                   ReferralCode.customer_id == customer.id).order_by(ReferralCode.id)))


def get_or_create_code(shop: Shop, customer: Customer, campaign: Campaign | None = None) -> ReferralCode:
    """Return the customer's code in the campaign (default: the shop's default campaign), creating it once.

    Uniqueness is the database's: the ``(campaign, customer)`` constraint makes concurrent callers
    share one code, and the ``(shop, code)`` constraint makes a random collision draw again.
    """
    if campaign is None:
        from referral_plugin.referrals.campaigns import ensure_default_campaign

        campaign = ensure_default_campaign(shop)
    existing = _code_for(campaign, customer)
    if existing is not None:
        return existing
    for _ in range(_MAX_ATTEMPTS):
        candidate = ReferralCode(shop_id=shop.id, campaign_id=campaign.id, customer_id=customer.id, code=new_code())
        if insert_once(candidate):
            if campaign.friend_reward_kind != RewardKind.POINTS:
                _schedule_code_discount_sync(candidate.id)
            return candidate
        existing = _code_for(campaign, customer)
        if existing is not None:
            return existing
    raise RuntimeError("could not draw a unique referral code")


def _code_for(campaign: Campaign, customer: Customer) -> ReferralCode | None:
    """Return the customer's code in the campaign, or None."""
    return db.session.scalar(select(ReferralCode).where(
        ReferralCode.campaign_id == campaign.id, ReferralCode.customer_id == customer.id))


def invite_link(shop: Shop, code: ReferralCode | str) -> str:
    """Return the invite link of the contract: ``https://{shop}{APP_PROXY_PREFIX}/r/{code}``."""
    value = code.code if isinstance(code, ReferralCode) else canonical_code(code)
    prefix = "/" + str(current_app.config.get("APP_PROXY_PREFIX") or "/apps/referrals").strip("/")
    return f"https://{shop.shopify_domain}{prefix}/r/{value}"


def _schedule_code_discount_sync(referral_code_id: int) -> None:
    """Ask JOBS to make the code a live Shopify discount carrying the friend's offer."""
    from referral_plugin.referrals.jobs_bridge import schedule_code_discount_sync

    schedule_code_discount_sync(referral_code_id)
