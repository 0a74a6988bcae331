"""CONTRACT.md "Merchant admin": the embedded dashboard and its summary API, with App Bridge session tokens."""

from __future__ import annotations

import datetime as dt
import time
import typing as t
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from referral_plugin.models import Shop
from tests.conftest import make_shop
from tests.contract.conftest import Integrator
from tests.contract.conftest import order_payload
from tests.contract.conftest import register
from tests.shopify_actions import OTHER_SHOP
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import session_token

SUMMARY_KEYS = ("clicks", "invites", "signups", "referredOrders", "referralRevenue", "pointsAwarded",
                "couponsIssued", "conversionRate")


def _bad_tokens() -> dict[str, str]:
    now = int(time.time())
    return {
        "wrong-secret": session_token(SHOP, secret="not-hush"),
        "expired": session_token(SHOP, exp=now - 120, nbf=now - 180, iat=now - 180),
        "wrong-aud": session_token(SHOP, aud="someone-else"),
        "alg-none": session_token(SHOP, alg="none"),
        "garbage": "not.a.jwt",
        "dest-not-a-shop": session_token(SHOP, dest="https://evil.com", iss="https://evil.com/admin"),
    }


@pytest.fixture
def other_shop_with_data(shop: Shop, shopify: ShopifyActions) -> None:
    """Install a second shop with a distinctive customer and name."""
    make_shop(OTHER_SHOP)
    register(shopify, 5501, "secret-customer@other.example", shop=OTHER_SHOP, first_name="Zebedee")


# --- documents ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/admin"])
def test_dashboard_with_id_token(client: FlaskClient, shop: Shop, path: str) -> None:
    """``GET /`` and ``/admin`` with a valid ``id_token`` render the dashboard for the token's shop."""
    response = client.get(path, query_string={"id_token": session_token(SHOP), "shop": SHOP, "embedded": "1",
                                              "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvdGVzdC1zaG9w"})
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "test-shop" in html
    csp = response.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors" in csp and f"https://{SHOP}" in csp


@pytest.mark.parametrize("path", ["/", "/admin"])
def test_dashboard_without_token_bounces_or_installs(client: FlaskClient, other_shop_with_data: None,
                                                     path: str) -> None:
    """Without a token: the App Bridge bounce page or a redirect to install; never the dashboard data."""
    response = client.get(path, query_string={"shop": OTHER_SHOP, "embedded": "1"})
    _bounce_or_install(response)


@pytest.mark.parametrize("case", list(_bad_tokens()))
def test_dashboard_invalid_token_bounces(client: FlaskClient, other_shop_with_data: None, case: str) -> None:
    """An invalid ``id_token`` never opens the dashboard."""
    response = client.get("/admin", query_string={"id_token": _bad_tokens()[case], "shop": OTHER_SHOP})
    _bounce_or_install(response)


def _bounce_or_install(response: t.Any) -> None:
    html = response.get_data(as_text=True)
    assert "secret-customer" not in html and "Zebedee" not in html
    if response.status_code in (301, 302, 303, 307):
        location = response.headers["Location"]
        parts = urlsplit(location)
        assert "/auth/install" in parts.path or "/admin/oauth/authorize" in parts.path, location
        return
    assert response.status_code in (200, 401)
    assert "app-bridge.js" in html, html[:500]


def test_token_of_one_shop_never_shows_another(client: FlaskClient, other_shop_with_data: None) -> None:
    """A valid token for shop A with ``?shop=`` naming shop B shows shop A, not B."""
    response = client.get("/admin", query_string={"id_token": session_token(SHOP), "shop": OTHER_SHOP})
    html = response.get_data(as_text=True)
    assert "secret-customer" not in html and "Zebedee" not in html
    api = client.get("/admin/api/summary", query_string={"shop": OTHER_SHOP},
                     headers={"Authorization": f"Bearer {session_token(SHOP)}"})
    assert api.status_code == 200
    assert api.get_json()["signups"] == 0


# --- /admin/api/summary ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [*list(_bad_tokens()), "missing"])
def test_summary_invalid_token_401_retry_header(client: FlaskClient, shop: Shop, case: str) -> None:
    """An invalid or missing session token is 401 with ``X-Shopify-Retry-Invalid-Session-Request: 1``."""
    headers = {} if case == "missing" else {"Authorization": f"Bearer {_bad_tokens()[case]}"}
    response = client.get("/admin/api/summary", headers=headers)
    assert response.status_code == 401
    assert response.headers.get("X-Shopify-Retry-Invalid-Session-Request") == "1"
    assert "clicks" not in response.get_data(as_text=True)


def _series(answer: dict[str, t.Any], days: int) -> list[t.Any]:
    """Return the per-day series: a list with one entry per day of the range."""
    for value in answer.values():
        if isinstance(value, list) and len(value) == days and all(isinstance(v, dict) for v in value):
            return value
    raise AssertionError(f"no per-day series of {days} days in {sorted(answer)}")


def test_summary_shape_and_numbers(client: FlaskClient, shopify: ShopifyActions, integrator: Integrator) -> None:
    """The summary has every documented key, a per-day series, and counts a rewarded referral."""
    register(shopify, 5101, "adv@example.com")
    register(shopify, 5102, "friend@example.com")
    code = integrator.code_of("adv@example.com")
    assert shopify.proxy_get(f"r/{code}").status_code == 302
    paid = shopify.post_webhook("orders/paid", order_payload(5190, 5102, "friend@example.com", code=code,
                                                             total="120.00"))
    assert paid.status_code == 200
    today = dt.date.today()
    start, end = today - dt.timedelta(days=6), today + dt.timedelta(days=1)
    response = client.get("/admin/api/summary", query_string={"start": start.isoformat(), "end": end.isoformat()},
                          headers={"Authorization": f"Bearer {session_token(SHOP)}"})
    assert response.status_code == 200
    answer = response.get_json()
    for key in SUMMARY_KEYS:
        assert key in answer, key
        assert isinstance(answer[key], (int, float, str)), key
    _series(answer, (end - start).days + 1)
    assert answer["clicks"] == 1
    assert answer["referredOrders"] == 1
    assert float(answer["referralRevenue"]) == pytest.approx(120.0)
    assert answer["pointsAwarded"] == 150
    assert answer["couponsIssued"] == 0


def test_summary_default_range(client: FlaskClient, shop: Shop) -> None:
    """Without dates the summary still answers with every key."""
    response = client.get("/admin/api/summary", headers={"Authorization": f"Bearer {session_token(SHOP)}"})
    assert response.status_code == 200
    for key in SUMMARY_KEYS:
        assert key in response.get_json()


@pytest.mark.parametrize("query", [{"start": "nope"}, {"start": "2026-02-10", "end": "2026-02-01"},
                                   {"end": "2026-02-30"}])
def test_summary_bad_dates_4xx(client: FlaskClient, shop: Shop, query: dict[str, str]) -> None:
    """Bad dates are a 4xx, never a 500."""
    response = client.get("/admin/api/summary", query_string=query,
                          headers={"Authorization": f"Bearer {session_token(SHOP)}"})
    assert 400 <= response.status_code < 500
