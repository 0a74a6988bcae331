"""Audit as Shopify: webhook ordering, repeats and shops without an install, in both processing modes.

Shopify delivers at least once and in no particular order; every scenario here must end with the rewards the
contract names (advocate 100, friend 50 for a first paid order; none once it is cancelled or fully refunded),
whatever the order and however often each delivery arrives. Inline and queued intake must agree.
"""

from __future__ import annotations

import typing as t

import pytest
from sqlalchemy import func
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Shop
from referral_plugin.models import WebhookDelivery
from tests.contract.conftest import Integrator
from tests.contract.conftest import cancelled
from tests.contract.conftest import customer_payload
from tests.contract.conftest import full_refund
from tests.contract.conftest import order_payload
from tests.contract.conftest import register
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload
from tests.shopify_actions import raw_payload

ADVOCATE = 7001
FRIEND = 7002
ORDER = 880001


@pytest.fixture(params=["inline", "queued"])
def app_config(request: pytest.FixtureRequest, app_config: dict[str, t.Any]) -> dict[str, t.Any]:
    """Run every scenario with handlers in the request and with handlers in a job (run at commit)."""
    return {**app_config, "WEBHOOK_PROCESSING": request.param}


def _ok(response: t.Any) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.fixture
def code(shopify: ShopifyActions, integrator: Integrator) -> str:
    """Register the advocate and return their referral code."""
    register(shopify, ADVOCATE, "ada@example.com")
    return integrator.code_of("ada@example.com")


def _points(integrator: Integrator, customer_id: int) -> int:
    return int(integrator.summary(customer_id)["totalPointEarnRefer"])


def test_paid_before_customers_create_rewards_once(shopify: ShopifyActions, integrator: Integrator, code: str) -> None:
    """A friend's orders/paid that overtakes their customers/create still rewards both sides, exactly once."""
    order = order_payload(ORDER, FRIEND, "friend@example.com", code=code)
    _ok(shopify.post_webhook("orders/paid", order))
    register(shopify, FRIEND, "friend@example.com")
    _ok(shopify.post_webhook("orders/paid", order))  # a second delivery of the same event, new webhook id
    assert _points(integrator, ADVOCATE) == 100
    assert _points(integrator, FRIEND) == 50


def test_refund_before_paid_ends_with_nothing(shopify: ShopifyActions, integrator: Integrator, code: str) -> None:
    """A full refund delivered before the order's orders/paid leaves neither side with points once both are in."""
    register(shopify, FRIEND, "friend@example.com")
    order = order_payload(ORDER, FRIEND, "friend@example.com", code=code)
    _ok(shopify.post_webhook("refunds/create", full_refund(order, 990001)))
    _ok(shopify.post_webhook("orders/paid", order))
    assert _points(integrator, ADVOCATE) == 0
    assert _points(integrator, FRIEND) == 0


def test_cancelled_before_paid_ends_with_nothing(shopify: ShopifyActions, integrator: Integrator, code: str) -> None:
    """orders/cancelled delivered before orders/paid leaves neither side with points once both are in."""
    register(shopify, FRIEND, "friend@example.com")
    order = order_payload(ORDER, FRIEND, "friend@example.com", code=code)
    _ok(shopify.post_webhook("orders/cancelled", cancelled(order)))
    _ok(shopify.post_webhook("orders/paid", order))
    assert _points(integrator, ADVOCATE) == 0
    assert _points(integrator, FRIEND) == 0


def test_cancelled_twice_takes_back_once(shopify: ShopifyActions, integrator: Integrator, code: str) -> None:
    """Two orders/cancelled deliveries (new webhook and event ids) take the rewards back once, not twice."""
    register(shopify, FRIEND, "friend@example.com")
    order = order_payload(ORDER, FRIEND, "friend@example.com", code=code)
    _ok(shopify.post_webhook("orders/paid", order))
    assert _points(integrator, ADVOCATE) == 100
    for event in ("e-1", "e-2"):
        _ok(shopify.post_webhook("orders/cancelled", cancelled(order), event_id=event))
    _ok(shopify.post_webhook("refunds/create", full_refund(order, 990002)))
    assert _points(integrator, ADVOCATE) == 0
    assert _points(integrator, FRIEND) == 0


def test_duplicates_by_webhook_id_and_event_id(shopify: ShopifyActions, integrator: Integrator, code: str) -> None:
    """A repeat of a delivery's webhook id, or of its topic's event id, is 200 and changes nothing."""
    register(shopify, FRIEND, "friend@example.com")
    order = order_payload(ORDER, FRIEND, "friend@example.com", code=code)
    _ok(shopify.post_webhook("orders/paid", order, webhook_id="w-1", event_id="ev-1"))
    _ok(shopify.post_webhook("orders/paid", order, webhook_id="w-1", event_id="ev-1"))
    _ok(shopify.post_webhook("orders/cancelled", cancelled(order), webhook_id="w-1", event_id="ev-9"))
    assert _points(integrator, ADVOCATE) == 100
    _ok(shopify.post_webhook("orders/cancelled", cancelled(order), webhook_id="w-2", event_id="ev-2"))
    assert _points(integrator, ADVOCATE) == 0
    _ok(shopify.post_webhook("orders/paid", order, webhook_id="w-3", event_id="ev-1"))
    assert _points(integrator, ADVOCATE) == 0
    assert _points(integrator, FRIEND) == 0


def test_invalid_signature_changes_nothing(shopify: ShopifyActions, integrator: Integrator, code: str) -> None:
    """A delivery with a wrong hmac is 401, stores no delivery, and a later valid one with its id still counts."""
    register(shopify, FRIEND, "friend@example.com")
    order = order_payload(ORDER, FRIEND, "friend@example.com", code=code)
    before = db.session.execute(select(func.count(WebhookDelivery.id))).scalar_one()
    response = shopify.post_webhook("orders/paid", order, webhook_id="w-forged", event_id="ev-forged", valid=False)
    assert response.status_code == 401
    assert db.session.execute(select(func.count(WebhookDelivery.id))).scalar_one() == before
    _ok(shopify.post_webhook("orders/paid", order, webhook_id="w-forged", event_id="ev-forged"))
    assert _points(integrator, ADVOCATE) == 100


def test_deliveries_for_a_never_installed_shop_store_nothing(shopify: ShopifyActions, shop: Shop) -> None:
    """Every topic for a shop that never installed is 200 and creates no shop and no customer."""
    stranger = "never-installed.myshopify.com"
    for topic, name in (("customers/create", "customers_create"), ("orders/paid", "orders_paid"),
                        ("orders/cancelled", "orders_cancelled"), ("refunds/create", "refunds_create"),
                        ("app/uninstalled", "app_uninstalled"), ("customers/data_request", "customers_data_request"),
                        ("customers/redact", "customers_redact"), ("shop/redact", "shop_redact")):
        _ok(shopify.post_webhook(topic, load_payload(name), shop=stranger))
    assert db.session.execute(select(Shop.shopify_domain)).scalars().all() == [shop.shopify_domain]
    assert db.session.execute(select(func.count(Customer.id))).scalar_one() == 0


def test_deliveries_after_uninstall_keep_the_shop_uninstalled(shopify: ShopifyActions, code: str) -> None:
    """Late deliveries after app/uninstalled are 200, keep the shop's data, and never reinstall or revive it."""
    register(shopify, FRIEND, "friend@example.com")
    _ok(shopify.post_webhook("app/uninstalled", load_payload("app_uninstalled")))
    _ok(shopify.post_webhook("orders/paid", order_payload(ORDER, FRIEND, "friend@example.com", code=code)))
    _ok(shopify.post_webhook("customers/create", customer_payload(FRIEND + 1, "late@example.com")))
    _ok(shopify.post_webhook("app/uninstalled", load_payload("app_uninstalled")))
    shop = db.session.execute(select(Shop)).scalar_one()
    assert shop.uninstalled_at is not None
    assert shop.access_token_ciphertext is None
    assert db.session.execute(select(func.count(Customer.id))).scalar_one() == 3


@pytest.mark.parametrize(("topic", "name", "digest"), [
    ("orders/paid", "orders_paid", "vzceRpjYyqJGenPaDJzDMKUPemGJ6t+Tkovs5++dx2Y="),
    ("customers/create", "customers_create", "pttdiaoFM5sLP22ttY8IpgBi8jqi9ihcvo7sv9L4NP8="),
    ("customers/redact", "customers_redact", "gMgpnNqCQMYwuTRRWyebW11zQH4MUCOZsK9VkPK2TFw="),
])
def test_published_sample_digests_are_accepted(shopify: ShopifyActions, shop: Shop, topic: str, name: str,
                                               digest: str) -> None:
    """The exact sample bytes with their published hush digests are accepted; one changed byte is 401."""
    body = raw_payload(name)
    headers = {"X-Shopify-Hmac-Sha256": digest}
    assert shopify.post_webhook(topic, body, headers=headers).status_code == 200
    tampered = body.replace(b"1", b"2", 1)
    assert shopify.post_webhook(topic, tampered, headers=headers).status_code == 401
