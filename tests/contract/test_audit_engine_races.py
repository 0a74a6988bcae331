"""Audit, from outside: limits that must hold when Shopify delivers many orders of one advocate at once.

Run on SQLite files and (``TEST_DATABASE_URL``) on PostgreSQL, where transactions really overlap.
"""

from __future__ import annotations

import threading
import typing as t

import pytest
from flask import Flask

from referral_plugin.extensions import db
from tests.conftest import run_at_once
from tests.contract.conftest import Integrator
from tests.contract.engine_story import Merchant
from tests.contract.engine_story import Store
from tests.contract.engine_story import balance
from tests.contract.engine_story import default_token
from tests.contract.engine_story import order
from tests.contract.engine_story import reconcile
from tests.shopify_actions import ShopifyActions


def deliver_at_once(app: Flask, store: Store, orders: list[dict[str, t.Any]]) -> dict[int, int]:
    """Deliver ``orders/paid`` of every order at the same moment; redeliver any that failed, as Shopify would."""
    db.session.commit()
    barrier = threading.Barrier(len(orders))
    statuses: dict[int, int] = {}

    def deliver(n: int) -> None:
        shopify = ShopifyActions(app.test_client())
        barrier.wait()
        statuses[n] = shopify.post_webhook("orders/paid", orders[n], webhook_id=f"race-{n}").status_code

    run_at_once(deliver, [(n,) for n in range(len(orders))])
    for n, status in sorted(statuses.items()):
        if status != 200:
            store.pay(orders[n], webhook_id=f"race-{n}")
    return statuses


def test_reward_cap_holds_under_concurrent_orders(app: Flask, store: Store, merchant: Merchant,
                                                  integrator: Integrator) -> None:
    """Eight friends' first orders at once against a cap of 2: exactly two referrals are rewarded."""
    store.register(401, "capped@example.com")
    merchant.edit(default_token(integrator), advocate_cap="2")
    code = integrator.code_of("capped@example.com")
    friends = [store.register(410 + n, f"race{n}@example.com") for n in range(8)]
    deliver_at_once(app, store, [order(friend, code=code) for friend in friends])
    assert balance(integrator, 401) == 200
    rows = merchant.export("referrals")
    assert sorted(r["reason"] for r in rows) == ["CAP_REACHED"] * 6 + ["QUALIFIED"] * 2
    assert sum(balance(integrator, 410 + n) for n in range(8)) == 100
    reconcile(merchant, integrator, [401, *range(410, 418)])


def test_velocity_limit_holds_under_concurrent_orders(app: Flask, store: Store, merchant: Merchant,
                                                      integrator: Integrator) -> None:
    """Six friends' orders at once against a daily limit of 3: three pass, three wait for review."""
    app.config["REVIEW_VELOCITY_LIMIT"] = 3
    store.register(501, "fast@example.com")
    code = integrator.code_of("fast@example.com")
    friends = [store.register(510 + n, f"fast{n}@example.com") for n in range(6)]
    deliver_at_once(app, store, [order(friend, code=code) for friend in friends])
    assert balance(integrator, 501) == 300
    rows = merchant.export("referrals")
    assert sorted(r["status"] for r in rows) == ["held"] * 3 + ["rewarded"] * 3
    reconcile(merchant, integrator, [501, *range(510, 516)])


def test_two_first_orders_of_one_friend_at_once_reward_once(app: Flask, store: Store, merchant: Merchant,
                                                            integrator: Integrator) -> None:
    """A friend who pays two orders with the code at the same moment earns the referral once, for one of them."""
    store.register(601, "twice@example.com")
    code = integrator.code_of("twice@example.com")
    friend = store.register(602, "buyer@example.com")
    deliver_at_once(app, store, [order(friend, code=code, subtotal="60.00"), order(friend, code=code,
                                                                                    subtotal="70.00")])
    assert (balance(integrator, 601), balance(integrator, 602)) == (100, 50)
    (row,) = merchant.export("referrals")
    assert row["status"] == "rewarded" and row["order_subtotal"] in ("60.00", "70.00")
    summary = reconcile(merchant, integrator, [601, 602])
    assert summary["referredOrders"] == 1


@pytest.mark.parametrize("topic", ["orders/cancelled", "refunds/create"])
def test_reversal_racing_the_payment_still_takes_everything_back(topic: str, app: Flask, store: Store,
                                                                 merchant: Merchant, integrator: Integrator) -> None:
    """A cancellation or full refund and ``orders/paid`` of the same orders at the same moment: nothing is kept."""
    from tests.contract.engine_story import cancellation
    from tests.contract.engine_story import refund

    store.register(701, "racer@example.com")
    code = integrator.code_of("racer@example.com")
    orders = [order(store.register(710 + n, f"racer{n}@example.com"), code=code) for n in range(8)]
    reversals = [cancellation(o) if topic == "orders/cancelled" else refund(o, "100.00") for o in orders]
    deliveries = [("orders/paid", o) for o in orders] + [(topic, r) for r in reversals]
    db.session.commit()
    barrier = threading.Barrier(len(deliveries))
    statuses: dict[int, int] = {}

    def deliver(n: int) -> None:
        shopify = ShopifyActions(app.test_client())
        topic, payload = deliveries[n]
        barrier.wait()
        statuses[n] = shopify.post_webhook(topic, payload, webhook_id=f"both-{n}").status_code

    run_at_once(deliver, [(n,) for n in range(len(deliveries))])
    for n, status in sorted(statuses.items()):
        if status != 200:
            store.send(deliveries[n][0], deliveries[n][1], webhook_id=f"both-{n}")
    assert balance(integrator, 701) == 0
    assert [balance(integrator, 710 + n) for n in range(8)] == [0] * 8
    reconcile(merchant, integrator, [701, *range(710, 718)])
