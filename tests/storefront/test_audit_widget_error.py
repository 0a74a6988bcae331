"""A widget page that cannot load says so in words inside the theme, not as a JSON blob."""

from __future__ import annotations

from referral_plugin.models import Customer
from tests.shopify_actions import ShopifyActions


def test_widget_page_error_is_a_sentence(shopify: ShopifyActions, advocate: Customer) -> None:
    """A signed widget request the app refuses (customer id 0) answers 400 with a short page, served as Liquid."""
    response = shopify.proxy_get("widget", 0)

    assert response.status_code == 400
    assert response.mimetype == "application/liquid"
    html = response.get_data(as_text=True)
    assert "We couldn&#39;t load your referrals" in html and "Please try again in a moment." in html
    assert '{"error"' not in html


def test_json_and_unsigned_requests_keep_json(shopify: ShopifyActions, advocate: Customer) -> None:
    """widget.json keeps its JSON error, and an unsigned widget request stays a bare 401 JSON with no page."""
    data = shopify.proxy_get("widget.json", 0)
    unsigned = shopify.client.get("/proxy/widget?shop=test-shop.myshopify.com")

    assert data.status_code == 400 and data.get_json()["error"]["code"]
    assert unsigned.status_code == 401 and unsigned.get_json()["error"]["code"] == "INVALID_SIGNATURE"
