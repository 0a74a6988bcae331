"""The embedded-admin guard: session tokens, App Bridge retry/bounce, CSP, install redirect, token exchange."""

from __future__ import annotations

import datetime as dt
import time
import typing as t
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
import responses
from flask import Flask
from flask import Response
from flask import g
from flask import jsonify
from flask.testing import FlaskClient
from sqlalchemy import select

from referral_plugin.auth.embedded import embedded_required
from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Shop
from referral_plugin.security import crypto
from tests.conftest import make_shop
from tests.shopify_actions import API_KEY
from tests.shopify_actions import API_SECRET
from tests.shopify_actions import OTHER_SHOP
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import session_token
from tests.shopify_actions import signed_admin_query

RETRY = "X-Shopify-Retry-Invalid-Session-Request"
TOKEN_URL = f"https://{SHOP}/admin/oauth/access_token"
CSP = f"frame-ancestors https://{SHOP} https://admin.shopify.com;"


@pytest.fixture
def guarded(app: Flask) -> Flask:
    """Mount a document view and a JSON view behind ``embedded_required``."""

    @embedded_required
    def page() -> str:
        return f"dashboard of {g.shop.shopify_domain} for user {g.session_claims['sub']}"

    @embedded_required
    def api() -> Response:
        return jsonify(shop=g.shop.shopify_domain)

    @embedded_required
    def page_with_csp() -> Response:
        response = Response("ok")
        response.headers["Content-Security-Policy"] = "default-src 'self'"
        return response

    app.add_url_rule("/_guarded/page", "guarded_page", page)
    app.add_url_rule("/_guarded/api/data", "guarded_api", api)
    app.add_url_rule("/_guarded/csp", "guarded_csp", page_with_csp)
    return app


def _page(client: FlaskClient, **params: str) -> t.Any:
    return client.get(f"/_guarded/page?{urlencode(params)}")


# --- valid tokens ---------------------------------------------------------------------------------


def test_document_load_with_id_token(guarded: Flask, client: FlaskClient, shop: Shop, shopify: ShopifyActions) -> None:
    """A document load with a valid ``id_token`` renders the token's shop and sets the frame-ancestors CSP."""
    response = _page(client, id_token=shopify.session_token(), shop=SHOP, host="abc")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == f"dashboard of {SHOP} for user 42"
    assert response.headers["Content-Security-Policy"] == CSP


def test_xhr_with_bearer(guarded: Flask, client: FlaskClient, shop: Shop, shopify: ShopifyActions) -> None:
    """An App Bridge fetch with ``Authorization: Bearer`` gets the token's shop."""
    response = client.get("/_guarded/api/data", headers={"Authorization": f"Bearer {shopify.session_token()}"})
    assert response.status_code == 200
    assert response.get_json() == {"shop": SHOP}


def test_never_another_shops_data(guarded: Flask, client: FlaskClient, shop: Shop, shopify: ShopifyActions) -> None:
    """The shop comes from the signed token only: a ``shop`` parameter naming another shop changes nothing."""
    make_shop(OTHER_SHOP)
    response = _page(client, id_token=shopify.session_token(OTHER_SHOP), shop=SHOP)
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith(f"dashboard of {OTHER_SHOP}")
    assert f"https://{SHOP}" not in response.headers["Content-Security-Policy"]


def test_existing_csp_keeps_its_directives(guarded: Flask, client: FlaskClient, shop: Shop,
                                           shopify: ShopifyActions) -> None:
    """A view's own CSP keeps its directives and gains frame-ancestors."""
    response = client.get(f"/_guarded/csp?id_token={shopify.session_token()}")
    assert response.headers["Content-Security-Policy"] == f"default-src 'self'; {CSP}"


# --- invalid tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        "expired",
        "wrong-secret",
        "other-app",
    ],
    ids=["missing", "garbage", "basic-auth", "expired", "wrong-secret", "other-app"],
)
def test_xhr_invalid_token_asks_app_bridge_to_retry(
    guarded: Flask, client: FlaskClient, shop: Shop, shopify: ShopifyActions, headers: t.Any
) -> None:
    """An invalid or missing bearer token is 401 JSON with the retry header, and no data."""
    if headers == "expired":
        headers = {"Authorization": f"Bearer {shopify.session_token(exp=int(time.time()) - 60)}"}
    elif headers == "wrong-secret":
        headers = {"Authorization": f"Bearer {session_token(secret='nope')}"}
    elif headers == "other-app":
        headers = {"Authorization": f"Bearer {shopify.session_token(aud='another-app')}"}
    response = client.get("/_guarded/api/data", headers=headers)
    assert response.status_code == 401
    assert response.headers[RETRY] == "1"
    body = response.get_json()
    assert body["error"]["code"] == "INVALID_SESSION_TOKEN"
    assert SHOP not in response.get_data(as_text=True)


def test_document_invalid_token_renders_bounce_page(
    guarded: Flask, client: FlaskClient, shop: Shop, shopify: ShopifyActions
) -> None:
    """A document with an expired ``id_token`` gets the App Bridge page that reloads the URL with a fresh one."""
    expired = shopify.session_token(exp=int(time.time()) - 60)
    response = _page(client, embedded="1", host="abc", id_token=expired, shop=SHOP)
    assert response.status_code == 401
    assert response.headers[RETRY] == "1"
    page = response.get_data(as_text=True)
    assert f'<script data-api-key="{API_KEY}" src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>' \
        in page
    assert "dashboard of" not in page
    assert expired not in page
    reload_url = "https://referrals.example.test/_guarded/page?embedded=1&amp;host=abc&amp;shop=test-shop.myshopify.com"
    assert f'data-shopify-reload="{reload_url}"' in page
    assert response.headers["Content-Security-Policy"] == CSP


def test_bounce_page_csp_ignores_a_bad_shop(guarded: Flask, client: FlaskClient) -> None:
    """The bounce page names a shop in its CSP only after sanitizing it."""
    response = _page(client, shop="evil.example")
    assert response.status_code == 401
    assert response.headers["Content-Security-Policy"] == "frame-ancestors https://admin.shopify.com;"


def test_bounce_page_escapes_the_reload_url(guarded: Flask, client: FlaskClient) -> None:
    """Query values end up escaped in the page, never as markup."""
    response = _page(client, host='"><script>alert(1)</script>')
    page = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page


# --- document loads without a token ---------------------------------------------------------------


def test_signed_load_for_new_shop_redirects_to_install(guarded: Flask, client: FlaskClient) -> None:
    """Shopify's signed app load for a shop that is not installed goes to /auth/install with the same query."""
    params = signed_admin_query({"shop": SHOP, "host": "abc"})
    response = client.get(f"/_guarded/page?{urlencode(params)}")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/auth/install?")
    followed = client.get(location)
    assert followed.status_code == 302
    assert followed.headers["Location"].startswith(f"https://{SHOP}/admin/oauth/authorize?")


def test_signed_load_for_uninstalled_shop_redirects_to_install(guarded: Flask, client: FlaskClient) -> None:
    """A shop that uninstalled is sent through install again."""
    db.session.add(Shop(shopify_domain=SHOP, uninstalled_at=dt.datetime.now(dt.UTC)))
    db.session.commit()
    params = signed_admin_query({"shop": SHOP})
    assert client.get(f"/_guarded/page?{urlencode(params)}").headers["Location"].startswith("/auth/install?")


def test_signed_load_for_installed_shop_bounces(guarded: Flask, client: FlaskClient, shop: Shop) -> None:
    """An installed shop's load without ``id_token`` gets the bounce page, not an install."""
    params = signed_admin_query({"shop": SHOP})
    response = client.get(f"/_guarded/page?{urlencode(params)}")
    assert response.status_code == 401
    assert "app-bridge.js" in response.get_data(as_text=True)


@pytest.mark.parametrize("secret", ["forged-secret", None], ids=["bad-hmac", "stale"])
def test_unsigned_load_never_redirects_to_install(guarded: Flask, client: FlaskClient, secret: str | None) -> None:
    """A load whose hmac or timestamp does not verify gets the bounce page, never a redirect to that shop."""
    if secret is None:
        params = signed_admin_query({"shop": SHOP, "timestamp": str(int(time.time()) - 3600)})
    else:
        params = signed_admin_query({"shop": SHOP}, secret)
    response = client.get(f"/_guarded/page?{urlencode(params)}")
    assert response.status_code == 401
    assert "Location" not in response.headers


# --- token exchange (managed installation) -------------------------------------------------------------


GRANT = {
    "access_token": "shpat_exchanged_access_token_value",
    "scope": "read_customers,write_customers,read_orders,write_discounts,write_app_proxy",
    "expires_in": 3600,
    "refresh_token": "shprt_exchanged_refresh_token_value",
    "refresh_token_expires_in": 7776000,
}


def test_token_exchange_installs_unknown_shop(
    guarded: Flask, client: FlaskClient, shopify: ShopifyActions, mocked_responses: responses.RequestsMock
) -> None:
    """A valid session token for a shop we never saw is exchanged for an expiring offline token and installed."""
    mocked_responses.post(TOKEN_URL, json=GRANT)
    token = shopify.session_token()
    response = _page(client, id_token=token, shop=SHOP)

    assert response.status_code == 200
    sent = parse_qs(mocked_responses.calls[0].request.body)
    assert sent["grant_type"] == ["urn:ietf:params:oauth:grant-type:token-exchange"]
    assert sent["subject_token"] == [token]
    assert sent["subject_token_type"] == ["urn:ietf:params:oauth:token-type:id_token"]
    assert sent["requested_token_type"] == ["urn:shopify:params:oauth:token-type:offline-access-token"]
    assert sent["expiring"] == ["1"]
    assert sent["client_id"] == [API_KEY] and sent["client_secret"] == [API_SECRET]
    shop = db.session.scalar(select(Shop).where(Shop.shopify_domain == SHOP))
    assert shop is not None and shop.is_installed
    assert crypto.decrypt(shop.access_token_ciphertext or "") == GRANT["access_token"]
    assert crypto.decrypt(shop.refresh_token_ciphertext or "") == GRANT["refresh_token"]
    assert db.session.scalar(select(Campaign).where(Campaign.shop_id == shop.id, Campaign.is_default.is_(True)))

    # The next request uses the stored token: no second exchange.
    again = client.get("/_guarded/api/data", headers={"Authorization": f"Bearer {shopify.session_token()}"})
    assert again.status_code == 200 and len(mocked_responses.calls) == 1


def test_token_exchange_for_revoked_shop(
    guarded: Flask, client: FlaskClient, shop: Shop, shopify: ShopifyActions, mocked_responses: responses.RequestsMock
) -> None:
    """A shop whose token Shopify refused gets a new one on its next embedded load."""
    shop.token_revoked_at = dt.datetime.now(dt.UTC)
    db.session.commit()
    mocked_responses.post(TOKEN_URL, json=GRANT)
    response = client.get("/_guarded/api/data", headers={"Authorization": f"Bearer {shopify.session_token()}"})
    assert response.status_code == 200
    db.session.refresh(shop)
    assert shop.token_revoked_at is None and shop.is_installed


def test_token_exchange_invalid_subject_token(
    guarded: Flask, client: FlaskClient, shopify: ShopifyActions, mocked_responses: responses.RequestsMock
) -> None:
    """Shopify's ``invalid_subject_token`` is answered with 401 and the retry header; nothing is stored."""
    mocked_responses.post(TOKEN_URL, status=400, json={"error": "invalid_subject_token"})
    response = client.get("/_guarded/api/data", headers={"Authorization": f"Bearer {shopify.session_token()}"})
    assert response.status_code == 401
    assert response.headers[RETRY] == "1"
    assert db.session.scalar(select(Shop).where(Shop.shopify_domain == SHOP)) is None


def test_token_exchange_invalid_subject_token_on_document(
    guarded: Flask, client: FlaskClient, shopify: ShopifyActions, mocked_responses: responses.RequestsMock
) -> None:
    """On a document load the same failure bounces through App Bridge for a fresh token."""
    mocked_responses.post(TOKEN_URL, status=400, json={"error": "invalid_subject_token"})
    response = _page(client, id_token=shopify.session_token(), shop=SHOP)
    assert response.status_code == 401
    assert "app-bridge.js" in response.get_data(as_text=True)


def test_token_exchange_other_failure_is_502(
    guarded: Flask, client: FlaskClient, shopify: ShopifyActions, mocked_responses: responses.RequestsMock
) -> None:
    """``app_not_installed`` (an uninstall racing the load) is a 502 and stores nothing."""
    mocked_responses.post(TOKEN_URL, status=400, json={"error": "app_not_installed"})
    response = client.get("/_guarded/api/data", headers={"Authorization": f"Bearer {shopify.session_token()}"})
    assert response.status_code == 502
    assert response.get_json()["error"]["code"] == "TOKEN_REQUEST_FAILED"
    assert db.session.scalar(select(Shop).where(Shop.shopify_domain == SHOP)) is None


def test_invalid_token_makes_no_exchange(
    guarded: Flask, client: FlaskClient, shopify: ShopifyActions, mocked_responses: responses.RequestsMock
) -> None:
    """A token that fails our own checks is never sent to Shopify."""
    response = client.get("/_guarded/api/data",
                          headers={"Authorization": f"Bearer {session_token(secret='forged')}"})
    assert response.status_code == 401
    assert len(mocked_responses.calls) == 0


def test_outbound_base_url_is_configurable(
    app_config: dict[str, t.Any], mocked_responses: responses.RequestsMock
) -> None:
    """SHOPIFY_BASE_URL_TEMPLATE points token calls at a stand-in Shopify (benchmarks, end-to-end runs)."""
    from referral_plugin import create_app

    app_config["SHOPIFY_BASE_URL_TEMPLATE"] = "http://127.0.0.1:9999/{shop}"
    app = create_app(app_config)
    mocked_responses.post(f"http://127.0.0.1:9999/{SHOP}/admin/oauth/access_token", json=GRANT)

    @embedded_required
    def view() -> str:
        return g.shop.shopify_domain

    app.add_url_rule("/_guarded/base", "base", view)
    with app.app_context():
        db.create_all()
        try:
            response = app.test_client().get(f"/_guarded/base?id_token={session_token()}")
            assert response.status_code == 200 and response.get_data(as_text=True) == SHOP
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


# --- /auth/session-token ---------------------------------------------------------------------------


def test_session_token_bounce_route(client: FlaskClient) -> None:
    """The bounce route renders App Bridge with the app-local reload target."""
    target = "https://referrals.example.test/admin?shop=test-shop.myshopify.com"
    response = client.get(f"/auth/session-token?{urlencode({'shop': SHOP, 'shopify-reload': target})}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "app-bridge.js" in page and f'data-api-key="{API_KEY}"' in page
    assert response.headers["Content-Security-Policy"] == CSP


def test_session_token_bounce_route_refuses_foreign_reload(client: FlaskClient) -> None:
    """A ``shopify-reload`` pointing off the app is replaced by the app's own URL (no open redirect)."""
    response = client.get(f"/auth/session-token?{urlencode({'shopify-reload': 'https://evil.example/x'})}")
    page = response.get_data(as_text=True)
    assert "evil.example" not in page
    assert urlsplit("https://referrals.example.test/").netloc in page


# --- the real dashboard routes (the contract's surface) ----------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/admin"])
def test_dashboard_signed_load_for_new_shop_goes_to_install(client: FlaskClient, path: str) -> None:
    """Shopify's signed app load for a shop that never installed is sent to /auth/install."""
    params = signed_admin_query({"shop": SHOP, "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvdGVzdC1zaG9w"})
    response = client.get(f"{path}?{urlencode(params)}")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/install?")


@pytest.mark.parametrize("path", ["/", "/admin"])
def test_dashboard_managed_install_via_token_exchange(
    client: FlaskClient, shopify: ShopifyActions, mocked_responses: responses.RequestsMock, path: str
) -> None:
    """The first embedded load after Shopify's managed install exchanges the token and shows the dashboard."""
    mocked_responses.post(TOKEN_URL, json=GRANT)
    response = client.get(f"{path}?{urlencode({'id_token': shopify.session_token(), 'shop': SHOP})}")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"].endswith(CSP)
    shop = db.session.scalar(select(Shop).where(Shop.shopify_domain == SHOP))
    assert shop is not None and shop.is_installed


def test_dashboard_without_token_never_shows_data(client: FlaskClient, shop: Shop) -> None:
    """Without a session token the dashboard is the bounce page (401), whatever shop the query names."""
    response = client.get(f"/admin?shop={SHOP}")
    assert response.status_code == 401
    assert "app-bridge.js" in response.get_data(as_text=True)


def test_demo_mode_never_calls_shopify(app_config: dict[str, t.Any], mocked_responses: responses.RequestsMock) -> None:
    """In demo mode a seeded shop opens without a token exchange, and an unknown shop gets no data."""
    from referral_plugin import create_app
    from referral_plugin.config import DEMO_API_KEY
    from referral_plugin.config import DEMO_API_SECRET
    from referral_plugin.config import DEMO_SHOP_DOMAIN

    for key in ("SHOPIFY_API_KEY", "SHOPIFY_API_SECRET"):
        app_config.pop(key)
    app = create_app(app_config)
    assert app.config["DEMO_MODE"]

    @embedded_required
    def view() -> str:
        return g.shop.shopify_domain

    app.add_url_rule("/_guarded/demo", "demo_guarded", view)
    with app.app_context():
        db.create_all()
        try:
            db.session.add(Shop(shopify_domain=DEMO_SHOP_DOMAIN))
            db.session.commit()
            client = app.test_client()
            demo = session_token(DEMO_SHOP_DOMAIN, secret=DEMO_API_SECRET, aud=DEMO_API_KEY)
            response = client.get(f"/_guarded/demo?id_token={demo}")
            assert response.status_code == 200 and response.get_data(as_text=True) == DEMO_SHOP_DOMAIN
            stranger = session_token(SHOP, secret=DEMO_API_SECRET, aud=DEMO_API_KEY)
            assert client.get(f"/_guarded/demo?id_token={stranger}").status_code == 401
            assert len(mocked_responses.calls) == 0
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()
