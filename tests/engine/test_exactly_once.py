"""Exactly-once: however Shopify redelivers an order, each side is granted once."""

from __future__ import annotations

import threading

from flask import Flask

from referral_plugin.extensions import db
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import PaidOrder
from tests.conftest import run_at_once
from tests.engine.conftest import Store
from tests.engine.conftest import order_payload
from tests.shopify_actions import ShopifyActions


def _grants() -> list[tuple[str, int]]:
    db.session.expire_all()
    return sorted((e.side, e.points) for e in db.session.query(LedgerEntry).filter_by(entry_type=EntryType.GRANT))


def test_same_delivery_twice_grants_once(store: Store) -> None:
    """A retry with the same webhook id changes nothing."""
    advocate, friend = store.register(), store.register()
    order = order_payload(friend, code=store.code_of(advocate))
    store.pay(order, webhook_id="delivery-1")
    store.pay(order, webhook_id="delivery-1")
    assert _grants() == [("advocate", 100), ("friend", 50)]


def test_same_order_with_new_webhook_ids_grants_once(store: Store) -> None:
    """The same order delivered again under new webhook and event ids still earns once."""
    advocate, friend = store.register(), store.register()
    order = order_payload(friend, code=store.code_of(advocate))
    store.pay(order, webhook_id="delivery-1", event_id="event-1")
    store.pay(order, webhook_id="delivery-2", event_id="event-2")
    store.pay(order)
    assert _grants() == [("advocate", 100), ("friend", 50)]
    assert db.session.query(OrderAttribution).count() == 1
    assert db.session.query(PaidOrder).count() == 1
    assert store.customer(friend).paid_orders_count == 1
    assert (store.balance(advocate), store.balance(friend)) == (100, 50)


def test_eight_concurrent_deliveries_grant_once(app: Flask, store: Store) -> None:
    """Eight deliveries of one order at once (own clients, own connections) produce one grant per side."""
    advocate, friend = store.register(), store.register()
    order = order_payload(friend, code=store.code_of(advocate))
    db.session.commit()
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def deliver(n: int) -> None:
        try:
            actions = ShopifyActions(app.test_client())
            barrier.wait()
            statuses.append(actions.post_webhook("orders/paid", order, webhook_id=f"concurrent-{n}").status_code)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    run_at_once(deliver, [(n,) for n in range(8)])
    assert errors == []
    assert statuses == [200] * 8
    assert _grants() == [("advocate", 100), ("friend", 50)]
    assert db.session.query(OrderAttribution).count() == 1
    assert (store.balance(advocate), store.balance(friend)) == (100, 50)
