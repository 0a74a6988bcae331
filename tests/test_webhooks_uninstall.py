"""app/uninstalled: tokens gone at once, API keys revoked, data kept until shop/redact, reinstall works."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Customer
from referral_plugin.models import Shop
from referral_plugin.models import WebhookDelivery
from referral_plugin.models import utcnow
from referral_plugin.security import crypto
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload

apikeys = pytest.importorskip("referral_plugin.apikeys")


@pytest.fixture
def installed(shop: Shop) -> Shop:
    """Give the test shop an expiring token pair and a customer, like a real install."""
    shop.access_token_expires_at = utcnow() + dt.timedelta(hours=1)
    shop.refresh_token_ciphertext = crypto.encrypt("shprt_refresh")
    shop.refresh_token_expires_at = utcnow() + dt.timedelta(days=30)
    db.session.add(Customer(shop_id=shop.id, shopify_customer_id=42, email="kept@example.com"))
    db.session.commit()
    return shop


def _uninstall(shopify: ShopifyActions, shop: str = SHOP) -> dict[str, str]:
    response = shopify.post_webhook("app/uninstalled", load_payload("app_uninstalled"), shop=shop)
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def test_uninstall_deletes_tokens_revokes_keys_and_keeps_data(shopify: ShopifyActions, installed: Shop) -> None:
    """After app/uninstalled the shop has no tokens, is marked uninstalled, its keys fail; its data stays."""
    new_key = apikeys.create_key(installed, "integration")
    db.session.commit()
    assert apikeys.authenticate(new_key.key) is not None

    assert _uninstall(shopify) == {"status": "processed"}

    db.session.expire_all()
    shop = db.session.execute(select(Shop).where(Shop.shopify_domain == SHOP)).scalar_one()
    assert shop.access_token_ciphertext is None
    assert shop.refresh_token_ciphertext is None
    assert shop.access_token_expires_at is None and shop.refresh_token_expires_at is None
    assert shop.uninstalled_at is not None
    assert not shop.is_installed
    assert new_key.api_key.revoked_at is not None
    assert apikeys.authenticate(new_key.key) is None
    assert db.session.execute(select(Customer.email).where(Customer.shop_id == shop.id)).scalar_one() == (
        "kept@example.com")


def test_repeated_uninstall_is_harmless(shopify: ShopifyActions, installed: Shop) -> None:
    """A second app/uninstalled (new webhook id) changes nothing and still answers 200."""
    _uninstall(shopify)
    db.session.expire_all()
    first_at = installed.uninstalled_at
    assert _uninstall(shopify) == {"status": "processed"}
    db.session.expire_all()
    assert installed.uninstalled_at == first_at
    assert db.session.execute(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "app_uninstalled")
    ).scalar_one() == 1


def test_uninstall_of_an_unknown_shop_is_harmless(shopify: ShopifyActions, app: object) -> None:
    """app/uninstalled for a shop we never saw is recorded and answered 200, creating no shop."""
    assert _uninstall(shopify, "never-installed.myshopify.com") == {"status": "processed"}
    assert db.session.execute(select(func.count()).select_from(Shop)).scalar_one() == 0
    assert db.session.execute(select(WebhookDelivery.status)).scalar_one() == "processed"


def test_reinstall_after_uninstall_restores_the_shop(shopify: ShopifyActions, installed: Shop) -> None:
    """install_shop after an uninstall clears the flag, stores the new token and keeps the old data."""
    installs = pytest.importorskip("referral_plugin.installs")
    _uninstall(shopify)
    shop = installs.install_shop(SHOP, "shpat_new_token", "read_customers,write_discounts")
    db.session.expire_all()
    assert shop.uninstalled_at is None
    assert shop.is_installed
    assert shop.access_token_ciphertext is not None
    assert crypto.decrypt(shop.access_token_ciphertext) == "shpat_new_token"
    assert db.session.execute(select(func.count()).select_from(Customer)).scalar_one() == 1
    # A later uninstall works again after the reinstall.
    _uninstall(shopify)
    db.session.expire_all()
    assert shop.access_token_ciphertext is None and shop.uninstalled_at is not None


def test_late_retry_of_an_old_uninstall_spares_a_reinstalled_shop(shopify: ShopifyActions, installed: Shop) -> None:
    """An uninstall that fired before the latest install (a late Shopify retry) keeps the new token."""
    installs = pytest.importorskip("referral_plugin.installs")
    fired = utcnow() - dt.timedelta(minutes=5)
    shopify.post_webhook("app/uninstalled", load_payload("app_uninstalled"), triggered_at=fired)
    shop = installs.install_shop(SHOP, "shpat_after_reinstall", "read_customers,write_discounts")

    late_retry = shopify.post_webhook("app/uninstalled", load_payload("app_uninstalled"), triggered_at=fired)

    assert late_retry.status_code == 200
    db.session.expire_all()
    assert shop.is_installed
    assert crypto.decrypt(shop.access_token_ciphertext or "") == "shpat_after_reinstall"
