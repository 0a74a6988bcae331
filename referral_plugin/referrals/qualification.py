"""Qualification: the ordered rules that decide whether an attributed order earns its rewards."""

from __future__ import annotations

import datetime as dt
import typing as t
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal

from flask import current_app
from sqlalchemy import func
from sqlalchemy import select

from referral_plugin.config import parse_bool
from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import is_running
from referral_plugin.referrals.fraud import friend_identity
from referral_plugin.referrals.fraud import review_signal
from referral_plugin.referrals.fraud import self_referral_match
from referral_plugin.referrals.reasons import Reason

QUALIFIED = "qualified"
HELD = "held"
REJECTED = "rejected"

_COUNTED_STATUSES = (ReferralStatus.REWARDED, ReferralStatus.HELD, ReferralStatus.PARTIALLY_REVERSED)


@dataclass
class Decision:
    """One decision on one order: ``qualified``, ``held`` or ``rejected``, a reason code and the evidence."""

    decision: str
    reason: Reason
    evidence: dict[str, t.Any] = field(default_factory=dict)
    hold_until: dt.datetime | None = None

    @property
    def rewarded(self) -> bool:
        """Tell whether rewards are written (granted now or held)."""
        return self.decision in (QUALIFIED, HELD)


@dataclass
class OrderFacts:
    """What qualification needs to know about the order, read once from the payload."""

    order_id: int
    subtotal: Decimal | None
    test: bool
    paid_at: dt.datetime
    customer_orders_count: int | None = None
    #: What the campaign's minimum is checked against: the subtotal before the referral code's own discount.
    minimum_basis: Decimal | None = None


def rewards_test_orders(shop: Shop) -> bool:
    """Tell whether test orders earn rewards: the shop's setting, else ``REWARD_TEST_ORDERS``."""
    if shop.reward_test_orders is not None:
        return bool(shop.reward_test_orders)
    return parse_bool(current_app.config.get("REWARD_TEST_ORDERS"))


def qualify(
    shop: Shop,
    campaign: Campaign,
    advocate: Customer,
    friend: Customer | None,
    facts: OrderFacts,
    order: Mapping[str, t.Any],
    *,
    referral: Referral | None,
    code: ReferralCode | None,
    now: dt.datetime,
) -> Decision:
    """Apply the rules in their documented order; the first that fails is the reason."""
    identity = friend_identity(shop, order, friend)
    if not is_running(campaign, facts.paid_at):
        return Decision(REJECTED, Reason.CAMPAIGN_INACTIVE, {"campaign": campaign.token, "status": campaign.status})
    if facts.test and not rewards_test_orders(shop):
        return Decision(REJECTED, Reason.TEST_ORDER, {"test": True})
    if advocate.redacted_at is not None:
        # Shopify erased the advocate: nobody is left to reward, and a reward would store data about them again.
        return Decision(REJECTED, Reason.ADVOCATE_ERASED, {"advocate_erased_at": advocate.redacted_at.isoformat()})
    match = self_referral_match(advocate, friend, identity)
    if match is not None:
        return Decision(REJECTED, Reason.SELF_REFERRAL, {"match": match})
    if friend is not None:
        earlier = db.session.scalar(select(Referral).where(
            Referral.shop_id == shop.id, Referral.friend_id == friend.id))
        if earlier is not None and (referral is None or earlier.id != referral.id):
            return Decision(REJECTED, Reason.ALREADY_REFERRED,
                            {"referral": earlier.id, "advocate": earlier.advocate_id, "status": earlier.status})
        if friend.first_paid_order_id is not None and friend.first_paid_order_id != facts.order_id:
            return Decision(REJECTED, Reason.NOT_FIRST_ORDER,
                            {"first_paid_order": friend.first_paid_order_id,
                             "paid_orders": friend.paid_orders_count})
        if facts.customer_orders_count is not None and facts.customer_orders_count > 1:
            return Decision(REJECTED, Reason.NOT_FIRST_ORDER, {"orders_count": facts.customer_orders_count})
        if campaign.new_customers_only:
            anchor = _referral_anchor(referral, code)
            if anchor is not None and friend.created_at < anchor:
                return Decision(REJECTED, Reason.NOT_NEW_CUSTOMER,
                                {"customer_since": friend.created_at.isoformat(), "referred_at": anchor.isoformat()})
    minimum = Decimal(campaign.min_order_subtotal or 0)
    basis = facts.minimum_basis if facts.minimum_basis is not None else facts.subtotal
    if minimum > 0 and (basis is None or basis < minimum):
        return Decision(REJECTED, Reason.BELOW_MINIMUM,
                        {"subtotal": str(facts.subtotal) if facts.subtotal is not None else None,
                         **({"subtotal_before_code": str(basis)} if basis != facts.subtotal else {}),
                         "minimum": str(minimum)})
    if campaign.advocate_cap is not None:
        rewarded = db.session.scalar(select(func.count(Referral.id)).where(
            Referral.shop_id == shop.id, Referral.campaign_id == campaign.id, Referral.advocate_id == advocate.id,
            Referral.status.in_(_COUNTED_STATUSES),
            *([Referral.id != referral.id] if referral is not None else [])))
        if (rewarded or 0) >= campaign.advocate_cap:
            return Decision(REJECTED, Reason.CAP_REACHED,
                            {"rewarded": int(rewarded or 0), "cap": campaign.advocate_cap})
    if friend is None:
        return Decision(REJECTED, Reason.GUEST_CHECKOUT, {"customer": None})
    hold_until = now + dt.timedelta(days=campaign.hold_days) if campaign.hold_days else None
    signal = review_signal(shop, advocate, friend, identity, now)
    if signal is not None:
        reason, evidence = signal
        return Decision(HELD, reason, evidence, hold_until)
    if hold_until is not None:
        return Decision(HELD, Reason.HOLD_PERIOD, {"hold_days": campaign.hold_days}, hold_until)
    return Decision(QUALIFIED, Reason.QUALIFIED, {})


def _referral_anchor(referral: Referral | None, code: ReferralCode | None) -> dt.datetime | None:
    """Return when the friend was first referred: the invitation, else the advocate's code coming to exist."""
    if referral is not None and referral.invitation_id is not None:
        invitation = db.session.get(Invitation, referral.invitation_id)
        if invitation is not None:
            return invitation.invited_at
    if code is not None:
        return code.created_at
    return None
