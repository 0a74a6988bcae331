"""The OAuth install flow end to end, with ``responses`` playing Shopify's token endpoint."""

from __future__ import annotations

import datetime as dt
import time
import typing as t
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import OAuthState
from referral_plugin.models import Shop
from referral_plugin.security import crypto
from tests.shopify_actions import API_KEY
from tests.shopify_actions import API_SECRET
from tests.shopify_actions import OTHER_SHOP
from tests.shopify_actions import SHOP
from tests.shopify_actions import signed_admin_query

TOKEN_URL = f"https://{SHOP}/admin/oauth/access_token"
ACCESS_TOKEN = "shpat_plaintext_access_0123456789abcdef"
REFRESH_TOKEN = "shprt_plaintext_refresh_0123456789abcdef"
SCOPES = "read_customers,write_customers,read_orders,write_discounts,write_app_proxy"
GRANT = {
    "access_token": ACCESS_TOKEN,
    "scope": SCOPES,
    "expires_in": 3600,
    "refresh_token": REFRESH_TOKEN,
    "refresh_token_expires_in": 7776000,
}


def _get(client: FlaskClient, path: str, params: t.Mapping[str, str]) -> t.Any:
    return client.get(f"{path}?{urlencode(params)}")


def start_install(client: FlaskClient, shop: str = SHOP) -> str:
    """Run ``/auth/install`` as Shopify sends it and return the state nonce it issued."""
    response = _get(client, "/auth/install", signed_admin_query({"shop": shop}))
    assert response.status_code == 302, response.get_data(as_text=True)
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return query["state"][0]


def callback(client: FlaskClient, state: str, *, shop: str = SHOP, code: str = "0907a61c0c8d55e99db179b68161bc00",
             secret: str = API_SECRET, timestamp: int | None = None) -> t.Any:
    """Hit ``/auth/callback`` as Shopify redirects the merchant there."""
    params = {"code": code, "shop": shop, "state": state, "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvdGVzdC1zaG9w"}
    if timestamp is not None:
        params["timestamp"] = str(timestamp)
    return _get(client, "/auth/callback", signed_admin_query(params, secret))


def shop_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Shop)) or 0


# --- /auth/install ---------------------------------------------------------------------------------


def test_install_redirects_to_grant_screen_with_state(client: FlaskClient) -> None:
    """A signed install request is sent to the shop's grant screen with client id, scopes, callback and state."""
    response = _get(client, "/auth/install", signed_admin_query({"shop": SHOP}))
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", SHOP, "/admin/oauth/authorize")
    query = parse_qs(location.query)
    assert query["client_id"] == [API_KEY]
    assert query["scope"] == [SCOPES]
    assert query["redirect_uri"] == ["https://referrals.example.test/auth/callback"]
    state = query["state"][0]
    assert len(state) == 64 and int(state, 16) >= 0
    row = db.session.scalar(select(OAuthState).where(OAuthState.nonce == state))
    assert row is not None and row.shop_domain == SHOP and row.consumed_at is None


def test_install_sets_signed_lax_secure_state_cookie(client: FlaskClient) -> None:
    """The state also travels in a signed, HttpOnly, SameSite=Lax, Secure cookie that lasts minutes."""
    response = _get(client, "/auth/install", signed_admin_query({"shop": SHOP}))
    header = next(v for k, v in response.headers.items() if k == "Set-Cookie" and "shopify_app_state" in v)
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header and "Path=/auth" in header
    assert "Max-Age=600" in header
    state = parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]
    assert state not in header  # signed and encoded, not the bare nonce


def test_install_cookie_not_secure_on_plain_http(app_config: dict[str, t.Any]) -> None:
    """On a plain-http APP_URL (local development) the state cookie is not marked Secure."""
    from referral_plugin import create_app

    app_config["APP_URL"] = "http://127.0.0.1:5000"
    app = create_app(app_config)
    with app.app_context():
        db.create_all()
        response = _get(app.test_client(), "/auth/install", signed_admin_query({"shop": SHOP}))
        header = response.headers["Set-Cookie"]
        db.session.remove()
        db.drop_all()
        db.engine.dispose()
    assert response.status_code == 302 and "Secure" not in header


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ("bad-hmac", 401),
        ("no-hmac", 401),
        ("stale", 401),
        ("evil-shop", 400),
        ("admin-path-shop", 400),
    ],
    ids=["bad-hmac", "no-hmac", "stale-timestamp", "not-a-shop", "shop-with-path"],
)
def test_install_rejects_without_redirect(client: FlaskClient, params: t.Any, status: int) -> None:
    """Bad hmac, stale timestamp or a bad shop is a 4xx page, never a redirect, and issues no state."""
    if params == "bad-hmac":
        params = {"shop": SHOP, "timestamp": str(int(time.time())), "hmac": "0" * 64}
    elif params == "no-hmac":
        params = {"shop": SHOP, "timestamp": str(int(time.time()))}
    elif params == "stale":
        params = signed_admin_query({"shop": SHOP, "timestamp": str(int(time.time()) - 600)})
    elif params == "evil-shop":
        params = signed_admin_query({"shop": "evil.example"})
    elif params == "admin-path-shop":
        params = signed_admin_query({"shop": "test-shop.myshopify.com.evil.example/x"})
    response = _get(client, "/auth/install", params)
    assert response.status_code == status
    assert "Location" not in response.headers
    assert db.session.scalar(select(func.count()).select_from(OAuthState)) == 0


# --- /auth/callback: the happy path -----------------------------------------------------------------


def test_callback_exchanges_code_and_installs(
    app: Flask, client: FlaskClient, mocked_responses: responses.RequestsMock
) -> None:
    """The code is exchanged for an expiring offline token, stored encrypted, and the merchant enters the app."""
    mocked_responses.post(TOKEN_URL, json=GRANT)
    state = start_install(client)
    before = dt.datetime.now(dt.UTC)

    response = callback(client, state)

    assert response.status_code == 302
    assert response.headers["Location"] == f"https://admin.shopify.com/store/test-shop/apps/{API_KEY}"
    sent = parse_qs(mocked_responses.calls[0].request.body)
    assert sent["code"] == ["0907a61c0c8d55e99db179b68161bc00"]
    assert sent["client_id"] == [API_KEY] and sent["client_secret"] == [API_SECRET]
    assert sent["expiring"] == ["1"]

    shop = db.session.scalar(select(Shop).where(Shop.shopify_domain == SHOP))
    assert shop is not None and shop.is_installed
    assert shop.access_token_ciphertext != ACCESS_TOKEN
    assert crypto.decrypt(shop.access_token_ciphertext or "") == ACCESS_TOKEN
    assert crypto.decrypt(shop.refresh_token_ciphertext or "") == REFRESH_TOKEN
    assert shop.scopes == SCOPES
    assert shop.access_token_expires_at is not None
    assert dt.timedelta(minutes=59) < shop.access_token_expires_at - before < dt.timedelta(minutes=61)
    assert shop.refresh_token_expires_at is not None
    assert shop.refresh_token_expires_at - before > dt.timedelta(days=89)
    consumed = db.session.scalar(select(OAuthState).where(OAuthState.nonce == state))
    assert consumed is not None and consumed.consumed_at is not None


def test_callback_creates_the_default_campaign(client: FlaskClient, mocked_responses: responses.RequestsMock) -> None:
    """A newly installed shop has its active default campaign at once."""
    mocked_responses.post(TOKEN_URL, json=GRANT)
    callback(client, start_install(client))
    shop = db.session.scalar(select(Shop).where(Shop.shopify_domain == SHOP))
    assert shop is not None
    defaults = db.session.scalars(
        select(Campaign).where(Campaign.shop_id == shop.id, Campaign.is_default.is_(True))
    ).all()
    assert len(defaults) == 1


def test_tokens_never_stored_in_plaintext(
    app: Flask, client: FlaskClient, mocked_responses: responses.RequestsMock
) -> None:
    """Neither the access nor the refresh token appears anywhere in the database, as rows or as file bytes."""
    mocked_responses.post(TOKEN_URL, json=GRANT)
    callback(client, start_install(client))
    db.session.commit()

    for table in db.metadata.sorted_tables:
        for row in db.session.execute(text(f"SELECT * FROM {table.name}")):
            dumped = repr(tuple(row))
            assert ACCESS_TOKEN not in dumped and REFRESH_TOKEN not in dumped, table.name

    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///"):
        db.session.remove()
        db.engine.dispose()
        path = Path(uri.removeprefix("sqlite:///"))
        files = [p for p in path.parent.glob(path.name + "*") if p.is_file()]
        assert path in files
        for file in files:
            data = file.read_bytes()
            assert ACCESS_TOKEN.encode() not in data and REFRESH_TOKEN.encode() not in data, file


def test_callback_reinstalls_an_uninstalled_shop(
    client: FlaskClient, mocked_responses: responses.RequestsMock
) -> None:
    """A shop that uninstalled (tokens gone, marked revoked) comes back fully installed."""
    now = dt.datetime.now(dt.UTC)
    db.session.add(Shop(shopify_domain=SHOP, uninstalled_at=now, token_revoked_at=now, installed_at=now))
    db.session.commit()
    mocked_responses.post(TOKEN_URL, json={"access_token": ACCESS_TOKEN, "scope": SCOPES})

    assert callback(client, start_install(client)).status_code == 302

    shop = db.session.scalar(select(Shop).where(Shop.shopify_domain == SHOP))
    assert shop is not None and shop.is_installed
    assert shop.uninstalled_at is None and shop.token_revoked_at is None
    assert shop.access_token_expires_at is None and shop.refresh_token_ciphertext is None
    assert shop_count() == 1


# --- /auth/callback: every failure makes no token request and stores nothing -----------------------


def _assert_nothing_stored(mocked: responses.RequestsMock, *, calls: int = 0) -> None:
    assert len(mocked.calls) == calls
    db.session.expire_all()
    shop = db.session.scalar(select(Shop).where(Shop.shopify_domain == SHOP))
    assert shop is None or shop.access_token_ciphertext is None


def test_callback_wrong_state(client: FlaskClient, mocked_responses: responses.RequestsMock) -> None:
    """A state the app never issued is 403 and no token is requested."""
    start_install(client)
    response = callback(client, "f" * 64)
    assert response.status_code == 403
    _assert_nothing_stored(mocked_responses)


def test_callback_wrong_state_without_cookie(app: Flask, mocked_responses: responses.RequestsMock) -> None:
    """Without the cookie (iframe installs), the server-side nonce alone decides: a forged one is 403."""
    client = app.test_client()
    start_install(client)
    fresh = app.test_client()
    assert callback(fresh, "e" * 64).status_code == 403
    _assert_nothing_stored(mocked_responses)


def test_callback_state_without_cookie_accepted(app: Flask, mocked_responses: responses.RequestsMock) -> None:
    """A real server-side nonce works even when the browser did not send the cookie back."""
    mocked_responses.post(TOKEN_URL, json=GRANT)
    state = start_install(app.test_client())
    assert callback(app.test_client(), state).status_code == 302


def test_callback_reused_state(client: FlaskClient, mocked_responses: responses.RequestsMock) -> None:
    """A state works once: replaying the callback is 403 and makes no second token request."""
    mocked_responses.post(TOKEN_URL, json=GRANT)
    state = start_install(client)
    assert callback(client, state).status_code == 302
    shop = db.session.scalar(select(Shop).where(Shop.shopify_domain == SHOP))
    assert shop is not None
    shop.access_token_ciphertext = None
    db.session.commit()

    response = callback(client, state, code="another-code")
    assert response.status_code == 403
    _assert_nothing_stored(mocked_responses, calls=1)


def test_callback_state_of_another_shop(client: FlaskClient, mocked_responses: responses.RequestsMock) -> None:
    """A state issued for one shop cannot finish another shop's install."""
    state = start_install(client, OTHER_SHOP)
    client.delete_cookie("shopify_app_state", path="/auth")
    assert callback(client, state, shop=SHOP).status_code == 403
    _assert_nothing_stored(mocked_responses)


def test_callback_cookie_mismatch(app: Flask, mocked_responses: responses.RequestsMock) -> None:
    """A browser whose cookie holds a different state than the callback's is refused (login CSRF)."""
    attacker, victim = app.test_client(), app.test_client()
    attacker_state = start_install(attacker)
    start_install(victim)
    assert callback(victim, attacker_state).status_code == 403
    _assert_nothing_stored(mocked_responses)
    row = db.session.scalar(select(OAuthState).where(OAuthState.nonce == attacker_state))
    assert row is not None and row.consumed_at is None


def test_callback_expired_state(client: FlaskClient, mocked_responses: responses.RequestsMock) -> None:
    """A state older than ten minutes is refused."""
    state = start_install(client)
    row = db.session.scalar(select(OAuthState).where(OAuthState.nonce == state))
    assert row is not None
    row.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=11)
    db.session.commit()
    client.delete_cookie("shopify_app_state", path="/auth")
    assert callback(client, state).status_code == 403
    _assert_nothing_stored(mocked_responses)


def test_callback_bad_hmac(client: FlaskClient, mocked_responses: responses.RequestsMock) -> None:
    """A callback not signed with the app's secret is 401 and no token is requested."""
    state = start_install(client)
    response = callback(client, state, secret="not-the-secret")
    assert response.status_code == 401
    _assert_nothing_stored(mocked_responses)
    row = db.session.scalar(select(OAuthState).where(OAuthState.nonce == state))
    assert row is not None and row.consumed_at is None


def test_callback_stale_timestamp(client: FlaskClient, mocked_responses: responses.RequestsMock) -> None:
    """A correctly signed but stale callback is 401 and no token is requested."""
    state = start_install(client)
    response = callback(client, state, timestamp=int(time.time()) - 3600)
    assert response.status_code == 401
    _assert_nothing_stored(mocked_responses)


def test_callback_tampered_shop(client: FlaskClient, mocked_responses: responses.RequestsMock) -> None:
    """Changing the shop after Shopify signed the query breaks the hmac: 401, no token request."""
    state = start_install(client)
    params = signed_admin_query({"code": "abc", "shop": SHOP, "state": state})
    params["shop"] = OTHER_SHOP
    assert _get(client, "/auth/callback", params).status_code == 401
    _assert_nothing_stored(mocked_responses)


def test_callback_without_code(client: FlaskClient, mocked_responses: responses.RequestsMock) -> None:
    """A signed callback with no code is a 400."""
    state = start_install(client)
    params = signed_admin_query({"shop": SHOP, "state": state})
    assert _get(client, "/auth/callback", params).status_code == 400
    _assert_nothing_stored(mocked_responses)


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 400, "json": {"error": "invalid_request", "error_description": "code was already used"}},
        {"status": 401, "json": {"errors": "[API] Invalid API key or access token"}},
        {"status": 500, "body": "<html>oops</html>"},
        {"status": 200, "json": {"scope": SCOPES}},
        {"status": 200, "body": "not json"},
        {"body": requests.ConnectionError("connection refused")},
        {"body": requests.Timeout("read timed out")},
    ],
    ids=["invalid-request", "unauthorized", "server-error", "no-access-token", "not-json", "network-down", "timeout"],
)
def test_callback_failed_exchange_stores_nothing(
    client: FlaskClient, mocked_responses: responses.RequestsMock, answer: dict[str, t.Any]
) -> None:
    """When Shopify refuses or cannot be reached, the merchant sees a clear 502 page and nothing is stored."""
    mocked_responses.post(TOKEN_URL, **answer)
    response = callback(client, start_install(client))
    assert response.status_code == 502
    page = response.get_data(as_text=True)
    assert "could not finish installing" in page and SHOP in page
    assert "Location" not in response.headers
    _assert_nothing_stored(mocked_responses, calls=1)
    assert shop_count() == 0


def test_install_with_non_ascii_hmac_is_401(client: FlaskClient) -> None:
    """An hmac with non-ASCII characters is a bad signature (401), not a server error."""
    response = _get(client, "/auth/install", {"shop": SHOP, "timestamp": str(int(time.time())), "hmac": "é" * 64})
    assert response.status_code == 401
    assert "Location" not in response.headers
