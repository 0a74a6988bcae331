"""Audit as Shopify: the webhook hmac signs the body, not the shop header, so a body naming its shop pins it.

A captured compliance or uninstall body replayed with another shop's ``X-Shopify-Shop-Domain`` (and a fresh
webhook id) must not erase, export or uninstall that other shop. Bodies without a real shop name (Shopify's
samples carry ``{shop}.myshopify.com``) still act on the header's shop.
"""

from __future__ import annotations

import typing as t

from sqlalchemy import func
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import DataExport
from referral_plugin.models import Shop
from tests.contract.conftest import Integrator
from tests.contract.conftest import register
from tests.shopify_actions import OTHER_SHOP
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload

ADA = 7201


def _body(name: str, shop_domain: str) -> dict[str, t.Any]:
    payload = load_payload(name)
    payload["shop_domain"] = shop_domain
    if "customer" in payload:
        payload["customer"] = {"id": ADA, "email": "ada@example.com", "phone": None}
    return payload


def _shop() -> Shop:
    db.session.expire_all()
    return db.session.execute(select(Shop).where(Shop.shopify_domain == SHOP)).scalar_one()


def test_compliance_bodies_of_another_shop_change_nothing(shopify: ShopifyActions, integrator: Integrator) -> None:
    """customers/redact, customers/data_request and shop/redact whose body names another shop are 200 no-ops."""
    register(shopify, ADA, "ada@example.com")
    for topic, name in (("customers/redact", "customers_redact"),
                        ("customers/data_request", "customers_data_request"), ("shop/redact", "shop_redact")):
        assert shopify.post_webhook(topic, _body(name, OTHER_SHOP)).status_code == 200
    assert db.session.execute(select(Customer.email)).scalars().all() == ["ada@example.com"]
    assert db.session.execute(select(func.count(DataExport.id))).scalar_one() == 0
    assert _shop().is_installed


def test_uninstall_body_of_another_shop_changes_nothing(shopify: ShopifyActions, integrator: Integrator) -> None:
    """An app/uninstalled whose body's myshopify_domain is another shop leaves this shop installed."""
    payload = load_payload("app_uninstalled")
    payload["myshopify_domain"] = OTHER_SHOP
    assert shopify.post_webhook("app/uninstalled", payload).status_code == 200
    assert _shop().is_installed
    assert integrator.get("/api/v1/campaigns").status_code == 200


def test_bodies_naming_this_shop_or_no_shop_still_act(shopify: ShopifyActions, integrator: Integrator) -> None:
    """The same topics with this shop (or the samples' placeholder) in the body take effect."""
    register(shopify, ADA, "ada@example.com")
    assert shopify.post_webhook("customers/data_request",
                                _body("customers_data_request", "{shop}.myshopify.com")).status_code == 200
    assert db.session.execute(select(func.count(DataExport.id))).scalar_one() == 1
    assert shopify.post_webhook("customers/redact", _body("customers_redact", SHOP)).status_code == 200
    assert db.session.execute(select(Customer.email)).scalars().all() == [None]
    payload = load_payload("app_uninstalled")
    payload["myshopify_domain"] = SHOP
    assert shopify.post_webhook("app/uninstalled", payload).status_code == 200
    assert not _shop().is_installed
    assert shopify.post_webhook("shop/redact", load_payload("shop_redact")).status_code == 200
    assert db.session.execute(select(func.count(Shop.id))).scalar_one() == 0
