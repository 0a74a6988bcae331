"""Audit as Shopify: shop domains that urlsplit cannot parse are a 4xx on every surface, never a 500."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient

from referral_plugin.models import Shop
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import session_token
from tests.shopify_actions import signed_admin_query

# A port that is not a number, an unbalanced IPv6 bracket, a port out of range: urllib raises on each.
UNPARSABLE_HOSTS = ["shop.myshopify.com:abc", "[abc", "shop.myshopify.com:99999", "a]b.myshopify.com", "[::1]"]


@pytest.mark.parametrize("host", UNPARSABLE_HOSTS)
def test_install_with_unparsable_shop_is_400_without_redirect(client: FlaskClient, host: str) -> None:
    """A correctly signed install for an unparsable shop is refused with 400, not a 500 or a redirect."""
    response = client.get("/auth/install?" + urlencode(signed_admin_query({"shop": host})))
    assert response.status_code == 400
    assert response.headers.get("Location") is None


@pytest.mark.parametrize("host", UNPARSABLE_HOSTS)
def test_bounce_page_ignores_unparsable_shop(client: FlaskClient, host: str) -> None:
    """The session-token bounce page renders with a shop it cannot parse, framing only Shopify's admin."""
    response = client.get("/auth/session-token?" + urlencode({"shop": host}))
    assert response.status_code == 200
    assert host not in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("host", UNPARSABLE_HOSTS)
def test_dashboard_load_with_unparsable_shop_bounces(client: FlaskClient, host: str) -> None:
    """A dashboard load naming an unparsable shop, signed or not, gets the bounce page (401), not a 500."""
    for query in ({"shop": host}, signed_admin_query({"shop": host})):
        response = client.get("/admin?" + urlencode(query))
        assert response.status_code == 401
        assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"


@pytest.mark.parametrize("host", UNPARSABLE_HOSTS)
def test_webhook_for_unparsable_shop_is_400(shopify: ShopifyActions, shop: Shop, host: str) -> None:
    """A signed webhook whose shop header cannot be parsed is 400."""
    response = shopify.post_webhook("customers/create", {"id": 1}, shop=host)
    assert response.status_code == 400


@pytest.mark.parametrize("host", UNPARSABLE_HOSTS)
def test_proxy_for_unparsable_shop_is_refused(shopify: ShopifyActions, shop: Shop, host: str) -> None:
    """A signed proxy call for an unparsable shop is refused with a 4xx and no widget."""
    response = shopify.proxy_get("widget", shop=host)
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("host", UNPARSABLE_HOSTS)
def test_session_token_for_unparsable_shop_is_401(client: FlaskClient, shop: Shop, host: str) -> None:
    """A correctly signed session token whose iss/dest host cannot be parsed is 401 with the retry header."""
    token = session_token(SHOP, iss=f"https://{host}/admin", dest=f"https://{host}")
    response = client.get("/admin/api/summary", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"


# The official libraries' rejection tables (PY, JS, RB) plus look-alikes a browser would resolve elsewhere.
TRICKY_HOSTS = [
    "myshop.com", "myshopify.com", "shopify.com", "two words", "store.myshopify.com.evil.com", "/foo/bar",
    "/foo.myshopify.io.evil.ru", "%0a123.myshopify.io ", "foo.bar.myshopify.io", "notshopify.com",
    "-invalid.myshopify.io", "not-admin.shopify.com/store/my-shop", "attacker.example", "myshopify.com.evil.com",
    "test-shop.notmyshopify.com", "attacker.com/.myshopify.com", "shop.myshopify.com@evil.com",
    "test-shop.myshopify.com.", "test-shop.myshopify.com%2eevil.com", "test-shop.myshopify.com\\@evil.com",
    "t\u0435st-shop.myshopify.com", "test-shop\uff0emyshopify.com", "test-shop.myshopify.com/../evil.com",
    "test-shop.myshopify.com?.evil.com", "test-shop.myshopify.com#@evil.com", "//evil.com/test-shop.myshopify.com",
    "http://evil.com@test-shop.myshopify.com", "test-shop.myshopify.io", "test-shop.shop.dev",
]


@pytest.mark.parametrize("host", TRICKY_HOSTS)
def test_install_with_tricky_shop_never_redirects(client: FlaskClient, host: str) -> None:
    """A signed install naming a shop that is not exactly ``{handle}.myshopify.com`` is refused with no redirect.

    (Values holding ``%`` are signed differently by each library, so those may fail the hmac first: 401.)
    """
    response = client.get("/auth/install?" + urlencode(signed_admin_query({"shop": host})))
    assert response.status_code == (401 if "%" in host else 400)
    assert response.headers.get("Location") is None


@pytest.mark.parametrize(("host", "canonical"), [
    ("TEST-SHOP.MYSHOPIFY.COM", SHOP), ("https://test-shop.myshopify.com/", SHOP), ("test-shop", SHOP),
    ("admin.shopify.com/store/test-shop", SHOP), (" test-shop.myshopify.com ", SHOP),
])
def test_install_redirects_only_to_the_canonical_shop(client: FlaskClient, host: str, canonical: str) -> None:
    """Accepted spellings of a shop redirect to the canonical ``https://{handle}.myshopify.com`` grant screen."""
    response = client.get("/auth/install?" + urlencode(signed_admin_query({"shop": host})))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"https://{canonical}/admin/oauth/authorize?")


@pytest.mark.parametrize("handle", ["a" * 64, "a" * 250, "a" * 300])
def test_shop_handle_longer_than_a_dns_label_is_refused(client: FlaskClient, shopify: ShopifyActions, shop: Shop,
                                                        handle: str) -> None:
    """A handle past DNS's 63-character label names no shop: 400 on install and webhooks, not a 500 on insert."""
    host = f"{handle}.myshopify.com"
    response = client.get("/auth/install?" + urlencode(signed_admin_query({"shop": host})))
    assert response.status_code == 400 and response.headers.get("Location") is None
    assert shopify.post_webhook("customers/create", {"id": 1}, shop=host).status_code == 400


def test_shop_handle_of_63_characters_installs(client: FlaskClient) -> None:
    """The longest DNS label is still a shop."""
    host = f"{'a' * 63}.myshopify.com"
    response = client.get("/auth/install?" + urlencode(signed_admin_query({"shop": host})))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"https://{host}/admin/oauth/authorize?")
