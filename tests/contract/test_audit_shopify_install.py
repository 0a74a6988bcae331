"""Audit as Shopify: reinstalls racing a delayed app/uninstalled, through OAuth and through token exchange."""

from __future__ import annotations

import datetime as dt
import typing as t
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import responses as responses_lib
from flask.testing import FlaskClient
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Shop
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload
from tests.shopify_actions import session_token
from tests.shopify_actions import signed_admin_query

TOKEN_URL = f"https://{SHOP}/admin/oauth/access_token"
SCOPES = "read_customers,write_customers,read_orders,write_discounts,write_app_proxy"


def _oauth_install(client: FlaskClient, access_token: str) -> None:
    with responses_lib.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.add(responses_lib.POST, TOKEN_URL, json={"access_token": access_token, "scope": SCOPES})
        begin = client.get("/auth/install", query_string=signed_admin_query({"shop": SHOP}))
        state = parse_qs(urlsplit(begin.headers["Location"]).query)["state"][0]
        done = client.get("/auth/callback", query_string=signed_admin_query({"shop": SHOP, "code": "c0de",
                                                                            "state": state}))
        assert done.status_code == 302, done.get_data(as_text=True)


def _shop() -> Shop:
    db.session.expire_all()
    return db.session.execute(select(Shop)).scalar_one()


def test_delayed_uninstall_does_not_kill_a_reinstall_through_oauth(client: FlaskClient,
                                                                    shopify: ShopifyActions) -> None:
    """Uninstall (webhook delayed), reinstall through OAuth, then the old uninstall arrives: the shop stays installed.

    The first install's token still looked live when the merchant reinstalled, so nothing marked the shop
    uninstalled in between; the new grant itself proves an install after the uninstall fired.
    """
    _oauth_install(client, "shpat_first")
    uninstalled = dt.datetime.now(dt.UTC)
    _oauth_install(client, "shpat_second")
    response = shopify.post_webhook("app/uninstalled", load_payload("app_uninstalled"), triggered_at=uninstalled)
    assert response.status_code == 200
    assert _shop().is_installed


def test_delayed_uninstall_does_not_kill_a_token_exchange(client: FlaskClient, shopify: ShopifyActions) -> None:
    """After a 401 revoked the old token, the embedded load's token exchange is an install a stale uninstall spares."""
    _oauth_install(client, "shpat_first")
    uninstalled = dt.datetime.now(dt.UTC)
    shop = _shop()
    # What a 401 from the Admin API does (installs.mark_token_revoked), as a merchant's reinstall leaves it.
    shop.token_revoked_at = dt.datetime.now(dt.UTC)
    db.session.commit()
    with responses_lib.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.add(responses_lib.POST, TOKEN_URL, json={"access_token": "shpat_exchanged", "scope": SCOPES})
        load = client.get("/admin", query_string={"id_token": session_token(SHOP), "shop": SHOP})
        assert load.status_code == 200
    response = shopify.post_webhook("app/uninstalled", load_payload("app_uninstalled"), triggered_at=uninstalled)
    assert response.status_code == 200
    assert _shop().is_installed


def test_uninstall_after_the_latest_install_applies(client: FlaskClient, shopify: ShopifyActions) -> None:
    """An app/uninstalled fired after the latest install still removes the token."""
    _oauth_install(client, "shpat_first")
    response = shopify.post_webhook("app/uninstalled", load_payload("app_uninstalled"),
                                    triggered_at=dt.datetime.now(dt.UTC))
    assert response.status_code == 200
    shop = _shop()
    assert not shop.is_installed and shop.access_token_ciphertext is None
    assert t.cast(dt.datetime, shop.uninstalled_at) is not None
