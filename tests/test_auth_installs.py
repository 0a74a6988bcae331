"""``installs.install_shop``: create or reinstall a shop, encrypted tokens, one default campaign."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from referral_plugin import installs
from referral_plugin.errors import InvalidShopDomain
from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Shop
from referral_plugin.security import crypto
from tests.shopify_actions import SHOP


def _defaults(shop: Shop) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Campaign).where(Campaign.shop_id == shop.id, Campaign.is_default.is_(True))
    ) or 0


def test_install_creates_shop(app: Flask) -> None:
    """A new shop is stored with its encrypted tokens, expiries, scopes and one default campaign."""
    shop = installs.install_shop(SHOP, "shpat_a", "read_orders", expires_in=3600, refresh_token="shprt_a",
                                 refresh_token_expires_in=86400)
    assert shop.id is not None and shop.is_installed and shop.installed_at is not None
    assert shop.scopes == "read_orders"
    assert crypto.decrypt(shop.access_token_ciphertext or "") == "shpat_a"
    assert crypto.decrypt(shop.refresh_token_ciphertext or "") == "shprt_a"
    assert shop.access_token_expires_at is not None and shop.refresh_token_expires_at is not None
    assert _defaults(shop) == 1


def test_install_normalizes_domain(app: Flask) -> None:
    """The shop is stored under its canonical domain."""
    shop = installs.install_shop("https://Test-Shop.myshopify.com/", "shpat_a", "read_orders")
    assert shop.shopify_domain == SHOP


def test_install_rejects_bad_domain(app: Flask) -> None:
    """A domain that is not a shop is refused and nothing is stored."""
    with pytest.raises(InvalidShopDomain):
        installs.install_shop("evil.example", "shpat_a", "read_orders")
    assert db.session.scalar(select(func.count()).select_from(Shop)) == 0


def test_reinstall_clears_flags_and_keeps_one_campaign(app: Flask) -> None:
    """Reinstalling after an uninstall and a revocation revives the same row, with still one default campaign."""
    first = installs.install_shop(SHOP, "shpat_a", "read_orders", expires_in=3600, refresh_token="shprt_a")
    first_id = first.id
    now = dt.datetime.now(dt.UTC)
    first.uninstalled_at = now
    first.token_revoked_at = now
    first.access_token_ciphertext = None
    db.session.commit()

    again = installs.install_shop(SHOP, "shpat_b", "read_orders,write_discounts")
    assert again.id == first_id
    assert again.uninstalled_at is None and again.token_revoked_at is None and again.is_installed
    assert crypto.decrypt(again.access_token_ciphertext or "") == "shpat_b"
    # A non-expiring grant replaces the expiring one entirely.
    assert again.access_token_expires_at is None and again.refresh_token_ciphertext is None
    assert again.scopes == "read_orders,write_discounts"
    assert _defaults(again) == 1
    assert db.session.scalar(select(func.count()).select_from(Shop)) == 1


def test_has_live_token(app: Flask) -> None:
    """A token is live until it expires, or while an unexpired refresh token can renew it."""
    shop = installs.install_shop(SHOP, "shpat_a", "read_orders", expires_in=3600, refresh_token="shprt_a",
                                 refresh_token_expires_in=7200)
    now = dt.datetime.now(dt.UTC)
    assert installs.has_live_token(shop, now=now)
    assert installs.has_live_token(shop, now=now + dt.timedelta(seconds=5000))
    assert not installs.has_live_token(shop, now=now + dt.timedelta(seconds=8000))


@pytest.mark.parametrize(
    ("granted", "missing"),
    [
        ("read_customers,write_customers,read_orders,write_discounts,write_app_proxy", []),
        ("write_customers,read_orders,write_discounts,write_app_proxy", []),
        ("read_customers,read_orders", ["write_customers", "write_discounts", "write_app_proxy"]),
        ("", ["read_customers", "write_customers", "read_orders", "write_discounts", "write_app_proxy"]),
    ],
)
def test_missing_scopes(app: Flask, granted: str, missing: list[str]) -> None:
    """Scopes Shopify did not grant are reported; a write scope covers its read scope."""
    assert installs.missing_scopes(granted, app.config["SHOPIFY_SCOPES"]) == missing
