"""Exactly-once under concurrency: gunicorn with 4 workers on PostgreSQL, many deliveries at the same moment."""

from __future__ import annotations

import typing as t
import uuid
from collections.abc import Callable
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import Shop
from tests.scale.harness import SHOP
from tests.scale.harness import AppServer
from tests.scale.harness import concurrently
from tests.scale.harness import signed_webhook
from tests.scale.scenario import advocate_with_code
from tests.scale.scenario import count
from tests.scale.scenario import customer_payload
from tests.scale.scenario import earning_rows_by_side
from tests.scale.scenario import install
from tests.scale.scenario import paid_order_payload
from tests.shopify_actions import signed_admin_query

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DELIVERIES = 50


def _post(server: AppServer, body: bytes, headers: dict[str, str]) -> Callable[[], int]:
    def call() -> int:
        return requests.post(server.url + "/webhooks", data=body, headers=headers, timeout=30).status_code

    return call


def _statuses(results: list[t.Any]) -> list[t.Any]:
    return [r if isinstance(r, int) else repr(r) for r in results]


@pytest.fixture
def referral_setup(scale_app: Flask) -> tuple[Shop, ReferralCode]:
    """Install the shop and give an advocate a code."""
    shop = install(SHOP)
    _, code = advocate_with_code(shop, 7001, "ada@example.com")
    return shop, code


def test_same_order_with_distinct_webhook_ids_grants_once(
    scale_app: Flask, referral_setup: tuple[Shop, ReferralCode], start_server: Callable[..., AppServer]
) -> None:
    """50 deliveries of one paid order, each with its own webhook id, at once: one grant per side."""
    shop, code = referral_setup
    server = start_server()
    order = paid_order_payload(5_550_001, 8001, "fran@example.org", code.code)
    calls = []
    for _ in range(DELIVERIES):
        body, headers = signed_webhook("orders/paid", order, webhook_id=str(uuid.uuid4()))
        calls.append(_post(server, body, headers))
    statuses = _statuses(concurrently(calls))
    assert statuses == [200] * DELIVERIES, server.log()
    assert earning_rows_by_side(shop) == {"advocate": 1, "friend": 1}
    assert count(OrderAttribution, shop) == 1
    assert count(Referral, shop) == 1


def test_same_delivery_fifty_times_grants_once(
    scale_app: Flask, referral_setup: tuple[Shop, ReferralCode], start_server: Callable[..., AppServer]
) -> None:
    """50 copies of one delivery (same webhook id and event id) at once: one grant per side, all answered 200."""
    shop, code = referral_setup
    server = start_server()
    order = paid_order_payload(5_550_002, 8002, "frank@example.org", code.code)
    body, headers = signed_webhook("orders/paid", order, webhook_id=str(uuid.uuid4()), event_id=str(uuid.uuid4()))
    statuses = _statuses(concurrently([_post(server, body, headers) for _ in range(DELIVERIES)]))
    assert statuses == [200] * DELIVERIES, server.log()
    assert earning_rows_by_side(shop) == {"advocate": 1, "friend": 1}
    assert count(OrderAttribution, shop) == 1


def test_concurrent_customer_creates_make_one_customer_and_one_code(
    scale_app: Flask, start_server: Callable[..., AppServer]
) -> None:
    """``customers/create`` for one customer delivered 30 times at once: one customer, one referral code."""
    shop = install(SHOP)
    server = start_server()
    payload = customer_payload(9001, "new.shopper@example.com", first_name="Nia")
    calls = []
    for _ in range(30):
        body, headers = signed_webhook("customers/create", payload, webhook_id=str(uuid.uuid4()))
        calls.append(_post(server, body, headers))
    statuses = _statuses(concurrently(calls))
    assert statuses == [200] * 30, server.log()
    db.session.expire_all()
    customers = db.session.scalars(
        select(Customer).where(Customer.shop_id == shop.id, Customer.shopify_customer_id == 9001)
    ).all()
    assert len(customers) == 1
    codes = db.session.scalars(select(ReferralCode).where(ReferralCode.customer_id == customers[0].id)).all()
    assert len(codes) == 1


def _start_install(server: AppServer) -> tuple[requests.Session, dict[str, str]]:
    """Run ``/auth/install`` like the merchant's browser and return the callback query Shopify would send."""
    browser = requests.Session()
    response = browser.get(
        server.url + "/auth/install", params=signed_admin_query({"shop": SHOP}), allow_redirects=False, timeout=10
    )
    assert response.status_code == 302, response.text
    state = parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]
    return browser, signed_admin_query({"shop": SHOP, "code": uuid.uuid4().hex, "state": state})


def test_install_racing_uninstall_leaves_a_consistent_shop(
    scale_app: Flask, start_server: Callable[..., AppServer]
) -> None:
    """An OAuth callback racing ``app/uninstalled``: installed with a token, or uninstalled without one."""
    install(SHOP)
    server = start_server()
    inconsistent = []
    for round_ in range(15):
        browser, callback_query = _start_install(server)

        def callback(browser: requests.Session = browser, query: dict[str, str] = callback_query) -> int:
            url = server.url + "/auth/callback"
            return browser.get(url, params=query, allow_redirects=False, timeout=30).status_code

        body, headers = signed_webhook("app/uninstalled", {"id": 1, "domain": SHOP}, webhook_id=str(uuid.uuid4()))
        results = _statuses(concurrently([callback, _post(server, body, headers)]))
        assert results[0] in (302, 303), (results, server.log())
        assert results[1] == 200, (results, server.log())
        db.session.expire_all()
        shop = db.session.scalar(select(Shop).where(Shop.shopify_domain == SHOP))
        assert shop is not None
        installed = shop.access_token_ciphertext is not None and shop.uninstalled_at is None
        uninstalled = shop.access_token_ciphertext is None and shop.uninstalled_at is not None
        if not (installed or uninstalled):
            inconsistent.append((round_, shop.access_token_ciphertext is not None, shop.uninstalled_at))
    assert inconsistent == []
