"""Webhook handlers of the engine: ``customers/create``, ``orders/paid``, ``orders/cancelled``, ``refunds/create``.

Each runs inside the delivery's transaction (see :mod:`referral_plugin.webhooks.registry`): it never
commits, and an exception makes Shopify retry. A delivery for an unknown shop changes nothing.
"""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Mapping

from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from referral_plugin.referrals._db import insert_once
from referral_plugin.referrals.attribution import Source
from referral_plugin.referrals.attribution import code_from_note
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.codes import get_or_create_code
from referral_plugin.referrals.customers import upsert_from_payload
from referral_plugin.referrals.invitations import invitations_for
from referral_plugin.referrals.invitations import mark_joined
from referral_plugin.referrals.orders import process_paid_order
from referral_plugin.referrals.reversal import process_cancelled_order
from referral_plugin.referrals.reversal import process_refund

if t.TYPE_CHECKING:
    from referral_plugin.webhooks.registry import Delivery

logger = logging.getLogger(__name__)


def handle_customers_create(shop: Shop | None, payload: dict[str, t.Any], delivery: Delivery) -> None:
    """Register a customer: upsert them, give them a code, and bind them to whoever referred them."""
    if shop is None:
        return
    customer = upsert_from_payload(shop, payload)
    if customer is None:
        logger.warning("customers/create without a usable id for %s", shop.shopify_domain)
        return
    register_customer(shop, customer, note=payload.get("note"))


def register_customer(shop: Shop, customer: Customer, *, note: t.Any = None) -> Referral | None:
    """Give a new customer their code in the default campaign and bind a pending referral when invited.

    The earliest invitation to the customer's email or phone wins; otherwise a code in the customer's
    note ("ref: K7QM2XPA") binds them. Returns the bound referral, if any.
    """
    campaign = ensure_default_campaign(shop)
    get_or_create_code(shop, customer, campaign)
    invitations = [i for i in invitations_for(shop, customer) if i.advocate_id != customer.id]
    if invitations:
        mark_joined(invitations, customer)
    existing = db.session.scalar(select(Referral).where(Referral.shop_id == shop.id,
                                                        Referral.friend_id == customer.id))
    if existing is not None:
        return existing
    if invitations:
        first = invitations[0]
        return _bind(shop, customer, first.advocate_id, first.campaign_id, Source.INVITATION,
                     invitation=first, code=_code_of(first.campaign_id, first.advocate_id))
    code = code_from_note(shop, note if isinstance(note, str) else None)
    if code is not None and code.customer_id != customer.id:
        return _bind(shop, customer, code.customer_id, code.campaign_id, Source.CUSTOMER_NOTE, code=code)
    return None


def _bind(shop: Shop, friend: Customer, advocate_id: int, campaign_id: int, source: str, *,
          invitation: Invitation | None = None, code: ReferralCode | None = None) -> Referral | None:
    """Insert the friend's pending referral; a concurrent binding of the same friend wins instead."""
    referral = Referral(shop_id=shop.id, campaign_id=campaign_id, advocate_id=advocate_id, friend_id=friend.id,
                        invitation_id=invitation.id if invitation else None,
                        referral_code_id=code.id if code else None, source=source, status=ReferralStatus.PENDING,
                        evidence={"bound_by": source, **({"invitation": invitation.id} if invitation else {}),
                                  **({"code": code.code} if code else {})})
    if insert_once(referral):
        return referral
    return db.session.scalar(select(Referral).where(Referral.shop_id == shop.id, Referral.friend_id == friend.id))


def _code_of(campaign_id: int, advocate_id: int) -> ReferralCode | None:
    """Return the advocate's code in a campaign, if they have one."""
    return db.session.scalar(select(ReferralCode).where(ReferralCode.campaign_id == campaign_id,
                                                        ReferralCode.customer_id == advocate_id))


def handle_orders_paid(shop: Shop | None, payload: dict[str, t.Any], delivery: Delivery) -> None:
    """Attribute and qualify a paid order; exactly one decision per order."""
    if shop is None or not isinstance(payload, Mapping):
        return
    process_paid_order(shop, payload)


def handle_orders_cancelled(shop: Shop | None, payload: dict[str, t.Any], delivery: Delivery) -> None:
    """Reverse a cancelled order's rewards (or decide it up front when it was never paid)."""
    if shop is None or not isinstance(payload, Mapping):
        return
    process_cancelled_order(shop, payload)


def handle_refunds_create(shop: Shop | None, payload: dict[str, t.Any], delivery: Delivery) -> None:
    """Reverse the refunded share of an order's rewards."""
    if shop is None or not isinstance(payload, Mapping):
        return
    process_refund(shop, payload)
