"""``orders/paid``: count the paid order, attribute it, decide once, and write the rewards."""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from collections.abc import Mapping
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy import update

from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import OrderAttribution
from referral_plugin.models import PaidOrder
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.referrals import ledger
from referral_plugin.referrals._db import insert_once
from referral_plugin.referrals._db import lock_for_turns
from referral_plugin.referrals.attribution import Attribution
from referral_plugin.referrals.attribution import Source
from referral_plugin.referrals.attribution import attribute_order
from referral_plugin.referrals.customers import money
from referral_plugin.referrals.customers import parse_datetime
from referral_plugin.referrals.customers import shopify_id
from referral_plugin.referrals.customers import upsert_customer
from referral_plugin.referrals.customers import upsert_from_payload
from referral_plugin.referrals.invitations import mark_purchased
from referral_plugin.referrals.qualification import HELD
from referral_plugin.referrals.qualification import QUALIFIED
from referral_plugin.referrals.qualification import REJECTED
from referral_plugin.referrals.qualification import Decision
from referral_plugin.referrals.qualification import OrderFacts
from referral_plugin.referrals.qualification import qualify
from referral_plugin.referrals.qualification import rewards_test_orders
from referral_plugin.referrals.reasons import Reason

logger = logging.getLogger(__name__)

_STATUS_FOR = {QUALIFIED: ReferralStatus.REWARDED, HELD: ReferralStatus.HELD, REJECTED: ReferralStatus.REJECTED}


def order_id_of(payload: Mapping[str, t.Any], key: str = "id") -> int | None:
    """Return an order id from a payload as an int, or None when missing or malformed."""
    return shopify_id(payload.get(key))


def friend_from_order(shop: Shop, order: Mapping[str, t.Any]) -> Customer | None:
    """Upsert the order's customer (None for a guest checkout), filling the email from the order when missing."""
    payload = order.get("customer")
    if not isinstance(payload, Mapping):
        return None
    friend = upsert_from_payload(shop, payload)
    if friend is not None and not friend.email:
        email = order.get("email") or order.get("contact_email")
        if isinstance(email, str) and email.strip():
            friend = upsert_customer(shop, t.cast(int, friend.shopify_customer_id), email=email)
    return friend


def track_paid_order(shop: Shop, order_id: int, customer: Customer | None) -> bool:
    """Count a paid order once for its customer; return True the first time this order is seen."""
    if not insert_once(PaidOrder(shop_id=shop.id, shopify_order_id=order_id,
                                 customer_id=customer.id if customer else None)):
        return False
    if customer is not None:
        db.session.execute(update(Customer).where(Customer.id == customer.id)
                           .values(paid_orders_count=Customer.paid_orders_count + 1))
        db.session.execute(update(Customer).where(Customer.id == customer.id,
                                                  Customer.first_paid_order_id.is_(None))
                           .values(first_paid_order_id=order_id))
        db.session.refresh(customer)
    return True


def existing_attribution(shop: Shop, order_id: int) -> OrderAttribution | None:
    """Return the decision already taken for an order, or None."""
    return db.session.scalar(select(OrderAttribution).where(
        OrderAttribution.shop_id == shop.id, OrderAttribution.shopify_order_id == order_id))


def process_paid_order(shop: Shop, order: Mapping[str, t.Any]) -> OrderAttribution | None:
    """Handle one ``orders/paid``: exactly one decision per order, whatever Shopify redelivers.

    Returns the decision (new or earlier), or None when the order carries no referral evidence.
    """
    order_id = order_id_of(order)
    if order_id is None:
        logger.warning("orders/paid without a usable id for %s", shop.shopify_domain)
        return None
    friend = friend_from_order(shop, order)
    is_test = bool(order.get("test"))
    if not is_test or rewards_test_orders(shop):
        # A test order that earns nothing must not use up the friend's first order either.
        track_paid_order(shop, order_id, friend)
    earlier = existing_attribution(shop, order_id)
    if earlier is not None:
        return earlier
    found = attribute_order(shop, order, friend)
    if found is None:
        return None
    now = utcnow()
    code = found.code
    referral = found.referral
    if referral is not None:
        advocate = db.session.get(Customer, referral.advocate_id)
        campaign = db.session.get(Campaign, referral.campaign_id)
    else:
        assert code is not None
        advocate = db.session.get(Customer, code.customer_id)
        campaign = db.session.get(Campaign, code.campaign_id)
    if advocate is None or campaign is None:  # pragma: no cover - foreign keys keep these
        return None
    if referral is None and friend is not None and friend.id != advocate.id:
        referral = _bind_for_order(shop, campaign, code, advocate, friend, found)
    subtotal = money(order.get("subtotal_price"))
    facts = OrderFacts(
        order_id=order_id,
        subtotal=subtotal,
        test=is_test,
        paid_at=_paid_at(order, now),
        customer_orders_count=_orders_count(order),
        minimum_basis=found.subtotal_before_code(subtotal),
    )
    # One advocate's orders are decided one at a time: the cap and the velocity rule count the advocate's
    # decided referrals, and on PostgreSQL two overlapping transactions would both count before either wrote.
    lock_for_turns(Customer, advocate.id)
    decision = qualify(shop, campaign, advocate, friend, facts, order, referral=referral, code=code, now=now)
    if decision.reason == Reason.ALREADY_REFERRED:
        referral = None  # the friend's referral belongs to someone else: leave it alone
    if friend is None and referral is None and decision.reason != Reason.TEST_ORDER:
        referral = _guest_referral(shop, campaign, code, advocate, order_id, found)
    attribution = OrderAttribution(
        shop_id=shop.id, shopify_order_id=order_id, order_name=_str(order.get("name"), 64),
        referral_id=referral.id if referral else None, referral_code_id=code.id if code else None,
        advocate_id=advocate.id, friend_id=friend.id if friend else None, source=found.source,
        decision=decision.decision, reason=decision.reason,
        evidence={**found.evidence, **decision.evidence, **_presentment(order)}, subtotal=facts.subtotal,
        total=money(order.get("total_price")), currency=_str(order.get("currency"), 3), test=facts.test,
    )
    if not insert_once(attribution):
        # Another delivery of this order (or its cancellation) got there first: its decision stands.
        return existing_attribution(shop, order_id)
    if referral is not None and decision.reason == Reason.TEST_ORDER and referral.status == ReferralStatus.PENDING:
        # The referral stays open for the friend's real first order.
        referral.evidence = {**(referral.evidence or {}), "test_order": order_id}
    elif referral is not None:
        _record_on_referral(referral, decision, attribution, order, now)
    if decision.rewarded and referral is not None:
        applied = found.applied_amount if found.source == Source.DISCOUNT_CODE else None
        ledger.grant_referral_rewards(
            shop, referral, campaign, order_id=order_id, hold=decision.decision == HELD,
            available_at=decision.hold_until, friend_applied_amount=applied,
            applied_code=code.code if code is not None and applied is not None else None,
        )
        if friend is not None:
            mark_purchased(shop, friend, advocate.id, now)
        from referral_plugin.referrals.reversal import apply_early_refunds  # reversal imports this module

        apply_early_refunds(shop, attribution)
    db.session.flush()
    return attribution


def _bind_for_order(shop: Shop, campaign: Campaign, code: ReferralCode | None, advocate: Customer,
                    friend: Customer, found: Attribution) -> Referral | None:
    """Return the friend's referral for this advocate, binding a new one when the friend has none."""
    existing = db.session.scalar(select(Referral).where(Referral.shop_id == shop.id,
                                                        Referral.friend_id == friend.id))
    if existing is not None:
        if existing.advocate_id == advocate.id and existing.status == ReferralStatus.PENDING:
            if existing.referral_code_id is None and code is not None:
                existing.referral_code_id = code.id
            return existing
        return None
    referral = Referral(shop_id=shop.id, campaign_id=campaign.id, referral_code_id=code.id if code else None,
                        advocate_id=advocate.id, friend_id=friend.id, source=found.source,
                        status=ReferralStatus.PENDING)
    if insert_once(referral):
        return referral
    return None


def _guest_referral(shop: Shop, campaign: Campaign, code: ReferralCode | None, advocate: Customer,
                    order_id: int, found: Attribution) -> Referral | None:
    """Record a guest checkout's referral (no friend account), so the advocate sees why it earned nothing."""
    referral = Referral(shop_id=shop.id, campaign_id=campaign.id, referral_code_id=code.id if code else None,
                        advocate_id=advocate.id, friend_id=None, source=found.source,
                        status=ReferralStatus.PENDING)
    return referral if insert_once(referral) else None


def _record_on_referral(referral: Referral, decision: Decision, attribution: OrderAttribution,
                        order: Mapping[str, t.Any], now: dt.datetime) -> None:
    """Copy the decision and the order onto the referral."""
    referral.status = _STATUS_FOR[decision.decision]
    referral.reason = decision.reason
    referral.evidence = {**(referral.evidence or {}), **(attribution.evidence or {}),
                         "order": attribution.shopify_order_id, "attribution_source": attribution.source}
    referral.decided_at = now
    referral.hold_until = decision.hold_until
    referral.shopify_order_id = attribution.shopify_order_id
    referral.order_name = attribution.order_name
    referral.order_subtotal = attribution.subtotal
    referral.order_total = attribution.total
    referral.currency = attribution.currency


def _paid_at(order: Mapping[str, t.Any], now: dt.datetime) -> dt.datetime:
    """Return when the order was paid for the campaign's schedule: ``processed_at`` if recent, else now.

    Shopify redelivers for about two days, so an older ``processed_at`` is not this payment's time
    (it is a replayed or hand-made payload) and must not pull the order out of the campaign.
    """
    processed = parse_datetime(order.get("processed_at"))
    if processed is None or abs(now - processed) > dt.timedelta(days=3):
        return now
    return processed


def _presentment(order: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Return ``{"presentment": {currency, rate}}`` when the customer paid in another currency than the shop's.

    Refund transactions come in the customer's currency; the rate (shop money per unit of the customer's,
    from the order's own money pairs) lets a refund be compared with the shop-currency subtotal.
    """
    presented = order.get("presentment_currency")
    if not isinstance(presented, str) or not presented or presented == order.get("currency"):
        return {}
    for key in ("subtotal_price_set", "total_price_set"):
        pair = order.get(key)
        if not isinstance(pair, Mapping):
            continue
        shop_money, customer_money = pair.get("shop_money"), pair.get("presentment_money")
        if not isinstance(shop_money, Mapping) or not isinstance(customer_money, Mapping):
            continue
        amount, foreign = money(shop_money.get("amount")), money(customer_money.get("amount"))
        if amount and foreign and amount > 0 and foreign > 0:
            rate = (amount / foreign).quantize(Decimal("0.0000000001"))
            return {"presentment": {"currency": presented[:3], "rate": str(rate)}}
    return {"presentment": {"currency": presented[:3]}}


def _orders_count(order: Mapping[str, t.Any]) -> int | None:
    """Return ``customer.orders_count`` when an older payload carries it."""
    customer = order.get("customer")
    if isinstance(customer, Mapping):
        value = customer.get("orders_count")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _str(value: t.Any, limit: int) -> str | None:
    """Return a string cut to ``limit``, or None."""
    return str(value)[:limit] if isinstance(value, str | int) and not isinstance(value, bool) else None
