"""Every dashboard page and call needs a valid session token for the shop it shows."""

from __future__ import annotations

import time

import pytest

from referral_plugin.extensions import db
from referral_plugin.models import Shop
from tests.admin.conftest import Dashboard
from tests.admin.conftest import History
from tests.conftest import make_shop
from tests.shopify_actions import OTHER_SHOP
from tests.shopify_actions import ShopifyActions

PAGES = ["/", "/admin", "/admin/referrals", "/admin/review", "/admin/campaigns", "/admin/settings"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_with_a_valid_token_and_set_frame_ancestors(shop: Shop, dashboard: Dashboard, path: str) -> None:
    """A document load with a valid id_token renders and may be framed only by this shop's admin."""
    response = dashboard.get(path)
    assert response.status_code == 200
    assert "text/html" in response.content_type
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors https://test-shop.myshopify.com https://admin.shopify.com" in csp


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 120, "nbf": int(time.time()) - 200, "iat": int(time.time()) - 200},
        {"aud": "someone-elses-app"},
    ],
    ids=["expired", "wrong-audience"],
)
def test_bad_tokens_get_no_data(shop: Shop, client, shopify: ShopifyActions, claims: dict) -> None:
    """Expired or wrong-audience tokens get the bounce page (documents) or a retryable 401 (XHR)."""
    token = shopify.session_token(**claims)
    page = client.get("/admin", query_string={"id_token": token})
    assert page.status_code == 401
    assert "app-bridge.js" in page.get_data(as_text=True)
    assert "Referral revenue" not in page.get_data(as_text=True)
    api = client.get("/admin/api/summary", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401
    assert api.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"


def test_wrong_secret_is_refused(shop: Shop, client) -> None:
    """A token signed with another secret is a 401 with the retry header."""
    from tests.shopify_actions import session_token

    token = session_token(secret="not-the-secret")
    response = client.get("/admin/api/summary", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"


def test_missing_token_on_xhr_is_retryable_401(shop: Shop, client) -> None:
    """An API call without a token is a 401 App Bridge retries."""
    response = client.get("/admin/api/summary")
    assert response.status_code == 401
    assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"


def test_another_shops_token_sees_only_that_shop(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """A token for another installed shop shows that shop's (empty) numbers, never this shop's."""
    advocate, code = history.advocate("ann@example.com", "Ann")
    history.click(code, "2026-11-02 10:00")
    referral = history.referral(advocate, code, "cat@example.com", "2026-11-02 12:00")
    db.session.commit()
    make_shop(OTHER_SHOP)

    mine = dashboard.api("/admin/api/summary", start="2026-11-01", end="2026-11-07").get_json()
    theirs = dashboard.api("/admin/api/summary", shop=OTHER_SHOP, start="2026-11-01", end="2026-11-07").get_json()

    assert mine["clicks"] == 1 and theirs["clicks"] == 0
    log = dashboard.get("/admin/referrals", shop=OTHER_SHOP).get_data(as_text=True)
    assert "c***@example.com" not in log
    assert dashboard.get(f"/admin/referrals/{referral.id}", shop=OTHER_SHOP).status_code == 404


def test_form_posts_need_the_csrf_token(shop: Shop, client, shopify: ShopifyActions) -> None:
    """A form post with a valid session token but no CSRF token is refused and changes nothing."""
    response = client.post("/admin/settings", query_string={"id_token": shopify.session_token()},
                           data={"point_value": "5"})
    assert response.status_code == 403
    db.session.refresh(shop)
    assert str(shop.point_value) != "5"


def test_non_ascii_csrf_token_is_refused(shop: Shop, client, shopify: ShopifyActions) -> None:
    """A CSRF token with non-ASCII characters is refused like a wrong one (403), not a server error."""
    response = client.post("/admin/settings", query_string={"id_token": shopify.session_token()},
                           data={"point_value": "5", "csrf_token": "é" * 64})
    assert response.status_code == 403
    db.session.refresh(shop)
    assert str(shop.point_value) != "5"
