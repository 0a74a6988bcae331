"""Audit as Shopify: timestamps at the edge of the calendar are bad input, never a 500 or an endless retry."""

from __future__ import annotations

import pytest

from referral_plugin.models import Shop
from tests.contract.conftest import customer_payload
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload

#: Valid ISO 8601 whose UTC form falls outside year 1..9999, so ``astimezone(UTC)`` overflows.
EDGE_DATES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


@pytest.mark.parametrize("triggered_at", EDGE_DATES)
def test_triggered_at_beyond_the_calendar_is_ignored(shopify: ShopifyActions, shop: Shop, triggered_at: str) -> None:
    """An X-Shopify-Triggered-At whose UTC form is outside the calendar is treated as absent: 200, processed."""
    response = shopify.post_webhook("customers/create", load_payload("customers_create"),
                                    headers={"X-Shopify-Triggered-At": triggered_at})
    assert response.status_code == 200


@pytest.mark.parametrize("created_at", EDGE_DATES)
def test_customer_created_at_beyond_the_calendar_still_registers(shopify: ShopifyActions, shop: Shop,
                                                                  created_at: str) -> None:
    """customers/create with a created_at outside the calendar registers the customer (date unknown) with 200."""
    payload = customer_payload(5001, "edge@example.com")
    payload.update(created_at=created_at, updated_at=created_at)
    assert shopify.post_webhook("customers/create", payload).status_code == 200


@pytest.mark.parametrize("created_at", EDGE_DATES)
def test_paid_order_of_a_new_customer_with_created_at_beyond_the_calendar(shopify: ShopifyActions, shop: Shop,
                                                                          created_at: str) -> None:
    """orders/paid whose customer (not registered yet) has a created_at outside the calendar is still a 200."""
    from tests.contract.conftest import order_payload

    order = order_payload(880201, 5101, "edge-order@example.com")
    order["customer"]["created_at"] = created_at
    assert shopify.post_webhook("orders/paid", order).status_code == 200
