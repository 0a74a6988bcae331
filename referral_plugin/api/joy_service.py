"""Joy-compatible referral services (seed ``003``): invitation links, referrers, summaries, analytics."""

from __future__ import annotations

import datetime as dt
import typing as t

from sqlalchemy import func
from sqlalchemy import select

from referral_plugin.api.capillary_service import shopify_id
from referral_plugin.errors import NotFound
from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import InvitationStatus
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.campaigns import get_campaign
from referral_plugin.referrals.codes import codes_of
from referral_plugin.referrals.codes import get_or_create_code
from referral_plugin.referrals.codes import invite_link
from referral_plugin.referrals.customers import find_customers
from referral_plugin.referrals.customers import get_customer
from referral_plugin.referrals.customers import mobile_digits
from referral_plugin.referrals.customers import normalize_email
from referral_plugin.referrals.ledger import pending_rewards
from referral_plugin.referrals.ledger import points_balance
from referral_plugin.referrals.ledger import points_earned
from referral_plugin.reports import summary as reports

#: Attribution decisions that count as a friend's order with the advocate's code (rejected ones do not).
COUNTED_DECISIONS = reports.COUNTED_DECISIONS


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def customer_by_id(shop: Shop, customer_id: str) -> Customer:
    """Return the shop's customer with this Shopify id; raise ``NotFound`` (``CUSTOMER_NOT_FOUND``)."""
    wanted = shopify_id(customer_id.strip())
    customer = get_customer(shop, wanted) if wanted is not None else None
    if customer is None or customer.redacted_at is not None:  # erased on the shop's request: as the other routes
        raise NotFound(f"No customer {customer_id!r} in this shop.", code="CUSTOMER_NOT_FOUND")
    return customer


def _campaign(shop: Shop, token: t.Any) -> Campaign:
    if token in (None, ""):
        return ensure_default_campaign(shop)
    campaign = get_campaign(shop, str(token)) if isinstance(token, str) else None
    if campaign is None:
        raise ValidationError("Unknown campaign token.", code="INVALID_CAMPAIGN", field="campaignToken")
    return campaign


def create_invitation(shop: Shop, body: t.Any) -> dict[str, t.Any]:
    """Return the invite link and referral code of the customer with ``body["email"]``.

    Idempotent: the customer keeps one code per campaign, so repeating the call returns the same link.
    :raise ValidationError: ``VALIDATION_ERROR``/``INVALID_EMAIL`` for a missing or malformed email.
    :raise NotFound: ``CUSTOMER_NOT_FOUND`` when no customer of the shop has that email.
    """
    if not isinstance(body, dict):
        raise ValidationError("The body must be a JSON object with an email.", field="email")
    email = body.get("email")
    if not isinstance(email, str) or not email.strip():
        raise ValidationError("email is required.", field="email")
    normalize_email(email)  # raises INVALID_EMAIL with the reason
    campaign = _campaign(shop, body.get("campaignToken"))
    customers = [c for c in find_customers(shop, "email", email) if c.redacted_at is None]
    if not customers:
        raise NotFound("No customer with this email in this shop.", code="CUSTOMER_NOT_FOUND", field="email")
    customer = customers[0]
    code = get_or_create_code(shop, customer, campaign)
    return {
        "inviteLink": invite_link(shop, code),
        "referralCode": code.code,
        "customerId": customer.shopify_customer_id,
        "email": customer.email,
        "campaignToken": campaign.token,
    }


def _person(customer: Customer) -> dict[str, t.Any]:
    return {
        "customerId": customer.shopify_customer_id,
        "email": customer.email,
        "phone": mobile_digits(customer.phone),
        "firstName": customer.first_name,
        "lastName": customer.last_name,
    }


def referrers(shop: Shop, customer: Customer) -> list[dict[str, t.Any]]:
    """Return who referred this customer: the advocate of their referral, then any other inviters.

    A friend is referred once per shop, so at most one entry has ``"referred": true`` (with the
    referral's status); the others only invited the customer before they joined.
    """
    items: list[dict[str, t.Any]] = []
    seen: set[int] = set()
    referral = db.session.scalar(select(Referral).where(Referral.shop_id == shop.id,
                                                        Referral.friend_id == customer.id))
    if referral is not None:
        advocate = db.session.get(Customer, referral.advocate_id)
        if advocate is not None and advocate.shop_id == shop.id:
            seen.add(advocate.id)
            items.append({**_person(advocate), "referred": True, "status": referral.status,
                          "reason": referral.reason, "source": referral.source,
                          "referredAt": _iso(referral.created_at)})
    invitations = db.session.scalars(
        select(Invitation).where(Invitation.shop_id == shop.id, Invitation.friend_id == customer.id)
        .order_by(Invitation.invited_at, Invitation.id))
    for invitation in invitations:
        if invitation.advocate_id in seen:
            continue
        advocate = db.session.get(Customer, invitation.advocate_id)
        if advocate is None or advocate.shop_id != shop.id:
            continue
        seen.add(advocate.id)
        items.append({**_person(advocate), "referred": False, "status": "invited", "reason": None,
                      "source": invitation.source, "referredAt": _iso(invitation.invited_at)})
    return items


def customer_summary(shop: Shop, customer: Customer) -> dict[str, t.Any]:
    """Return a customer's referral figures (all campaigns, all time).

    - ``totalRedeemCoupon``: paid orders in which friends used this customer's code or link and the
      order was accepted (``qualified`` or ``held``; rejected ones, e.g. self-referrals, are not counted).
    - ``totalPointEarnRefer``: net points earned through the program, as advocate or as friend (ENGINE's
      ``points_earned``: grants and releases less reversals).
    - ``invited``/``joined``/``purchased``: this customer's invitations by how far the friend got.
    - ``referrals``: friends bound to this customer, by status; ``pending`` counts those still waiting.
    """
    redeemed = db.session.scalar(select(func.count()).select_from(OrderAttribution).where(
        OrderAttribution.shop_id == shop.id, OrderAttribution.advocate_id == customer.id,
        OrderAttribution.decision.in_(COUNTED_DECISIONS))) or 0
    invitation_counts: dict[str, int] = {status: int(count) for status, count in db.session.execute(
        select(Invitation.status, func.count()).where(Invitation.shop_id == shop.id,
                                                      Invitation.advocate_id == customer.id)
        .group_by(Invitation.status))}
    referral_counts: dict[str, int] = {status: int(count) for status, count in db.session.execute(
        select(Referral.status, func.count()).where(Referral.shop_id == shop.id, Referral.advocate_id == customer.id)
        .group_by(Referral.status))}
    invited = sum(invitation_counts.values())
    purchased = invitation_counts.get(InvitationStatus.PURCHASED, 0)
    joined = invitation_counts.get(InvitationStatus.JOINED, 0) + purchased
    code = next((c for c in codes_of(customer) if c.retired_at is None), None)
    pending = pending_rewards(customer)
    return {
        "customerId": customer.shopify_customer_id,
        "referralCode": code.code if code else None,
        "inviteLink": invite_link(shop, code) if code else None,
        "totalRedeemCoupon": int(redeemed),
        "totalPointEarnRefer": int(points_earned(customer)),
        "pointsBalance": int(points_balance(customer)),
        "invited": invited,
        "joined": joined,
        "purchased": purchased,
        "referrals": {status.value: int(referral_counts.get(status.value, 0)) for status in ReferralStatus},
        "pending": int(referral_counts.get(ReferralStatus.PENDING.value, 0)),
        "pendingRewards": len(pending),
    }


def _date(raw: str | None, field: str) -> dt.date | None:
    if raw is None or not raw.strip():
        return None
    return reports.parse_date(raw, field)  # the dashboard's rule: YYYY-MM-DD, years 1970-9000


def analytics(shop: Shop, start_raw: str | None, end_raw: str | None) -> dict[str, t.Any]:
    """Return the program's analytics for ``startDate``..``endDate`` (shop days; default the last 30).

    The figures are DASHBOARD's :func:`~referral_plugin.reports.summary.shop_summary` (the same numbers
    the merchant sees); ``countCouponCodeUsage`` is its ``referredOrders``: paid orders in which a
    friend used an advocate's code or link and that were accepted.
    :raise ValidationError: ``INVALID_DATE``, ``INVALID_RANGE`` or ``RANGE_TOO_LONG``.
    """
    end = _date(end_raw, "endDate") or reports.shop_today(shop)
    start = _date(start_raw, "startDate") or end - dt.timedelta(days=reports.DEFAULT_RANGE_DAYS - 1)
    try:
        reports.check_range(start, end)
    except ValidationError as error:
        # The dashboard's rule, named by this route's own query parameters.
        error.field = {"start": "startDate", "end": "endDate"}.get(error.field or "", error.field)
        raise
    figures = reports.shop_summary(shop, start, end)
    return {
        "startDate": figures["start"],
        "endDate": figures["end"],
        "countCouponCodeUsage": figures["referredOrders"],
        "countInvitations": figures["invites"],
        "countClicks": figures["clicks"],
        "countSignups": figures["signups"],
        "countReferredOrders": figures["referredOrders"],
        "referralRevenue": figures["referralRevenue"],
        "pointsAwarded": figures["pointsAwarded"],
        "couponsIssued": figures["couponsIssued"],
        "conversionRate": figures["conversionRate"],
        "currency": figures["currency"],
        "timezone": figures["timezone"],
        "series": figures["series"],
    }
