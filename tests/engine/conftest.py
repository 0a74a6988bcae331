"""Engine fixtures: customers registered through ``customers/create`` and orders built from Shopify's samples."""

from __future__ import annotations

import itertools
import typing as t

import pytest
from flask import Flask

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Shop
from referral_plugin.referrals.customers import get_customer
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload

_ids = itertools.count(1001)


def customer_payload(customer_id: int | None = None, **fields: t.Any) -> dict[str, t.Any]:
    """Return a ``customers/create`` payload from Shopify's sample with a fresh id, fields replaced."""
    payload = load_payload("customers_create")
    payload["id"] = customer_id or next(_ids)
    payload["note"] = None
    payload["email"] = f"customer{payload['id']}@example.com"
    address = dict(payload["default_address"])
    address["customer_id"] = payload["id"]
    address["address1"] = f"{payload['id']} Main Street"
    payload["default_address"] = address
    payload.update(fields)
    return payload


def order_payload(customer: dict[str, t.Any] | None, *, order_id: int | None = None,
                  code: str | None = None, **fields: t.Any) -> dict[str, t.Any]:
    """Return a paid, non-test ``orders/paid`` payload from Shopify's sample for ``customer`` (None: a guest)."""
    order = load_payload("orders_paid")
    order["id"] = order_id or next(_ids) * 1000
    order["test"] = False
    order["financial_status"] = "paid"
    order["cancelled_at"] = None
    order["cancel_reason"] = None
    order["discount_codes"] = [{"code": code, "amount": "10.00", "type": "fixed_amount"}] if code else []
    order["note_attributes"] = []
    order["landing_site"] = None
    if customer is None:
        order["customer"] = None
        order["email"] = "guest@example.net"
        order["contact_email"] = "guest@example.net"
    else:
        buyer = dict(order["customer"])
        buyer.update({"id": customer["id"], "email": customer.get("email"), "phone": customer.get("phone"),
                      "first_name": customer.get("first_name"), "last_name": customer.get("last_name"),
                      "default_address": customer.get("default_address")})
        order["customer"] = buyer
        order["email"] = customer.get("email")
        order["contact_email"] = customer.get("email")
        order["phone"] = None
    order.update(fields)
    return order


def refund_payload(order_id: int, amount: str, *, refund_id: int | None = None) -> dict[str, t.Any]:
    """Return a ``refunds/create`` payload from Shopify's sample: one successful refund of ``amount``."""
    refund = load_payload("refunds_create")
    refund["id"] = refund_id or next(_ids) * 7
    refund["order_id"] = order_id
    transaction = dict(refund["transactions"][0])
    transaction.update({"order_id": order_id, "amount": amount, "kind": "refund", "status": "success"})
    refund["transactions"] = [transaction]
    return refund


class Store:
    """Drive a shop through signed webhooks and read back what the engine recorded."""

    def __init__(self, shopify: ShopifyActions, shop: Shop) -> None:
        self.shopify = shopify
        self.shop = shop

    def register(self, **fields: t.Any) -> dict[str, t.Any]:
        """Send ``customers/create`` for a new customer; return the payload sent."""
        payload = customer_payload(**fields)
        response = self.shopify.post_webhook("customers/create", payload)
        assert response.status_code == 200, response.get_data(as_text=True)
        return payload

    def customer(self, payload: dict[str, t.Any]) -> Customer:
        """Return the engine's row for a customer payload."""
        db.session.expire_all()
        found = get_customer(self.shop, payload["id"])
        assert found is not None
        return found

    def code_of(self, payload: dict[str, t.Any]) -> str:
        """Return the customer's code in the default campaign."""
        from referral_plugin.referrals.codes import codes_of

        return codes_of(self.customer(payload))[0].code

    def pay(self, order: dict[str, t.Any], **kwargs: t.Any) -> None:
        """Send ``orders/paid`` and expect a 200."""
        response = self.shopify.post_webhook("orders/paid", order, **kwargs)
        assert response.status_code == 200, response.get_data(as_text=True)

    def send(self, topic: str, payload: dict[str, t.Any], **kwargs: t.Any) -> None:
        """Send any topic and expect a 200."""
        response = self.shopify.post_webhook(topic, payload, **kwargs)
        assert response.status_code == 200, response.get_data(as_text=True)

    def balance(self, payload: dict[str, t.Any]) -> int:
        """Return the customer's points balance."""
        from referral_plugin.referrals.ledger import points_balance

        return points_balance(self.customer(payload))


@pytest.fixture
def store(app: Flask, shopify: ShopifyActions, shop: Shop) -> Store:
    """Return the test shop driven through webhooks."""
    return Store(shopify, shop)
