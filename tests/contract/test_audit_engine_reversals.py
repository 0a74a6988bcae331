"""Audit, from outside: reversals, redelivery, concurrency, several campaigns, rounding and erasure mid-story.

Every story ends with the merchant's numbers (summary, exports, Joy) checked against the ledger.
"""

from __future__ import annotations

import datetime as dt
import threading
import typing as t

import pytest
from flask import Flask

from referral_plugin.extensions import db
from referral_plugin.models import EntryType
from tests.conftest import run_at_once
from tests.contract.conftest import Integrator
from tests.contract.engine_story import Merchant
from tests.contract.engine_story import Store
from tests.contract.engine_story import balance
from tests.contract.engine_story import cancellation
from tests.contract.engine_story import customer
from tests.contract.engine_story import default_token
from tests.contract.engine_story import ledger_rows
from tests.contract.engine_story import net_points
from tests.contract.engine_story import order
from tests.contract.engine_story import reconcile
from tests.contract.engine_story import refund
from tests.shopify_actions import ShopifyActions


def _referred(store: Store, integrator: Integrator, advocate: int, friend: int, **kwargs: t.Any) -> dict[str, t.Any]:
    """Register an advocate and a friend and return the friend's first order with the code (not yet paid)."""
    store.register(advocate, f"adv{advocate}@example.com")
    code = integrator.code_of(f"adv{advocate}@example.com")
    return order(store.register(friend, f"friend{friend}@example.com"), code=code, **kwargs)


def test_partial_refunds_twice_then_the_rest(store: Store, merchant: Merchant, integrator: Integrator) -> None:
    """Refunds of a third, redelivered, then the rest: floor of each running share, and everything at the end."""
    paid = _referred(store, integrator, 201, 202, subtotal="90.00")
    store.pay(paid)
    first = refund(paid, "30.00")
    store.send("refunds/create", first)
    store.send("refunds/create", first)  # the same refund under a new webhook id
    assert (balance(integrator, 201), balance(integrator, 202)) == (67, 34)  # 33.3 and 16.6 taken, floored
    reconcile(merchant, integrator, [201, 202])
    store.send("refunds/create", refund(paid, "30.00"))
    assert (balance(integrator, 201), balance(integrator, 202)) == (34, 17)  # 66.6 and 33.3 taken, floored
    store.send("refunds/create", refund(paid, "30.00"))
    assert (balance(integrator, 201), balance(integrator, 202)) == (0, 0)
    store.send("orders/cancelled", cancellation(paid))
    assert (balance(integrator, 201), balance(integrator, 202)) == (0, 0)
    summary = reconcile(merchant, integrator, [201, 202])
    assert summary["pointsAwarded"] == 0
    (row,) = merchant.export("referrals")
    assert row["status"] == "reversed"


def test_cancellation_after_a_partial_refund_takes_the_rest(store: Store, merchant: Merchant,
                                                            integrator: Integrator) -> None:
    """A cancellation after a partial refund takes back only what is left, once."""
    paid = _referred(store, integrator, 211, 212)
    store.pay(paid)
    store.send("refunds/create", refund(paid, "25.00"))
    assert (balance(integrator, 211), balance(integrator, 212)) == (75, 38)
    store.send("orders/cancelled", cancellation(paid))
    store.send("orders/cancelled", cancellation(paid))
    assert (balance(integrator, 211), balance(integrator, 212)) == (0, 0)
    reversed_points = sorted(r.points for r in ledger_rows() if r.entry_type == EntryType.REVERSAL)
    assert reversed_points == [-75, -38, -25, -12]
    reconcile(merchant, integrator, [211, 212])


def test_order_paid_again_after_cancellation_earns_nothing(store: Store, merchant: Merchant,
                                                          integrator: Integrator) -> None:
    """A late redelivery of ``orders/paid`` after the cancellation does not grant again."""
    paid = _referred(store, integrator, 221, 222)
    store.pay(paid)
    store.send("orders/cancelled", cancellation(paid))
    store.pay(paid)
    assert (balance(integrator, 221), balance(integrator, 222)) == (0, 0)
    summary = reconcile(merchant, integrator, [221, 222])
    assert summary["pointsAwarded"] == 0


def test_cancellation_before_paid_earns_nothing(store: Store, merchant: Merchant, integrator: Integrator) -> None:
    """``orders/cancelled`` overtaking ``orders/paid``: the payment earns nothing and the friend keeps nothing."""
    paid = _referred(store, integrator, 231, 232)
    store.send("orders/cancelled", cancellation(paid))
    store.pay(paid)
    assert (balance(integrator, 231), balance(integrator, 232)) == (0, 0)
    summary = reconcile(merchant, integrator, [231, 232])
    assert summary["referredOrders"] == 0


@pytest.mark.parametrize(("amount", "left"), [("100.00", (0, 0)), ("40.00", (60, 30))])
def test_refund_delivered_before_the_payment_still_counts(amount: str, left: tuple[int, int], store: Store,
                                                          merchant: Merchant, integrator: Integrator) -> None:
    """A ``refunds/create`` that overtakes ``orders/paid`` (a failed delivery retried later) is not lost."""
    paid = _referred(store, integrator, 241, 242)
    store.send("refunds/create", refund(paid, amount))
    store.pay(paid)
    store.pay(paid)
    assert (balance(integrator, 241), balance(integrator, 242)) == left
    reconcile(merchant, integrator, [241, 242])


def test_twenty_concurrent_deliveries_of_one_order_grant_once(app: Flask, store: Store, merchant: Merchant,
                                                              integrator: Integrator) -> None:
    """Twenty deliveries of one order at once, each with its own webhook id, grant each side once.

    A delivery that loses a database race may answer 5xx: Shopify retries it, and the retry changes nothing.
    """
    paid = _referred(store, integrator, 251, 252)
    db.session.commit()
    barrier = threading.Barrier(20)
    statuses: dict[int, int] = {}

    def deliver(n: int) -> None:
        shopify = ShopifyActions(app.test_client())
        barrier.wait()
        statuses[n] = shopify.post_webhook("orders/paid", paid, webhook_id=f"concurrent-{n}").status_code

    run_at_once(deliver, [(n,) for n in range(20)])
    assert len(statuses) == 20
    for n, status in sorted(statuses.items()):
        if status != 200:  # Shopify's retry of that delivery
            store.pay(paid, webhook_id=f"concurrent-{n}")
    assert sum(1 for s in statuses.values() if s == 200) >= 1
    assert (balance(integrator, 251), balance(integrator, 252)) == (100, 50)
    grants = [(r.side, r.points) for r in ledger_rows() if r.entry_type == EntryType.GRANT]
    assert sorted(grants) == [("advocate", 100), ("friend", 50)]
    summary = reconcile(merchant, integrator, [251, 252])
    assert summary["referredOrders"] == 1


def test_concurrent_partial_refunds_reverse_their_sum(app: Flask, store: Store, merchant: Merchant,
                                                      integrator: Integrator) -> None:
    """Four different partial refunds of one order at once reverse exactly their combined share."""
    paid = _referred(store, integrator, 261, 262)
    store.pay(paid)
    refunds = [refund(paid, "10.00") for _ in range(4)]
    db.session.commit()
    barrier = threading.Barrier(4)
    statuses: dict[int, int] = {}

    def deliver(n: int) -> None:
        shopify = ShopifyActions(app.test_client())
        barrier.wait()
        statuses[n] = shopify.post_webhook("refunds/create", refunds[n], webhook_id=f"refund-{n}").status_code

    run_at_once(deliver, [(n,) for n in range(4)])
    for n, status in sorted(statuses.items()):
        if status != 200:
            store.send("refunds/create", refunds[n], webhook_id=f"refund-{n}")
    assert (balance(integrator, 261), balance(integrator, 262)) == (60, 30)
    reconcile(merchant, integrator, [261, 262])


def test_several_campaigns_reward_by_their_own_terms(store: Store, merchant: Merchant,
                                                     integrator: Integrator) -> None:
    """A second campaign's code pays that campaign's rewards, under its own cap; the default is untouched."""
    merchant.create(name="VIP", advocate_reward_kind="points", advocate_reward_value="300",
                    friend_reward_kind="points", friend_reward_value="20", advocate_cap="1")
    vip = next(c for c in integrator.get("/api/v1/campaigns").get_json()["data"] if c["name"] == "VIP")
    store.register(271, "multi@example.com")
    default_code = integrator.code_of("multi@example.com")
    answer = integrator.post("/rest_api/v2/referrals/invitations", json={"email": "multi@example.com",
                                                                        "campaignToken": vip["token"]})
    vip_code = answer.get_json()["data"]["referralCode"]
    assert vip_code != default_code
    store.pay(order(store.register(272, "a272@example.com"), code=vip_code))
    store.pay(order(store.register(273, "a273@example.com"), code=default_code))
    store.pay(order(store.register(274, "a274@example.com"), code=vip_code))  # VIP cap of 1 reached
    assert [balance(integrator, c) for c in (271, 272, 273, 274)] == [400, 20, 50, 0]
    reasons = {r["friend_customer_id"]: (r["campaign_id"] != "", r["reason"]) for r in merchant.export("referrals")}
    assert reasons["274"][1] == "CAP_REACHED"
    assert default_token(integrator) != vip["token"]
    reconcile(merchant, integrator, [271, 272, 273, 274])


def test_friend_redacted_between_payment_and_refund(store: Store, merchant: Merchant,
                                                    integrator: Integrator) -> None:
    """``customers/redact`` of the friend mid-story: a later refund still reverses, and totals still agree."""
    paid = _referred(store, integrator, 281, 282)
    store.pay(paid)
    store.send("customers/redact", {"shop_id": 1, "shop_domain": "test-shop.myshopify.com",
                                    "customer": {"id": 282, "email": "friend282@example.com", "phone": None},
                                    "orders_to_redact": [paid["id"]]})
    assert integrator.get("/rest_api/v2/referrals/customers/282/summary").status_code == 404  # erased
    store.send("refunds/create", refund(paid, "50.00"))
    assert (balance(integrator, 281), net_points(282)) == (50, 25)
    store.send("orders/cancelled", cancellation(paid))
    assert (balance(integrator, 281), net_points(282)) == (0, 0)
    reconcile(merchant, integrator, [281])


def test_advocate_redacted_then_code_used(store: Store, merchant: Merchant, integrator: Integrator) -> None:
    """An erased advocate's code earns nothing for anyone afterwards; what was earned before stays counted."""
    store.register(291, "gone@example.com")
    code = integrator.code_of("gone@example.com")
    store.pay(order(store.register(292, "b292@example.com"), code=code))
    store.send("customers/redact", {"shop_id": 1, "shop_domain": "test-shop.myshopify.com",
                                    "customer": {"id": 291, "email": "gone@example.com", "phone": None},
                                    "orders_to_redact": []})
    store.pay(order(store.register(293, "b293@example.com"), code=code))
    assert [net_points(291), balance(integrator, 292), balance(integrator, 293)] == [100, 50, 0]
    (earlier, later) = merchant.export("referrals")
    assert (earlier["status"], later["status"], later["reason"]) == ("rewarded", "rejected", "ADVOCATE_ERASED")
    reconcile(merchant, integrator, [292, 293])


def test_customer_erased_before_paying_is_not_resurrected(store: Store, merchant: Merchant,
                                                          integrator: Integrator) -> None:
    """A friend's first order after their own erasure request still counts once, without undoing the erasure."""
    paid = _referred(store, integrator, 301, 302)
    store.send("customers/redact", {"shop_id": 1, "shop_domain": "test-shop.myshopify.com",
                                    "customer": {"id": 302, "email": "friend302@example.com", "phone": None},
                                    "orders_to_redact": []})
    store.pay(paid)
    assert (balance(integrator, 301), net_points(302)) == (100, 50)
    reconcile(merchant, integrator, [301])
    (row,) = merchant.export("referrals")
    assert row["friend_email"] == ""


def test_fresh_customer_payloads_keep_their_own_ids(shopify: ShopifyActions) -> None:
    """The helpers give each person their own id and address (a guard for the audit's own fixtures)."""
    a, b = customer(1, "a@example.com"), customer(2, "b@example.com")
    assert a["default_address"]["address1"] != b["default_address"]["address1"]


def _presented_in_eur(paid: dict[str, t.Any], shop_amount: str, eur_amount: str) -> dict[str, t.Any]:
    """Make a USD shop's order one the customer paid in EUR (Shopify's ``*_set`` money pairs)."""
    pair = {"shop_money": {"amount": shop_amount, "currency_code": "USD"},
            "presentment_money": {"amount": eur_amount, "currency_code": "EUR"}}
    paid.update(presentment_currency="EUR", subtotal_price_set=pair, total_price_set=pair,
                current_subtotal_price_set=pair, current_total_price_set=pair)
    return paid


def _refund_in_eur(paid: dict[str, t.Any], usd: str, eur: str) -> dict[str, t.Any]:
    """Return a refund of an order paid in EUR: the transaction in EUR, the line item in both moneys."""
    payload = refund(paid, eur)
    payload["transactions"][0]["currency"] = "EUR"
    item = payload["refund_line_items"][0]
    item.update(subtotal=float(usd))
    item["subtotal_set"] = {"shop_money": {"amount": usd, "currency_code": "USD"},
                            "presentment_money": {"amount": eur, "currency_code": "EUR"}}
    return payload


@pytest.mark.parametrize("early", [False, True])
def test_refund_paid_in_another_currency_is_compared_in_the_shops(early: bool, store: Store, merchant: Merchant,
                                                                  integrator: Integrator) -> None:
    """A USD shop's 100.00 order paid as 92.00 EUR: refunding 46 EUR is half, refunding 92 EUR is all of it."""
    paid = _presented_in_eur(_referred(store, integrator, 311, 312), "100.00", "92.00")
    half, rest = _refund_in_eur(paid, "50.00", "46.00"), _refund_in_eur(paid, "50.00", "46.00")
    if early:
        store.send("refunds/create", half)
    store.pay(paid)
    if not early:
        store.send("refunds/create", half)
    assert (balance(integrator, 311), balance(integrator, 312)) == (50, 25)
    store.send("refunds/create", rest)
    assert (balance(integrator, 311), balance(integrator, 312)) == (0, 0)
    reconcile(merchant, integrator, [311, 312])


def test_refund_after_the_cancellation_changes_nothing(store: Store, merchant: Merchant,
                                                       integrator: Integrator) -> None:
    """Shopify's refund that follows a cancellation (both sent for one cancel-and-refund) takes nothing twice."""
    paid = _referred(store, integrator, 321, 322)
    store.pay(paid)
    store.send("orders/cancelled", cancellation(paid))
    store.send("refunds/create", refund(paid, "30.00"))
    store.send("refunds/create", refund(paid, "100.00"))
    assert (balance(integrator, 321), balance(integrator, 322)) == (0, 0)
    reversals = [r.points for r in ledger_rows() if r.entry_type == EntryType.REVERSAL]
    assert sorted(reversals) == [-100, -50]
    (row,) = merchant.export("referrals")
    assert (row["status"], row["reason"]) == ("reversed", "ORDER_CANCELLED")
    reconcile(merchant, integrator, [321, 322])


def test_code_in_the_customer_note_binds_and_rewards(store: Store, merchant: Merchant,
                                                     integrator: Integrator) -> None:
    """A friend who typed the code in their account note at signup is rewarded on a first order without it."""
    store.register(331, "noted@example.com")
    code = integrator.code_of("noted@example.com")
    friend = customer(332, "noter@example.com")
    friend["note"] = f"Referred by a friend, ref: {code[:4]} {code[4:].lower()}"
    store.send("customers/create", friend)
    store.pay(order(friend))
    assert (balance(integrator, 331), balance(integrator, 332)) == (100, 50)
    (row,) = merchant.export("referrals")
    assert row["source"] == "customer_note"
    reconcile(merchant, integrator, [331, 332])


def test_test_orders_earn_when_the_setting_is_on(app: Flask, store: Store, merchant: Merchant,
                                                 integrator: Integrator) -> None:
    """With REWARD_TEST_ORDERS on, a ``test: true`` first order rewards both sides once."""
    app.config["REWARD_TEST_ORDERS"] = "true"
    paid = _referred(store, integrator, 341, 342, test=True)
    store.pay(paid)
    store.pay(paid)
    assert (balance(integrator, 341), balance(integrator, 342)) == (100, 50)
    reconcile(merchant, integrator, [341, 342])


def test_two_friends_at_one_address_wait_for_review(store: Store, merchant: Merchant,
                                                    integrator: Integrator) -> None:
    """A second friend of the advocate shipping to the first friend's address is held for review, not paid."""
    store.register(351, "house@example.com")
    code = integrator.code_of("house@example.com")
    store.pay(order(store.register(352, "one@example.com", street="9 Shared Row"), code=code))
    store.pay(order(store.register(353, "two@example.com", street="9 Shared Row"), code=code))
    assert [balance(integrator, c) for c in (351, 352, 353)] == [100, 50, 0]
    held = [r for r in merchant.export("referrals") if r["status"] == "held"]
    assert [(r["friend_customer_id"], r["reason"]) for r in held] == [("353", "REVIEW_SHARED_ADDRESS")]
    summary = reconcile(merchant, integrator, [351, 352, 353])
    assert summary["pending"]["heldReferrals"] == 1 and summary["pending"]["pointsOnHold"] == 150
    merchant.decide("approve", [int(held[0]["referral_id"])])
    assert [balance(integrator, c) for c in (351, 352, 353)] == [200, 50, 50]
    reconcile(merchant, integrator, [351, 352, 353])


def test_held_reward_of_an_erased_advocate_is_not_released(store: Store, merchant: Merchant,
                                                           integrator: Integrator) -> None:
    """An advocate erased during the hold gets no release (their held reward is voided); the friend's releases."""
    from referral_plugin.rewards.sweeper import sweep

    store.register(361, "held-gone@example.com")
    merchant.edit(default_token(integrator), hold_days="7")
    code = integrator.code_of("held-gone@example.com")
    store.pay(order(store.register(362, "held-friend@example.com"), code=code))
    store.send("customers/redact", {"shop_id": 1, "shop_domain": "test-shop.myshopify.com",
                                    "customer": {"id": 361, "email": "held-gone@example.com", "phone": None},
                                    "orders_to_redact": []})
    sweep(dt.datetime.now(dt.UTC) + dt.timedelta(days=8))
    db.session.commit()
    assert (net_points(361), balance(integrator, 362)) == (0, 50)
    voids = [(r.side, r.points, r.reason) for r in ledger_rows() if r.entry_type == EntryType.VOID]
    assert voids == [("advocate", -100, "CUSTOMER_ERASED")]
    (row,) = merchant.export("referrals")
    assert row["status"] == "rewarded"
    reconcile(merchant, integrator, [362])
