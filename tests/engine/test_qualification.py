"""Qualification: every rule and its reason code, stored on the decision and on the referral."""

from __future__ import annotations

import typing as t

import pytest

from referral_plugin.extensions import db
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.campaigns import update_campaign
from referral_plugin.referrals.invitations import invite
from referral_plugin.referrals.reasons import DESCRIPTIONS
from referral_plugin.referrals.reasons import Reason
from tests.engine.conftest import Store
from tests.engine.conftest import order_payload


def _only_decision() -> OrderAttribution:
    db.session.expire_all()
    return db.session.query(OrderAttribution).one()


def _assert_nothing_granted(store: Store, *customers: dict[str, t.Any]) -> None:
    for customer in customers:
        assert store.balance(customer) == 0
    assert db.session.query(LedgerEntry).count() == 0


def test_every_reason_has_a_description() -> None:
    """The vocabulary documents every code it defines."""
    assert set(DESCRIPTIONS) == set(Reason)
    assert all(text.endswith(".") for text in DESCRIPTIONS.values())


def test_paused_campaign_rejects_campaign_inactive(store: Store) -> None:
    """A paused campaign rewards nothing: CAMPAIGN_INACTIVE on the decision and the referral."""
    advocate, friend = store.register(), store.register()
    update_campaign(ensure_default_campaign(store.shop), {"status": "paused"}, actor="merchant")
    db.session.commit()
    store.pay(order_payload(friend, code=store.code_of(advocate)))
    decision = _only_decision()
    assert (decision.decision, decision.reason) == ("rejected", "CAMPAIGN_INACTIVE")
    assert db.session.query(Referral).one().reason == "CAMPAIGN_INACTIVE"
    _assert_nothing_granted(store, advocate, friend)


def test_test_order_earns_nothing_and_keeps_the_first_order(store: Store) -> None:
    """A ``test: true`` order is rejected TEST_ORDER and does not use up the friend's first order."""
    advocate, friend = store.register(), store.register()
    code = store.code_of(advocate)
    store.pay(order_payload(friend, code=code, test=True))
    assert (_only_decision().reason, store.balance(advocate)) == ("TEST_ORDER", 0)
    store.pay(order_payload(friend, code=code))
    assert (store.balance(advocate), store.balance(friend)) == (100, 50)


@pytest.fixture
def rewarding_test_orders(app_config: dict[str, t.Any]) -> None:
    """Turn REWARD_TEST_ORDERS on before the app is built."""
    app_config["REWARD_TEST_ORDERS"] = "true"


def test_reward_test_orders_config_rewards_test_orders(rewarding_test_orders: None, store: Store) -> None:
    """With REWARD_TEST_ORDERS on, a test order earns like a real one."""
    advocate, friend = store.register(), store.register()
    store.pay(order_payload(friend, code=store.code_of(advocate), test=True))
    assert (_only_decision().reason, store.balance(advocate)) == ("QUALIFIED", 100)


def test_shop_setting_overrides_the_config_for_test_orders(store: Store) -> None:
    """The shop's own ``reward_test_orders`` setting wins over the app's default."""
    store.shop.reward_test_orders = True
    db.session.commit()
    advocate, friend = store.register(), store.register()
    store.pay(order_payload(friend, code=store.code_of(advocate), test=True))
    assert store.balance(friend) == 50


@pytest.mark.parametrize(("friend_fields", "match"), [
    ({"email": "Owner.Name+deal@googlemail.com"}, "email"),
    ({"phone": "+1 415 555 2671"}, "phone"),
    ({"default_address": {"address1": "9 ELM  street", "zip": "k2p 2l8", "country_code": "CA"}}, "address"),
])
def test_self_referral_by_another_account_is_caught(store: Store, friend_fields: dict[str, t.Any],
                                                    match: str) -> None:
    """A second account with the advocate's canonical email, phone or address is SELF_REFERRAL, saying which."""
    advocate = store.register(email="ownername@gmail.com", phone="+14155552671",
                              default_address={"address1": "9 Elm Street", "zip": "K2P 2L8", "country_code": "CA"})
    friend = store.register(**friend_fields)
    order = order_payload(friend, code=store.code_of(advocate))
    order["shipping_address"] = friend_fields.get("default_address") or order["shipping_address"]
    store.pay(order)
    decision = _only_decision()
    assert (decision.reason, (decision.evidence or {}).get("match")) == ("SELF_REFERRAL", match)
    _assert_nothing_granted(store, advocate, friend)


def test_advocate_using_own_code_is_self_referral(store: Store) -> None:
    """An advocate paying with their own code is SELF_REFERRAL (same customer) and gets no referral row."""
    advocate = store.register()
    store.pay(order_payload(advocate, code=store.code_of(advocate)))
    decision = _only_decision()
    assert (decision.reason, (decision.evidence or {}).get("match")) == ("SELF_REFERRAL", "customer")
    assert db.session.query(Referral).count() == 0
    _assert_nothing_granted(store, advocate)


def test_friend_referred_by_someone_else_is_already_referred(store: Store) -> None:
    """A friend bound to one advocate who pays with another's code earns nobody anything: ALREADY_REFERRED."""
    first, second = store.register(), store.register()
    invite(store.shop, store.customer(first), "email", "taken@example.com", source="test")
    db.session.commit()
    friend = store.register(email="taken@example.com")
    store.pay(order_payload(friend, code=store.code_of(second)))
    decision = _only_decision()
    assert (decision.reason, decision.advocate_id) == ("ALREADY_REFERRED", store.customer(second).id)
    assert db.session.query(Referral).one().status == "pending"
    _assert_nothing_granted(store, first, second, friend)


def test_second_order_is_not_first_order(store: Store) -> None:
    """A friend who already paid an order earns nothing with a code on a later one: NOT_FIRST_ORDER."""
    advocate, friend = store.register(), store.register()
    store.pay(order_payload(friend))
    store.pay(order_payload(friend, code=store.code_of(advocate)))
    decision = _only_decision()
    assert decision.reason == "NOT_FIRST_ORDER"
    assert store.customer(friend).paid_orders_count == 2
    _assert_nothing_granted(store, advocate, friend)


def test_existing_customer_is_not_new_when_the_campaign_says_so(store: Store) -> None:
    """With new-customers-only, a friend who was a customer before the advocate's code is NOT_NEW_CUSTOMER."""
    update_campaign(ensure_default_campaign(store.shop), {"new_customers_only": True}, actor="merchant")
    db.session.commit()
    friend = store.register()
    advocate = store.register()
    store.pay(order_payload(friend, code=store.code_of(advocate)))
    assert _only_decision().reason == "NOT_NEW_CUSTOMER"
    _assert_nothing_granted(store, advocate, friend)


def test_new_customers_only_still_rewards_a_new_friend(store: Store) -> None:
    """With new-customers-only, a friend who registers after the advocate is rewarded."""
    update_campaign(ensure_default_campaign(store.shop), {"new_customers_only": True}, actor="merchant")
    db.session.commit()
    advocate = store.register()
    friend = store.register()
    store.pay(order_payload(friend, code=store.code_of(advocate)))
    assert _only_decision().reason == "QUALIFIED"


def test_subtotal_below_minimum_is_rejected(store: Store) -> None:
    """An order whose subtotal is under the campaign's minimum is BELOW_MINIMUM, with both amounts kept."""
    update_campaign(ensure_default_campaign(store.shop), {"min_order_subtotal": "500"}, actor="merchant")
    db.session.commit()
    advocate, friend = store.register(), store.register()
    store.pay(order_payload(friend, code=store.code_of(advocate), subtotal_price="404.95"))
    decision = _only_decision()
    assert decision.reason == "BELOW_MINIMUM"
    assert decision.evidence is not None
    assert (decision.evidence["subtotal"], decision.evidence["minimum"]) == ("404.95", "500.00")
    _assert_nothing_granted(store, advocate, friend)


def test_advocate_cap_stops_rewards(store: Store) -> None:
    """Past the campaign's cap of rewarded referrals, the advocate's next referral is CAP_REACHED."""
    update_campaign(ensure_default_campaign(store.shop), {"advocate_cap": 1}, actor="merchant")
    db.session.commit()
    advocate = store.register()
    code = store.code_of(advocate)
    first, second = store.register(), store.register()
    store.pay(order_payload(first, code=code))
    store.pay(order_payload(second, code=code))
    reasons = sorted(r for (r,) in db.session.query(OrderAttribution.reason))
    assert reasons == ["CAP_REACHED", "QUALIFIED"]
    assert (store.balance(advocate), store.balance(first), store.balance(second)) == (100, 50, 0)


def test_guest_checkout_is_recorded_without_reward(store: Store) -> None:
    """An order without a customer is GUEST_CHECKOUT; the advocate sees the referral and why."""
    advocate = store.register()
    store.pay(order_payload(None, code=store.code_of(advocate)))
    decision = _only_decision()
    assert (decision.reason, decision.friend_id) == ("GUEST_CHECKOUT", None)
    referral = db.session.query(Referral).one()
    assert (referral.status, referral.reason, referral.friend_id) == ("rejected", "GUEST_CHECKOUT", None)
    _assert_nothing_granted(store, advocate)
