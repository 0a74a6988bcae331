"""The Talon.One flow of seed 002, end to end through signed webhooks."""

from __future__ import annotations

from referral_plugin.extensions import db
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import ReferralStatus
from tests.engine.conftest import Store
from tests.engine.conftest import order_payload


def test_registered_customer_gets_code_and_friend_order_rewards_both(store: Store) -> None:
    """A customer registers and gets a code; a friend's first paid order with it earns 100 and 50 points."""
    advocate = store.register()
    code = store.code_of(advocate)
    friend = store.register()

    store.pay(order_payload(friend, code=code))

    assert store.balance(advocate) == 100
    assert store.balance(friend) == 50
    referral = db.session.query(Referral).one()
    assert referral.status == ReferralStatus.REWARDED
    assert referral.reason == "QUALIFIED"
    attribution = db.session.query(OrderAttribution).one()
    assert (attribution.decision, attribution.source) == ("qualified", "discount_code")
    grants = db.session.query(LedgerEntry).filter_by(entry_type=EntryType.GRANT).all()
    assert sorted(g.idempotency_key.rsplit(":", 1)[1] for g in grants) == ["advocate", "friend"]


def test_seed_flow_with_shopifys_unchanged_samples(store: Store) -> None:
    """Shopify's own samples, changed only where they must be (test flag, code), run the seed-002 flow."""
    from tests.shopify_actions import load_payload

    advocate = load_payload("customers_create")
    store.send("customers/create", advocate)
    code = store.code_of(advocate)
    order = load_payload("orders_paid")
    order["test"] = False
    order["discount_codes"] = [{"code": code, "amount": "10.00", "type": "fixed_amount"}]
    store.pay(order)
    friend = order["customer"]
    assert (store.balance(advocate), store.balance(friend)) == (100, 50)

    refund = load_payload("refunds_create")  # refunds 85.00 of the 404.95 subtotal: 20.99%
    store.send("refunds/create", refund)
    assert (store.balance(advocate), store.balance(friend)) == (80, 40)
    store.send("orders/cancelled", load_payload("orders_cancelled") | {"test": False})
    assert (store.balance(advocate), store.balance(friend)) == (0, 0)
    assert db.session.query(Referral).one().status == ReferralStatus.REVERSED
