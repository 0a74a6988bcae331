"""Audit of the reward engine from outside, as a merchant running a referral program sees it.

Shopify is played by signed webhooks (payloads are copies of Shopify's samples) and, for discount rewards, by
``responses`` answering the Admin GraphQL API; the merchant uses the dashboard's forms and JSON endpoints; an
integrator reads the Joy and Capillary APIs. After each story the numbers the merchant sees (summary, exports,
Joy) are checked against the ledger itself: they must agree exactly.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import typing as t
from decimal import Decimal

import pytest
import responses as responses_lib
from flask import Flask

from referral_plugin.extensions import db
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
from tests.contract.test_contract_dashboard_campaign import _form_with
from tests.shopify_actions import SHOP
from tests.shopify_actions import session_token

# Rewarded once for a first paid order, however the friend came ----------------------------------------------


@pytest.mark.parametrize("how", ["code", "link", "cart", "invitation"])
def test_advocate_and_friend_rewarded_once_for_the_first_paid_order(
        how: str, store: Store, merchant: Merchant, integrator: Integrator) -> None:
    """Whichever way the friend came (code, invite link, cart attribute, invitation), both sides earn once."""
    store.register(1, "ann@example.com")
    code = integrator.code_of("ann@example.com")
    if how == "invitation":
        store.invite(1, "bea@example.com")
    if how == "link":
        landing = store.shopify.proxy_get(f"r/{code.lower()}", None)
        assert landing.status_code == 302
        assert landing.headers["Location"].endswith(f"?ref={code}"), landing.headers["Location"]
    friend = store.register(2, "bea@example.com")
    evidence: dict[str, t.Any] = {
        "code": {"code": code.lower()}, "link": {"landing_site": f"/?ref={code}"}, "cart": {"cart_code": code},
        "invitation": {}}[how]
    first = order(friend, subtotal="80.00", **evidence)
    store.pay(first)
    store.pay(first)  # redelivered under a new webhook id
    store.pay(order(friend, subtotal="90.00", **evidence))  # the friend's second order
    assert (balance(integrator, 1), balance(integrator, 2)) == (100, 50)
    summary = reconcile(merchant, integrator, [1, 2])
    assert (summary["referredOrders"], summary["pointsAwarded"]) == (1, 150)
    assert summary["referralRevenue"] == 80.0
    if how == "link":
        assert summary["clicks"] == 1 and summary["conversionRate"] == 1.0
    assert integrator.summary(1)["totalRedeemCoupon"] == 1


def test_unregistered_friend_paying_with_the_code_is_rewarded(store: Store, merchant: Merchant,
                                                              integrator: Integrator) -> None:
    """A friend whose account is created by checkout (no customers/create first) still earns once."""
    store.register(11, "cal@example.com")
    code = integrator.code_of("cal@example.com")
    store.pay(order(customer(12, "dot@example.com"), code=code))
    assert (balance(integrator, 11), balance(integrator, 12)) == (100, 50)
    reconcile(merchant, integrator, [11, 12])



# Points versus discount codes made through the Admin API ----------------------------------------------------


class FakeAdmin:
    """Shopify's Admin GraphQL API: records every call and creates discount nodes."""

    def __init__(self, app: Flask, mocked: responses_lib.RequestsMock) -> None:
        self.calls: list[dict[str, t.Any]] = []
        self.discounts: dict[str, dict[str, t.Any]] = {}
        self._nodes = itertools.count(1)
        url = f"https://{SHOP}/admin/api/{app.config['SHOPIFY_API_VERSION']}/graphql.json"
        mocked.assert_all_requests_are_fired = False  # some stories must not call Shopify at all
        mocked.add_callback(responses_lib.POST, url, callback=self._answer, content_type="application/json")

    def _answer(self, request: t.Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        self.calls.append(body)
        match = re.search(r"(?:mutation|query)[^{]*{\s*(\w+)", body["query"])
        root = match.group(1) if match else "data"
        variables = body.get("variables") or {}
        if root == "codeDiscountNodeByCode":
            found = next((i for i, d in self.discounts.items() if d["code"] == variables["code"]), None)
            return 200, {}, json.dumps({"data": {root: {"id": found} if found else None}})
        errors: list[dict[str, t.Any]] = []
        node = variables.get("id")
        if root == "discountCodeBasicCreate":
            if any(d["code"] == variables["d"]["code"] for d in self.discounts.values()):
                errors = [{"field": ["basicCodeDiscount", "code"], "code": "TAKEN",
                           "message": "Code must be unique. Please try a different code."}]
                node = None
            else:
                node = f"gid://shopify/DiscountCodeNode/{next(self._nodes)}"
                self.discounts[node] = dict(variables["d"])
        elif root == "discountCodeBasicUpdate":
            self.discounts[node].update(variables["d"])
        elif root == "discountCodeDeactivate":
            self.discounts[node]["endsAt"] = "2000-01-01T00:00:00Z"  # deactivation ends it now
        elif root == "discountCodeActivate":
            self.discounts[node]["endsAt"] = None
        return 200, {}, json.dumps({"data": {root: {"codeDiscountNode": {"id": node} if node else None,
                                                    "userErrors": errors}}})

    def live(self, code: str) -> bool:
        """Tell whether Shopify has a discount with this code that a shopper can use now."""
        now = dt.datetime.now(dt.UTC)
        for discount in self.discounts.values():
            if discount["code"] == code:
                ends = discount.get("endsAt")
                return ends is None or dt.datetime.fromisoformat(ends.replace("Z", "+00:00")) > now
        return False

    def created(self) -> list[dict[str, t.Any]]:
        """Return the ``DiscountCodeBasicInput`` of every discount created."""
        return [c["variables"]["d"] for c in self.calls if "discountCodeBasicCreate" in c["query"]]

    def deactivated(self) -> list[str]:
        """Return the node ids deactivated."""
        return [c["variables"]["id"] for c in self.calls if "discountCodeDeactivate" in c["query"]]


@pytest.fixture
def admin(app: Flask, mocked_responses: responses_lib.RequestsMock) -> FakeAdmin:
    """Return Shopify's Admin API as ``responses`` plays it."""
    return FakeAdmin(app, mocked_responses)


def test_fixed_amount_rewards_are_single_use_codes_for_the_right_customer(
        app: Flask, store: Store, merchant: Merchant, integrator: Integrator, admin: FakeAdmin) -> None:
    """A 7.50 advocate reward is a one-use code for the advocate alone, in the shop's currency, for 7.50."""
    store.register(21, "eve@example.com")
    merchant.edit(default_token(integrator), advocate_reward_kind="fixed_amount", advocate_reward_value="7.5",
                  friend_reward_kind="percentage", friend_reward_value="12.5")
    code = integrator.code_of("eve@example.com")
    friend = store.register(22, "fay@example.com")
    store.pay(order(friend, code=code, code_amount="12.50", subtotal="87.50"))
    rewards = [d for d in admin.created() if d["code"].startswith("REF-")]
    assert len(rewards) == 1, admin.created()
    reward = rewards[0]
    assert reward["customerGets"]["value"] == {"discountAmount": {"amount": "7.50", "appliesOnEachItem": False}}
    assert reward["usageLimit"] == 1 and reward["appliesOncePerCustomer"] is True
    assert reward["context"] == {"customers": {"add": ["gid://shopify/Customer/21"]}}
    assert "endsAt" not in reward  # no expiry is configured for reward codes
    live = [d for d in admin.created() if d["code"] == code]
    assert live and live[-1]["customerGets"]["value"] == {"percentage": 0.125}
    rows = ledger_rows()
    grant = next(r for r in rows if r.entry_type == "grant" and r.side == "advocate")
    assert (grant.amount, grant.currency) == (Decimal("7.50"), "USD")
    friend_grant = next(r for r in rows if r.entry_type == "grant" and r.side == "friend")
    assert (friend_grant.reason, friend_grant.amount, friend_grant.discount_code) == (
        "APPLIED_AT_CHECKOUT", Decimal("12.50"), code)
    issue = next(r for r in rows if r.entry_type == "issue")
    assert issue.related_entry_id == grant.id and issue.discount_code == reward["code"]
    summary = reconcile(merchant, integrator, [21, 22])
    assert summary["couponsIssued"] == 1 and summary["pointsAwarded"] == 0
    assert summary["rewardsCostBreakdown"]["fixedDiscounts"] == 20.0  # 7.50 given + 12.50 taken off at checkout
    # The order is cancelled: the advocate's unused code is deactivated, once.
    store.send("orders/cancelled", cancellation(order(friend, order_id=rows[0].shopify_order_id, code=code)))
    store.send("orders/cancelled", cancellation(order(friend, order_id=rows[0].shopify_order_id, code=code)))
    assert admin.deactivated() == [issue.discount_node_id]
    reconcile(merchant, integrator, [21, 22])


def test_percentage_reward_for_a_friend_who_came_by_link(
        app: Flask, store: Store, merchant: Merchant, integrator: Integrator, admin: FakeAdmin) -> None:
    """A friend who did not use the code at checkout gets their 15% reward as their own one-use code."""
    store.register(31, "gus@example.com")
    merchant.edit(default_token(integrator), friend_reward_kind="percentage", friend_reward_value="15")
    code = integrator.code_of("gus@example.com")
    friend = store.register(32, "hal@example.com")
    store.pay(order(friend, landing_site=f"/products/x?ref={code}"))
    rewards = [d for d in admin.created() if d["code"].startswith("REF-")]
    assert len(rewards) == 1
    assert rewards[0]["customerGets"]["value"] == {"percentage": 0.15}
    assert rewards[0]["context"] == {"customers": {"add": ["gid://shopify/Customer/32"]}}
    assert (balance(integrator, 31), balance(integrator, 32)) == (100, 0)
    reconcile(merchant, integrator, [31, 32])


def test_code_discount_carries_the_campaign_minimum_and_end(
        app: Flask, store: Store, merchant: Merchant, integrator: Integrator, admin: FakeAdmin) -> None:
    """The advocate's code as a live discount has the friend's offer, the minimum and the campaign's end."""
    store.register(41, "ida@example.com")
    ends = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).replace(second=0, microsecond=0)
    merchant.edit(default_token(integrator), friend_reward_kind="fixed_amount", friend_reward_value="10",
                  min_order_subtotal="50", ends_at=ends.strftime("%Y-%m-%dT%H:%M"))
    code = integrator.code_of("ida@example.com")
    live = [d for d in admin.created() if d["code"] == code]
    assert live, admin.calls
    last = live[-1]
    assert last["customerGets"]["value"]["discountAmount"]["amount"] == "10.00"
    assert last["minimumRequirement"] == {"subtotal": {"greaterThanOrEqualToSubtotal": "50.00"}}
    assert last["endsAt"] == ends.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert last["appliesOncePerCustomer"] is True


def test_code_discount_follows_the_campaign_end_and_a_pause(
        app: Flask, store: Store, merchant: Merchant, integrator: Integrator, admin: FakeAdmin) -> None:
    """Removing the campaign's end date or minimum, or pausing then resuming it, leaves the code usable."""
    store.register(45, "jay@example.com")
    token = default_token(integrator)
    ends = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    merchant.edit(token, friend_reward_kind="fixed_amount", friend_reward_value="10", ends_at=ends)
    code = integrator.code_of("jay@example.com")
    assert admin.live(code)
    merchant.edit(token, ends_at="", min_order_subtotal="40")
    merchant.edit(token, min_order_subtotal="0")
    discount = next(d for d in admin.discounts.values() if d["code"] == code)
    assert discount.get("endsAt") is None
    assert discount["minimumRequirement"]["subtotal"]["greaterThanOrEqualToSubtotal"] is None
    merchant.edit(token, status="paused")
    assert not admin.live(code)
    merchant.edit(token, status="active")
    assert admin.live(code)
    friend = store.register(46, "kit@example.com")
    store.pay(order(friend, code=code, code_amount="10.00"))
    assert (balance(integrator, 45), balance(integrator, 46)) == (100, 0)
    reconcile(merchant, integrator, [45, 46])


# Qualification -------------------------------------------------------------------------------------------------


def test_minimum_is_checked_before_the_referral_discount(store: Store, merchant: Merchant,
                                                         integrator: Integrator) -> None:
    """A 55.00 cart with the 10.00 referral code meets a 50.00 minimum, as Shopify's own discount check says."""
    store.register(51, "jon@example.com")
    merchant.edit(default_token(integrator), min_order_subtotal="50")
    code = integrator.code_of("jon@example.com")
    friend = store.register(52, "kim@example.com")
    store.pay(order(friend, code=code, code_amount="10.00", subtotal="45.00"))
    assert (balance(integrator, 51), balance(integrator, 52)) == (100, 50)
    reconcile(merchant, integrator, [51, 52])


def test_minimum_order_value_boundaries(store: Store, merchant: Merchant, integrator: Integrator) -> None:
    """Below the minimum earns nothing and uses the first order; exactly the minimum earns."""
    store.register(61, "lea@example.com")
    merchant.edit(default_token(integrator), min_order_subtotal="50")
    code = integrator.code_of("lea@example.com")
    below, exact = store.register(62, "max@example.com"), store.register(63, "ned@example.com")
    store.pay(order(below, code=code, subtotal="49.99"))
    store.pay(order(below, code=code, subtotal="80.00"))  # second order: not the first any more
    store.pay(order(exact, code=code, subtotal="50.00"))
    assert [balance(integrator, c) for c in (61, 62, 63)] == [100, 0, 50]
    reasons = {r["friend_customer_id"]: r["reason"] for r in merchant.export("referrals")}
    assert reasons == {"62": "BELOW_MINIMUM", "63": "QUALIFIED"}
    summary = reconcile(merchant, integrator, [61, 62, 63])
    assert summary["referredOrders"] == 1


def test_campaign_schedule_and_pause(store: Store, merchant: Merchant, integrator: Integrator) -> None:
    """Paused or outside its dates, the campaign rewards nothing; running again, the next friend earns."""
    store.register(71, "oli@example.com")
    token = default_token(integrator)
    code = integrator.code_of("oli@example.com")
    merchant.edit(token, status="paused")
    store.pay(order(store.register(72, "pam@example.com"), code=code))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    merchant.edit(token, status="active", starts_at=later.strftime("%Y-%m-%dT%H:%M"))
    store.pay(order(store.register(73, "quinn@example.com"), code=code))
    merchant.edit(token, starts_at="", ends_at=(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M"))
    store.pay(order(store.register(74, "rae@example.com"), code=code))
    merchant.edit(token, ends_at="")
    store.pay(order(store.register(75, "sam@example.com"), code=code))
    assert [balance(integrator, c) for c in (71, 72, 73, 74, 75)] == [100, 0, 0, 0, 50]
    reasons = {r["friend_customer_id"]: r["reason"] for r in merchant.export("referrals")}
    assert reasons == {"72": "CAMPAIGN_INACTIVE", "73": "CAMPAIGN_INACTIVE", "74": "CAMPAIGN_INACTIVE",
                       "75": "QUALIFIED"}
    reconcile(merchant, integrator, [71, 72, 73, 74, 75])


def test_reward_limit_per_advocate(store: Store, merchant: Merchant, integrator: Integrator) -> None:
    """With a cap of 2 the third friend earns nothing; a reversal frees a place for the fourth."""
    store.register(81, "tom@example.com")
    merchant.edit(default_token(integrator), advocate_cap="2")
    code = integrator.code_of("tom@example.com")
    orders = [order(store.register(82 + i, f"f{i}@example.com"), code=code) for i in range(4)]
    for paid in orders[:3]:
        store.pay(paid)
    assert [balance(integrator, c) for c in (81, 82, 83, 84)] == [200, 50, 50, 0]
    store.send("orders/cancelled", cancellation(orders[0]))
    store.pay(orders[3])
    assert [balance(integrator, c) for c in (81, 82, 83, 84, 85)] == [200, 0, 50, 0, 50]
    reconcile(merchant, integrator, [81, 82, 83, 84, 85])


def test_test_orders_earn_nothing_and_keep_the_first_order(store: Store, merchant: Merchant,
                                                           integrator: Integrator) -> None:
    """A ``test: true`` order earns nothing; the friend's real first order afterwards does."""
    store.register(91, "uma@example.com")
    code = integrator.code_of("uma@example.com")
    friend = store.register(92, "vic@example.com")
    store.pay(order(friend, code=code, test=True))
    store.pay(order(friend, code=code))
    assert (balance(integrator, 91), balance(integrator, 92)) == (100, 50)
    reconcile(merchant, integrator, [91, 92])


# Fraud rules and held rewards ------------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", [
    {"email": "W.X+promo@GMAIL.com"},
    {"email": "wx@googlemail.com"},
    {"phone": "+1 (202) 555-0142"},
    {"street": "77 Same Street"},
])
def test_self_referral_by_another_account_earns_nothing(alias: dict[str, str], store: Store, merchant: Merchant,
                                                        integrator: Integrator) -> None:
    """A second account of the advocate (canonical email, phone or shipping address) earns nothing."""
    store.register(101, "wx@gmail.com", phone="+12025550142", street="77 Same Street")
    code = integrator.code_of("wx@gmail.com")
    email = alias.get("email", "someone.else@example.com")
    friend = customer(102, email, phone=alias.get("phone"))
    store.send("customers/create", friend)
    store.pay(order(friend, code=code, street=alias.get("street", "5 Other Road")))
    assert (balance(integrator, 101), balance(integrator, 102)) == (0, 0)
    (row,) = merchant.export("referrals")
    assert (row["status"], row["reason"]) == ("rejected", "SELF_REFERRAL")
    summary = reconcile(merchant, integrator, [101, 102])
    assert summary["referredOrders"] == 0


def test_velocity_holds_then_merchant_decides(app: Flask, store: Store, merchant: Merchant,
                                              integrator: Integrator) -> None:
    """Past the daily limit the next referral is held for review; approve pays it, reject voids it."""
    app.config["REVIEW_VELOCITY_LIMIT"] = 2
    store.register(111, "zed@example.com")
    code = integrator.code_of("zed@example.com")
    for i in range(4):
        store.pay(order(store.register(112 + i, f"v{i}@example.com"), code=code))
    assert balance(integrator, 111) == 200
    held = {int(r["friend_customer_id"]): int(r["referral_id"]) for r in merchant.export("referrals")
            if r["status"] == "held"}
    assert sorted(held) == [114, 115]
    assert merchant.decide("approve", [held[114]])["decided"] == [held[114]]
    assert merchant.decide("reject", [held[115]], "same household")["decided"] == [held[115]]
    assert merchant.decide("approve", [held[115]])["skipped"] == [held[115]]
    assert [balance(integrator, c) for c in (111, 114, 115)] == [300, 50, 0]
    reconcile(merchant, integrator, [111, 112, 113, 114, 115])


def test_hold_period_releases_once_and_refund_after_release(app: Flask, store: Store, merchant: Merchant,
                                                           integrator: Integrator) -> None:
    """With 14 hold days nothing counts until the sweeper releases; a later refund takes back the release."""
    from referral_plugin.rewards.sweeper import sweep

    store.register(121, "abe@example.com")
    merchant.edit(default_token(integrator), hold_days="14")
    code = integrator.code_of("abe@example.com")
    friend = store.register(122, "bo@example.com")
    paid = order(friend, code=code)
    store.pay(paid)
    assert (balance(integrator, 121), balance(integrator, 122)) == (0, 0)
    summary = reconcile(merchant, integrator, [121, 122])
    assert summary["referredOrders"] == 1 and summary["pointsAwarded"] == 0
    sweep()  # not due yet
    assert balance(integrator, 121) == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=15)
    sweep(later)
    sweep(later)  # a second sweeper run (or a concurrent one) releases nothing more
    db.session.commit()
    assert (balance(integrator, 121), balance(integrator, 122)) == (100, 50)
    summary = reconcile(merchant, integrator, [121, 122])
    assert summary["pointsAwarded"] == 150
    store.send("refunds/create", refund(paid, "100.00"))
    assert (balance(integrator, 121), balance(integrator, 122)) == (0, 0)
    reconcile(merchant, integrator, [121, 122])



def test_partial_refund_during_the_hold(app: Flask, store: Store, merchant: Merchant,
                                        integrator: Integrator) -> None:
    """A quarter refunded while held: the summary's points on hold drop by that share, the release pays the rest."""
    from referral_plugin.rewards.sweeper import sweep

    store.register(131, "cy@example.com")
    merchant.edit(default_token(integrator), hold_days="14")
    code = integrator.code_of("cy@example.com")
    paid = order(store.register(132, "di@example.com"), code=code)
    store.pay(paid)
    assert merchant.summary()["pending"]["pointsOnHold"] == 150
    store.send("refunds/create", refund(paid, "25.00"))
    assert merchant.summary()["pending"]["heldReferrals"] == 1
    reconcile(merchant, integrator, [131, 132], points_on_hold=False)
    sweep(dt.datetime.now(dt.UTC) + dt.timedelta(days=15))
    db.session.commit()
    assert (balance(integrator, 131), balance(integrator, 132)) == (75, 38)
    assert merchant.summary()["pending"]["pointsOnHold"] == 0
    reconcile(merchant, integrator, [131, 132])


def test_points_on_hold_after_a_partial_refund_during_the_hold(store: Store, merchant: Merchant,
                                                               integrator: Integrator) -> None:
    """After a quarter of a held order is refunded, the summary's points on hold are 113 (75 + 38), not 150."""
    store.register(161, "ivy@example.com")
    merchant.edit(default_token(integrator), hold_days="14")
    code = integrator.code_of("ivy@example.com")
    paid = order(store.register(162, "jo@example.com"), code=code)
    store.pay(paid)
    store.send("refunds/create", refund(paid, "25.00"))
    assert merchant.summary()["pending"]["pointsOnHold"] == 113
    reconcile(merchant, integrator, [161, 162])


def test_held_discount_reward_is_issued_once_on_release(app: Flask, store: Store, merchant: Merchant,
                                                        integrator: Integrator, admin: FakeAdmin) -> None:
    """A held 5.00 reward code is created only when released, once however often the sweeper runs."""
    from referral_plugin.rewards.sweeper import sweep

    store.register(141, "el@example.com")
    merchant.edit(default_token(integrator), hold_days="7", advocate_reward_kind="fixed_amount",
                  advocate_reward_value="5")
    code = integrator.code_of("el@example.com")
    store.pay(order(store.register(142, "flo@example.com"), code=code))
    assert [d for d in admin.created() if d["code"].startswith("REF-")] == []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=8)
    sweep(later)
    db.session.commit()
    sweep(later)
    db.session.commit()
    rewards = [d for d in admin.created() if d["code"].startswith("REF-")]
    assert len(rewards) == 1
    assert rewards[0]["customerGets"]["value"]["discountAmount"]["amount"] == "5.00"
    assert rewards[0]["context"] == {"customers": {"add": ["gid://shopify/Customer/141"]}}
    summary = reconcile(merchant, integrator, [141, 142])
    assert summary["couponsIssued"] == 1


def test_full_refund_while_held_issues_no_discount(app: Flask, store: Store, merchant: Merchant,
                                                  integrator: Integrator, admin: FakeAdmin) -> None:
    """A held reward code whose order is refunded before release is never created in Shopify."""
    from referral_plugin.rewards.sweeper import sweep

    store.register(151, "gil@example.com")
    merchant.edit(default_token(integrator), hold_days="7", advocate_reward_kind="percentage",
                  advocate_reward_value="10")
    code = integrator.code_of("gil@example.com")
    paid = order(store.register(152, "hub@example.com"), code=code)
    store.pay(paid)
    store.send("refunds/create", refund(paid, "100.00"))
    sweep(dt.datetime.now(dt.UTC) + dt.timedelta(days=8))
    db.session.commit()
    assert [d for d in admin.created() if d["code"].startswith("REF-")] == []
    summary = reconcile(merchant, integrator, [151, 152])
    assert summary["couponsIssued"] == 0 and summary["pending"]["heldReferrals"] == 0


def test_rewards_in_the_shops_currency(app: Flask, shop: t.Any, store: Store, merchant: Merchant,
                                       integrator: Integrator, admin: FakeAdmin) -> None:
    """In a EUR shop a 4.99 friend reward is a 4.99 code, recorded and exported in EUR, to the cent."""
    shop.currency = "EUR"
    db.session.commit()
    store.register(171, "kai@example.com")
    merchant.edit(default_token(integrator), friend_reward_kind="fixed_amount", friend_reward_value="4.99")
    store.invite(171, "lou@example.com")
    friend = store.register(172, "lou@example.com")
    store.pay(order(friend, subtotal="33.33", currency="EUR"))
    (reward,) = [d for d in admin.created() if d["code"].startswith("REF-")]
    assert reward["customerGets"]["value"]["discountAmount"]["amount"] == "4.99"
    assert reward["context"] == {"customers": {"add": ["gid://shopify/Customer/172"]}}
    friend_rows = [r for r in merchant.export("ledger") if r["customer_id"] == "172"]
    assert [(r["entry_type"], r["amount"], r["currency"]) for r in friend_rows] == [
        ("grant", "4.99", "EUR"), ("issue", "0.00", "EUR")]
    summary = reconcile(merchant, integrator, [171, 172])
    assert summary["currency"] == "EUR" and summary["referralRevenue"] == 33.33
    assert summary["rewardsCostBreakdown"]["fixedDiscounts"] == 4.99


def widget_stats(store: Store, customer_id: int) -> dict[str, t.Any]:
    """Return what the storefront widget shows the logged-in customer (its JSON)."""
    response = store.shopify.proxy_get("widget.json", customer_id)
    assert response.status_code == 200, response.get_data(as_text=True)
    data: dict[str, t.Any] = response.get_json()
    return data


def test_manual_adjustment_and_what_each_screen_counts(store: Store, merchant: Merchant,
                                                       integrator: Integrator) -> None:
    """A merchant's -30 adjustment changes the shopper's balance only; referral earnings stay 100 everywhere."""
    store.register(181, "mo@example.com")
    code = integrator.code_of("mo@example.com")
    paid = order(store.register(182, "ned2@example.com"), code=code)
    store.pay(paid)
    page = merchant.client.get("/admin/settings", query_string={"id_token": session_token(SHOP)})
    form = _form_with(page.get_data(as_text=True), "points")
    fields = dict(form["fields"])
    fields.update(customer="mo@example.com", points="-30", reason="Goodwill correction")
    done = merchant.client.post(form["action"], data=fields, query_string=None if "id_token" in form["action"]
                                else {"id_token": session_token(SHOP)})
    assert done.status_code in (302, 303), done.get_data(as_text=True)[:500]
    stats = widget_stats(store, 181)["stats"]
    assert (stats["pointsEarned"], stats["pointsBalance"]) == (100, 70)
    assert net_points(181) == 70 and balance(integrator, 181) == 100
    summary = reconcile(merchant, integrator, [181, 182])
    assert summary["pointsAwarded"] == 150
    store.send("refunds/create", refund(paid, "50.00"))
    stats = widget_stats(store, 181)["stats"]
    assert (stats["pointsEarned"], stats["pointsBalance"]) == (50, 20)
    assert widget_stats(store, 182)["stats"]["pointsBalance"] == 25
    reconcile(merchant, integrator, [181, 182])


def test_invite_link_to_a_live_discount_still_attributes_without_the_code(
        app: Flask, store: Store, merchant: Merchant, integrator: Integrator, admin: FakeAdmin) -> None:
    """A friend who lands through ``/discount/{code}`` but pays without the code still counts for the advocate."""
    store.register(191, "pia@example.com")
    merchant.edit(default_token(integrator), friend_reward_kind="fixed_amount", friend_reward_value="10")
    code = integrator.code_of("pia@example.com")
    landing = store.shopify.proxy_get(f"r/{code}", None)
    location = landing.headers["Location"]
    assert location.startswith(f"https://{SHOP}/discount/{code}"), location
    friend = store.register(192, "quin@example.com")
    store.pay(order(friend, landing_site=location.removeprefix(f"https://{SHOP}")))
    assert (balance(integrator, 191), balance(integrator, 192)) == (100, 0)
    rewards = [d for d in admin.created() if d["code"].startswith("REF-")]
    assert [r["context"] for r in rewards] == [{"customers": {"add": ["gid://shopify/Customer/192"]}}]
    reconcile(merchant, integrator, [191, 192])
