"""Audit as Shopify: the OAuth install driven with the published hmac vectors and odd token-endpoint answers."""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import responses as responses_lib
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Shop
from tests.conftest import app_with_tables
from tests.shopify_actions import SHOP
from tests.shopify_actions import signed_admin_query

TOKEN_URL = f"https://{SHOP}/admin/oauth/access_token"
SCOPES = "read_customers,write_customers,read_orders,write_discounts,write_app_proxy"
#: Far enough to accept the vectors' 2011-2023 timestamps.
ANY_AGE = 10**10


@pytest.fixture
def vector_app(app_config: dict[str, t.Any]) -> t.Iterator[Flask]:
    """Build an app whose freshness window admits the published vectors' old timestamps."""
    with app_with_tables({**app_config, "HMAC_TIMESTAMP_TOLERANCE": ANY_AGE}) as app:
        yield app


@pytest.mark.parametrize(("secret", "query", "status"), [
    ("hush", "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&timestamp=1337178173"
             "&hmac=4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20", 302),
    ("hush", "code=a94a110d86d2452eb3e2af4cfb8a3828&shop=some-shop.myshopify.com&timestamp=1337178173"
             "&hmac=2cb1a277650a659f1b11e92a4a64275b128e037f2c3390e3c8fd2d8721dac9e2", 302),
    ("my super secret key", "code=some%20code%20goes%20here&shop=the%20shop%20URL"
     "&state=some%20nonce%20passed%20from%20auth&timestamp=1700000000"
     "&hmac=10207991f5c2c65c114b70a3c3544ce1d00a236ea4ab034793de0d6407be9165", 400),
    ("hush", "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&timestamp=1337178174"
             "&hmac=4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20", 401),
])
def test_install_with_published_hmac_vectors(vector_app: Flask, secret: str, query: str, status: int) -> None:
    """Shopify's published admin-hmac vectors pass the signature check (a tampered one does not), end to end.

    The JS-form vector signs ``shop=the shop URL``: its signature is right, so the answer is the bad shop's 400.
    """
    vector_app.config["SHOPIFY_API_SECRET"] = secret
    response = vector_app.test_client().get(f"/auth/install?{query}")
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 302:
        assert response.headers["Location"].startswith("https://some-shop.myshopify.com/admin/oauth/authorize?")
    else:
        assert "Location" not in response.headers


def _install(client: FlaskClient, grant: dict[str, t.Any]) -> t.Any:
    with responses_lib.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.add(responses_lib.POST, TOKEN_URL, json=grant)
        begin = client.get("/auth/install", query_string=signed_admin_query({"shop": SHOP}))
        assert begin.status_code == 302
        state = parse_qs(urlsplit(begin.headers["Location"]).query)["state"][0]
        return client.get("/auth/callback", query_string=signed_admin_query({"shop": SHOP, "code": "c0de",
                                                                            "state": state}))


@pytest.mark.parametrize("lifetimes", [
    {"expires_in": 10**30}, {"expires_in": 1e300}, {"refresh_token": "shprt_x", "refresh_token_expires_in": 10**30},
    {"expires_in": -5},
], ids=["huge-int", "huge-float", "huge-refresh", "negative"])
def test_callback_with_absurd_token_lifetimes_installs(client: FlaskClient, lifetimes: dict[str, t.Any]) -> None:
    """A grant whose expiry is out of any datetime's range installs the shop (expiry unknown) instead of a 500."""
    response = _install(client, {"access_token": "shpat_odd", "scope": SCOPES, **lifetimes})
    assert response.status_code == 302, response.get_data(as_text=True)
    shop = db.session.execute(select(Shop)).scalar_one()
    assert shop.is_installed
    assert shop.access_token_expires_at is None


def test_callback_stores_expiring_token_and_refresh_token(client: FlaskClient) -> None:
    """An expiring offline token is stored with its expiry and refresh token (both encrypted)."""
    response = _install(client, {"access_token": "shpat_exp", "scope": SCOPES, "expires_in": 3600,
                                 "refresh_token": "shprt_exp", "refresh_token_expires_in": 7776000})
    assert response.status_code == 302
    shop = db.session.execute(select(Shop)).scalar_one()
    assert shop.access_token_expires_at is not None and shop.refresh_token_expires_at is not None
    assert shop.refresh_token_ciphertext and "shprt_exp" not in shop.refresh_token_ciphertext


@pytest.mark.parametrize("grant", [
    {"access_token": "shpat_\ud800", "scope": SCOPES}, {"access_token": "shpat x\n", "scope": SCOPES},
    {"access_token": ["shpat_list"], "scope": SCOPES},
], ids=["lone-surrogate", "whitespace", "not-a-string"])
def test_callback_with_unusable_access_token_is_502_and_stores_nothing(client: FlaskClient,
                                                                      grant: dict[str, t.Any]) -> None:
    """A grant whose access token could not be encrypted or sent back as a header fails cleanly: 502, no shop."""
    response = _install(client, grant)
    assert response.status_code == 502
    assert db.session.execute(select(Shop)).scalars().all() == []


@pytest.mark.parametrize("scope", ["read_\ud800", "read_orders," * 200, ["read_orders"]],
                         ids=["lone-surrogate", "longer-than-the-column", "not-text"])
def test_callback_with_odd_scope_or_refresh_token_still_installs(client: FlaskClient, scope: t.Any) -> None:
    """A scope that is not text (or cannot be stored), or an unusable refresh token, installs with neither."""
    response = _install(client, {"access_token": "shpat_ok", "scope": scope, "expires_in": 3600,
                                 "refresh_token": "shprt_\ud800"})
    assert response.status_code == 302
    shop = db.session.execute(select(Shop)).scalar_one()
    assert shop.is_installed and shop.scopes == "" and shop.refresh_token_ciphertext is None
