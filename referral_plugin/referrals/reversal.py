"""Reversals: a cancelled or refunded order takes back what it earned, once, and never more than that.

* ``orders/cancelled`` and a full refund reverse every reward of the order (unused discount codes
  are deactivated in Shopify by JOBS); held rewards are voided so they never release.
* A partial refund reverses the refunded share of the points: ``floor(points x refunded / subtotal)``
  over all the order's refunds so far, keyed per refund id so a repeat is a no-op.
* A cancellation that arrives before ``orders/paid`` leaves a tombstone decision
  (``ORDER_CANCELLED``), so the late ``orders/paid`` finds the order decided and earns nothing.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from collections.abc import Mapping
from decimal import ROUND_FLOOR
from decimal import Decimal

from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Customer
from referral_plugin.models import OrderAttribution
from referral_plugin.models import PaidOrder
from referral_plugin.models import Referral
from referral_plugin.models import ReferralStatus
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.referrals import jobs_bridge
from referral_plugin.referrals import ledger
from referral_plugin.referrals._db import exists_or_waits
from referral_plugin.referrals._db import insert_once
from referral_plugin.referrals._db import lock_for_turns
from referral_plugin.referrals.attribution import attribute_order
from referral_plugin.referrals.customers import get_customer
from referral_plugin.referrals.customers import money
from referral_plugin.referrals.customers import shopify_id
from referral_plugin.referrals.orders import existing_attribution
from referral_plugin.referrals.orders import order_id_of
from referral_plugin.referrals.qualification import REJECTED
from referral_plugin.referrals.reasons import Reason


def process_cancelled_order(shop: Shop, order: Mapping[str, t.Any]) -> None:
    """Handle ``orders/cancelled``: reverse the order's rewards, or leave a tombstone when it was never paid."""
    order_id = order_id_of(order)
    if order_id is None:
        return
    attribution = existing_attribution(shop, order_id)
    if attribution is None:
        _tombstone(shop, order, order_id)
        return
    reverse_order(shop, attribution, reason=Reason.ORDER_CANCELLED, key=f"cancel:{order_id}")


def process_refund(shop: Shop, refund: Mapping[str, t.Any]) -> None:
    """Handle ``refunds/create``: reverse the refunded share of the order's points (all of it when fully refunded).

    A refund of an order not paid yet as far as we know (its ``orders/paid`` failed and waits for Shopify's
    retry) is remembered, and applied when the payment is recorded (:func:`apply_early_refunds`).
    """
    order_id = order_id_of(refund, "order_id")
    refund_id = order_id_of(refund)
    if order_id is None or refund_id is None:
        return
    attribution = existing_attribution(shop, order_id)
    if attribution is None:
        if refunded_amount(refund) <= 0:
            return
        if not _order_seen_paid(shop, order_id):
            _remember_early_refund(shop, order_id, refund_id, refund)
            return
        # Paid after all: its orders/paid was being recorded while we looked, and may have been decided.
        attribution = existing_attribution(shop, order_id)
        if attribution is None:
            return
    refunded = refunded_amount(refund, **money_context(attribution))
    if refunded > 0:
        apply_refund(shop, attribution, refund_id, refunded)


def apply_early_refunds(shop: Shop, attribution: OrderAttribution) -> None:
    """Apply the refunds of an order that arrived before its payment was recorded (each once, by refund id)."""
    since = utcnow() - EARLY_REFUND_WINDOW
    wanted = str(attribution.shopify_order_id)
    for event in db.session.scalars(select(AuditEvent).where(
            AuditEvent.shop_id == shop.id, AuditEvent.created_at >= since,
            AuditEvent.action == EARLY_REFUND_ACTION).order_by(AuditEvent.id)):
        details = event.details or {}
        if details.get("order") != wanted or not isinstance(details.get("refund_payload"), Mapping):
            continue
        refund_id = shopify_id(details.get("refund"))
        refunded = refunded_amount(details["refund_payload"], **money_context(attribution))
        if refund_id is not None and refunded > 0:
            apply_refund(shop, attribution, refund_id, refunded)


def apply_refund(shop: Shop, attribution: OrderAttribution, refund_id: int, refunded: Decimal) -> None:
    """Reverse what one refund of ``refunded`` takes back of a decided order (a repeat of the refund is a no-op)."""
    order_id = attribution.shopify_order_id
    if attribution.referral_id is None:
        return
    referral = _lock_referral(attribution.referral_id)
    if referral is None:
        return
    evidence = dict(referral.evidence or {})
    refunds = dict(evidence.get("refunds") or {})
    refunds[str(refund_id)] = str(refunded)
    evidence["refunds"] = refunds
    referral.evidence = evidence
    total_refunded = sum((Decimal(v) for v in refunds.values()), Decimal(0))
    base = attribution.subtotal if attribution.subtotal and attribution.subtotal > 0 else attribution.total
    if base is None or base <= 0 or total_refunded >= base:
        reverse_order(shop, attribution, reason=Reason.ORDER_REFUNDED, key=f"refund-full:{refund_id}",
                      refund_id=refund_id)
        return
    share = total_refunded / base
    for entry in ledger.earning_entries(shop.id, order_id):
        if entry.reward_kind != RewardKind.POINTS or entry.points <= 0:
            continue
        target = int((Decimal(entry.points) * share).to_integral_value(rounding=ROUND_FLOOR))
        left, _ = ledger.remaining(entry)
        already = entry.points - left
        take = min(target - already, left)
        if take > 0:
            ledger.reverse_entry(entry, points=take, amount=Decimal(0), key=f"reversal:refund:{refund_id}:{entry.id}",
                                 reason=Reason.PARTIAL_REFUND, refund_id=refund_id)
    for hold in ledger.open_holds_for_order(shop.id, order_id):
        if hold.reward_kind != RewardKind.POINTS or hold.points <= 0:
            continue
        target = int((Decimal(hold.points) * share).to_integral_value(rounding=ROUND_FLOOR))
        left, _ = ledger.hold_remaining(hold)
        take = min(target - (hold.points - left), left)
        if take > 0:
            ledger.void_hold(hold, key=f"void:refund:{refund_id}:{hold.id}", reason=Reason.PARTIAL_REFUND,
                             points=take, amount=Decimal(0), refund_id=refund_id)
    if referral.status in (ReferralStatus.REWARDED, ReferralStatus.HELD, ReferralStatus.PARTIALLY_REVERSED) \
            and _anything_reversed(shop, order_id):
        if referral.status != ReferralStatus.HELD:
            referral.status = ReferralStatus.PARTIALLY_REVERSED
        referral.reason = Reason.PARTIAL_REFUND if referral.status != ReferralStatus.HELD else referral.reason
    db.session.flush()


def reverse_order(shop: Shop, attribution: OrderAttribution, *, reason: Reason, key: str,
                  refund_id: int | None = None) -> None:
    """Take back everything an order still holds: REVERSAL rows for grants, VOID rows for holds."""
    order_id = attribution.shopify_order_id
    referral = _lock_referral(attribution.referral_id) if attribution.referral_id else None
    for entry in ledger.earning_entries(shop.id, order_id):
        points, amount = ledger.remaining(entry)
        if points <= 0 and amount <= 0:
            continue
        reversal = ledger.reverse_entry(entry, points=max(points, 0), amount=max(amount, Decimal(0)),
                                        key=f"reversal:{key}:{entry.id}", reason=reason, refund_id=refund_id)
        if reversal is not None and entry.reward_kind != RewardKind.POINTS \
                and entry.reason != Reason.APPLIED_AT_CHECKOUT:
            # The advocate's (or friend's) own reward code: deactivate it in Shopify if still unused.
            jobs_bridge.schedule_discount_deactivation(entry.id)
    for hold in ledger.open_holds_for_order(shop.id, order_id):
        ledger.void_hold(hold, key=f"void:{key}:{hold.id}", reason=reason, refund_id=refund_id)
    if referral is not None and referral.status in (
            ReferralStatus.REWARDED, ReferralStatus.HELD, ReferralStatus.PARTIALLY_REVERSED):
        referral.status = ReferralStatus.REVERSED
        referral.reason = reason
        referral.decided_at = utcnow()
        referral.hold_until = None
    db.session.flush()


def money_context(attribution: OrderAttribution) -> dict[str, t.Any]:
    """Return what converts a refund into the order's shop money: its currency and the presentment rate."""
    presented = (attribution.evidence or {}).get("presentment")
    rate = money(presented.get("rate")) if isinstance(presented, Mapping) else None
    return {"shop_currency": attribution.currency, "rate": rate if rate is not None and rate > 0 else None}


def refunded_amount(refund: Mapping[str, t.Any], *, shop_currency: str | None = None,
                    rate: Decimal | None = None) -> Decimal:
    """Return the shop money a refund gave back: successful ``refund`` transactions, else the refunded line items.

    A transaction in the customer's (presentment) currency is converted at the order's own rate
    (``rate``: shop money per unit of presentment money); without that rate the refunded line items'
    shop money is used instead, never a foreign amount compared with a shop-currency subtotal.
    """
    total = Decimal(0)
    transactions = refund.get("transactions")
    seen = foreign = False
    if isinstance(transactions, list):
        for tx in transactions:
            if not isinstance(tx, Mapping):
                continue
            if tx.get("kind") == "refund" and tx.get("status") == "success":
                amount = money(tx.get("amount"))
                if amount is None or amount <= 0:
                    continue
                currency = tx.get("currency")
                if shop_currency and isinstance(currency, str) and currency.strip() \
                        and currency.strip().upper() != shop_currency.upper():
                    if rate is None:
                        foreign = True
                        continue
                    amount = (amount * rate).quantize(Decimal("0.01"))
                total += amount
                seen = True
    if seen and not foreign:
        return total
    total = Decimal(0)
    for item in _list(refund.get("refund_line_items")):
        if isinstance(item, Mapping):
            amount = _shop_money(item.get("subtotal_set"))
            if amount is None and not foreign:
                amount = money(item.get("subtotal"))
            if amount is not None and amount > 0:
                total += amount
    return total


def _shop_money(money_set: t.Any) -> Decimal | None:
    """Return the ``shop_money`` amount of a Shopify money pair, or None."""
    if isinstance(money_set, Mapping) and isinstance(money_set.get("shop_money"), Mapping):
        return money(money_set["shop_money"].get("amount"))
    return None


#: How long a refund that overtook its order's payment is remembered: Shopify retries a delivery for 48 hours.
EARLY_REFUND_WINDOW = dt.timedelta(days=4)
EARLY_REFUND_ACTION = "order.refund_before_paid"


def _order_seen_paid(shop: Shop, order_id: int) -> bool:
    """Tell whether ``orders/paid`` of this order was recorded (a test order that earns nothing is not).

    Waits for an ``orders/paid`` of the order being recorded at this moment, whose decision a plain read
    could not see yet: the refund would be remembered after that payment had looked for early refunds.
    """
    return exists_or_waits(PaidOrder(shop_id=shop.id, shopify_order_id=order_id))


def _remember_early_refund(shop: Shop, order_id: int, refund_id: int, refund: Mapping[str, t.Any]) -> None:
    """Keep a refund of an order whose payment has not been recorded, for :func:`apply_early_refunds`.

    An audit event (not a ledger row: most such refunds are of orders paid before the app was installed,
    which never earn anything), found again by the shop's recent events. It keeps the refund's money only
    (no customer data), converted to shop money once the order's currency is known.
    """
    transactions = [{key: tx.get(key) for key in ("kind", "status", "amount", "currency")}
                    for tx in _list(refund.get("transactions")) if isinstance(tx, Mapping)]
    items = [{key: item.get(key) for key in ("subtotal", "subtotal_set")}
             for item in _list(refund.get("refund_line_items")) if isinstance(item, Mapping)]
    db.session.add(AuditEvent(shop_id=shop.id, actor="shopify", action=EARLY_REFUND_ACTION, subject_type="order",
                              details={"order": str(order_id), "refund": str(refund_id),
                                       "refund_payload": {"transactions": transactions, "refund_line_items": items}}))
    db.session.flush()


def _list(value: t.Any) -> list[t.Any]:
    return value if isinstance(value, list) else []


def _tombstone(shop: Shop, order: Mapping[str, t.Any], order_id: int) -> None:
    """Decide a cancelled, never-paid order up front so a late ``orders/paid`` earns nothing."""
    friend = None
    customer = order.get("customer")
    if isinstance(customer, Mapping):
        friend = get_customer(shop, customer.get("id"))
    found = attribute_order(shop, order, friend)
    if found is None:
        return  # no referral evidence: the late orders/paid has nothing to attribute either
    advocate_id: int | None = None
    if found.referral is not None:
        advocate_id = found.referral.advocate_id
    elif found.code is not None:
        advocate_id = found.code.customer_id
    name, currency = order.get("name"), order.get("currency")
    tombstone = insert_once(OrderAttribution(
        shop_id=shop.id, shopify_order_id=order_id,
        order_name=name[:64] if isinstance(name, str) else None,
        referral_code_id=found.code.id if found.code is not None else None,
        advocate_id=advocate_id, friend_id=friend.id if isinstance(friend, Customer) else None,
        source=found.source, decision=REJECTED, reason=Reason.ORDER_CANCELLED,
        evidence={"cancelled_before_paid": True, **found.evidence},
        subtotal=money(order.get("subtotal_price")), total=money(order.get("total_price")),
        currency=currency[:3] if isinstance(currency, str) else None,
        test=bool(order.get("test")),
    ))
    if not tombstone:
        # The payment was decided meanwhile (on PostgreSQL the insert waited for that transaction): take
        # back what it earned, as if the cancellation had come second.
        decided = existing_attribution(shop, order_id)
        if decided is not None:
            reverse_order(shop, decided, reason=Reason.ORDER_CANCELLED, key=f"cancel:{order_id}")


def _lock_referral(referral_id: int | None) -> Referral | None:
    """Return the referral locked for update (PostgreSQL), so concurrent refunds of one order take turns."""
    if referral_id is None:
        return None
    return lock_for_turns(Referral, referral_id)


def _anything_reversed(shop: Shop, order_id: int) -> bool:
    """Tell whether any of the order's rewards was reversed or voided."""
    for entry in ledger.earning_entries(shop.id, order_id):
        points, amount = ledger.remaining(entry)
        if points < entry.points or amount < entry.amount:
            return True
    for hold in ledger.open_holds_for_order(shop.id, order_id):
        points, amount = ledger.hold_remaining(hold)
        if points < hold.points or amount < hold.amount:
            return True
    return False
