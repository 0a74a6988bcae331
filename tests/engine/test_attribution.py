"""Attribution sources, in their order: discount code, cart attribute, ``?ref=`` landing, pending referral."""

from __future__ import annotations

from decimal import Decimal

import pytest

from referral_plugin.extensions import db
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.referrals.attribution import attribute_order
from referral_plugin.referrals.invitations import invite
from tests.engine.conftest import Store
from tests.engine.conftest import order_payload


def _decision(store: Store) -> OrderAttribution:
    db.session.expire_all()
    return db.session.query(OrderAttribution).one()


@pytest.mark.parametrize("name", ["referral_code", "ref", "Referral_Code"])
def test_cart_attribute_attributes_the_order(store: Store, name: str) -> None:
    """A ``referral_code`` (or ``ref``) cart attribute in ``note_attributes`` ties the order to its advocate."""
    advocate, friend = store.register(), store.register()
    code = store.code_of(advocate)
    store.pay(order_payload(friend, note_attributes=[{"name": "gift", "value": "no"},
                                                     {"name": name, "value": code.lower()}]))
    decision = _decision(store)
    assert (decision.source, decision.decision) == ("cart_attribute", "qualified")
    assert store.balance(advocate) == 100


@pytest.mark.parametrize("landing", ["/?ref={code}", "https://test-shop.myshopify.com/products/x?utm=a&ref={code}"])
def test_landing_site_ref_attributes_the_order(store: Store, landing: str) -> None:
    """``?ref=`` in the order's ``landing_site`` ties the order to the advocate."""
    advocate, friend = store.register(), store.register()
    store.pay(order_payload(friend, landing_site=landing.format(code=store.code_of(advocate))))
    decision = _decision(store)
    assert (decision.source, decision.reason) == ("landing_site", "QUALIFIED")
    assert decision.evidence is not None and "landing_site" in decision.evidence


def test_pending_referral_attributes_an_order_without_a_code(store: Store) -> None:
    """A friend bound at registration (invitation) is attributed without any code on the order."""
    advocate = store.register()
    invite(store.shop, store.customer(advocate), "email", "bound@example.com", source="test")
    db.session.commit()
    friend = store.register(email="bound@example.com")
    store.pay(order_payload(friend))
    decision = _decision(store)
    assert (decision.source, decision.decision) == ("pending_referral", "qualified")
    assert decision.referral_id == db.session.query(Referral).one().id


def test_discount_code_wins_over_other_evidence(store: Store) -> None:
    """When several sources disagree, the discount code decides; the order is attributed once."""
    first, second, friend = store.register(), store.register(), store.register()
    store.pay(order_payload(friend, code=store.code_of(first).lower(),
                            note_attributes=[{"name": "ref", "value": store.code_of(second)}],
                            landing_site=f"/?ref={store.code_of(second)}"))
    decision = _decision(store)
    assert decision.source == "discount_code"
    assert decision.advocate_id == store.customer(first).id
    assert (store.balance(first), store.balance(second)) == (100, 0)


def test_order_without_evidence_records_no_decision(store: Store) -> None:
    """An ordinary order (no code, no referral) leaves no attribution but counts as a paid order."""
    friend = store.register()
    store.pay(order_payload(friend, note_attributes=[{"name": "ref", "value": "ZZZZ2222"}]))
    assert db.session.query(OrderAttribution).count() == 0
    customer = store.customer(friend)
    assert customer.paid_orders_count == 1 and customer.first_paid_order_id is not None


@pytest.mark.parametrize(("amount", "applied"), [("10", Decimal("10.00")), ("1e15", None), ("NaN", None)])
def test_discount_code_amount_is_read_as_money(store: Store, amount: str, applied: Decimal | None) -> None:
    """The code's checkout discount is read like every order amount: cents, and None when it fits no money column."""
    advocate, friend = store.register(), store.register()
    order = order_payload(friend, code=store.code_of(advocate))
    order["discount_codes"][0]["amount"] = amount
    found = attribute_order(store.shop, order, None)
    assert found is not None and found.source == "discount_code"
    assert found.applied_amount == applied
