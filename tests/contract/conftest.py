"""Fixtures for the black-box contract tests: only the public surface of CONTRACT.md is driven.

Shops come from the shared ``shop`` fixture (an installed shop row) or from a real OAuth install; everything
else — customers, orders, keys — goes through webhooks, the CLI, the app proxy and the integrator API.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from werkzeug.test import TestResponse

from referral_plugin.models import Shop
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload


def create_api_key(runner: FlaskCliRunner, shop_domain: str = SHOP) -> str:
    """Run ``flask api-key create <shop>`` and return the key printed on its last line."""
    result = runner.invoke(args=["api-key", "create", shop_domain])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    return lines[-1].strip()


class Integrator:
    """An integrator's HTTP client: sends the shop API key as ``X-Api-Key``."""

    def __init__(self, client: FlaskClient, key: str) -> None:
        self.client = client
        self.key = key

    def get(self, path: str, **kwargs: t.Any) -> TestResponse:
        """GET ``path`` with the key."""
        return self.client.get(path, headers={"X-Api-Key": self.key}, **kwargs)

    def post(self, path: str, **kwargs: t.Any) -> TestResponse:
        """POST ``path`` with the key."""
        return self.client.post(path, headers={"X-Api-Key": self.key}, **kwargs)

    def summary(self, customer_id: int) -> dict[str, t.Any]:
        """Return the Joy summary ``data`` of a Shopify customer."""
        response = self.get(f"/rest_api/v2/referrals/customers/{customer_id}/summary")
        assert response.status_code == 200, response.get_data(as_text=True)
        data: dict[str, t.Any] = response.get_json()["data"]
        return data

    def code_of(self, email: str) -> str:
        """Return the referral code of the customer with ``email`` (Joy invitations)."""
        response = self.post("/rest_api/v2/referrals/invitations", json={"email": email})
        assert response.status_code == 200, response.get_data(as_text=True)
        code: str = response.get_json()["data"]["referralCode"]
        return code


@pytest.fixture
def api_key(runner: FlaskCliRunner, shop: Shop) -> str:
    """Return a key for the installed test shop, made with the CLI."""
    return create_api_key(runner)


@pytest.fixture
def integrator(client: FlaskClient, api_key: str) -> Integrator:
    """Return an integrator authenticated as the test shop."""
    return Integrator(client, api_key)


def customer_payload(customer_id: int, email: str | None, *, phone: str | None = None,
                     first_name: str = "Ada", last_name: str = "Lovelace") -> dict[str, t.Any]:
    """Return a ``customers/create`` payload from Shopify's sample with these details."""
    payload = load_payload("customers_create")
    payload.update(id=customer_id, email=email, phone=phone, first_name=first_name, last_name=last_name,
                   admin_graphql_api_id=f"gid://shopify/Customer/{customer_id}")
    payload["default_address"]["customer_id"] = customer_id
    return payload


def register(shopify: ShopifyActions, customer_id: int, email: str | None, *, phone: str | None = None,
             shop: str = SHOP, **names: str) -> None:
    """Deliver ``customers/create`` for a new customer and expect 200."""
    response = shopify.post_webhook("customers/create", customer_payload(customer_id, email, phone=phone, **names),
                                    shop=shop)
    assert response.status_code == 200, response.get_data(as_text=True)


def order_payload(order_id: int, customer_id: int | None, email: str | None, *, code: str | None = None,
                  total: str = "120.00", test: bool = False) -> dict[str, t.Any]:
    """Return a real paid order (not test, not cancelled) built from Shopify's order sample."""
    order = load_payload("orders_paid")
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    order.update(created_at=now, processed_at=now, updated_at=now)
    order.update(id=order_id, admin_graphql_api_id=f"gid://shopify/Order/{order_id}", name=f"#{order_id % 100000}",
                 email=email, contact_email=email, test=test, financial_status="paid", cancelled_at=None,
                 cancel_reason=None, total_price=total, subtotal_price=total, current_total_price=total,
                 current_subtotal_price=total, total_outstanding="0.00", total_discounts="0.00",
                 current_total_discounts="0.00", discount_codes=[], discount_applications=[])
    if customer_id is None:
        order["customer"] = None
    else:
        order["customer"].update(id=customer_id, email=email,
                                 admin_graphql_api_id=f"gid://shopify/Customer/{customer_id}")
    if code is not None:
        order["discount_codes"] = [{"code": code, "amount": "0.00", "type": "fixed_amount"}]
    return order


def cancelled(order: dict[str, t.Any]) -> dict[str, t.Any]:
    """Return a copy of ``order`` as Shopify sends it on ``orders/cancelled`` after a full refund."""
    copy = dict(order)
    copy.update(cancelled_at="2026-11-02T12:00:00-05:00", cancel_reason="customer", financial_status="refunded",
                current_total_price="0.00", current_subtotal_price="0.00")
    return copy


def full_refund(order: dict[str, t.Any], refund_id: int) -> dict[str, t.Any]:
    """Return a ``refunds/create`` payload refunding all of ``order``."""
    refund = load_payload("refunds_create")
    refund.update(id=refund_id, order_id=order["id"], admin_graphql_api_id=f"gid://shopify/Refund/{refund_id}")
    total = order["total_price"]
    for transaction in refund.get("transactions", []):
        transaction.update(order_id=order["id"], amount=total, kind="refund", status="success", test=False)
    if not refund.get("transactions"):
        refund["transactions"] = [{"id": refund_id + 1, "order_id": order["id"], "kind": "refund", "amount": total,
                                   "status": "success", "gateway": "manual", "test": False,
                                   "currency": "USD"}]
    else:
        refund["transactions"] = refund["transactions"][:1]
    for item in refund.get("refund_line_items", [])[:1]:
        item.update(subtotal=float(total))
        for money in item.get("subtotal_set", {}).values():
            money["amount"] = total
    refund["refund_line_items"] = refund.get("refund_line_items", [])[:1]
    return refund


@pytest.fixture
def store(shopify: ShopifyActions, shop: t.Any) -> t.Any:
    """Return the shop as Shopify drives it (:class:`~tests.contract.engine_story.Store`)."""
    from tests.contract.engine_story import Store  # imported here: engine_story imports this module's helpers

    return Store(shopify)


@pytest.fixture
def merchant(client: FlaskClient, shop: t.Any) -> t.Any:
    """Return the merchant in the dashboard (:class:`~tests.contract.engine_story.Merchant`)."""
    from tests.contract.engine_story import Merchant

    return Merchant(client)
