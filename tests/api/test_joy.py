"""Joy-compatible routes (seed 003), with referrals made through signed Shopify webhooks."""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Shop
from referral_plugin.referrals.codes import codes_of
from referral_plugin.referrals.customers import get_customer
from tests.api.conftest import ApiClient
from tests.engine.conftest import customer_payload
from tests.engine.conftest import order_payload
from tests.shopify_actions import ShopifyActions

BASE = "/rest_api/v2/referrals"


def assert_joy_envelope(body: dict[str, t.Any], success: bool = True) -> None:
    """Check the Joy envelope: success, data, meta, message, timestamp."""
    assert {"success", "data", "meta", "message", "timestamp"} <= set(body)
    assert body["success"] is success
    dt.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))


class Referred(t.NamedTuple):
    """An advocate and a friend whose first paid order used the advocate's code."""

    advocate: Customer
    friend: Customer
    code: str


def register(shopify: ShopifyActions, api_shop: Shop, **fields: t.Any) -> Customer:
    """Send ``customers/create`` and return the engine's customer."""
    payload = customer_payload(**fields)
    assert shopify.post_webhook("customers/create", payload).status_code == 200
    db.session.expire_all()
    customer = get_customer(api_shop, payload["id"])
    assert customer is not None
    return customer


@pytest.fixture
def referred(shopify: ShopifyActions, api_shop: Shop) -> Referred:
    """Run the default campaign's flow: advocate registers, friend registers and pays with the code."""
    advocate = register(shopify, api_shop, first_name="Ada", last_name="Advocate")
    code = codes_of(advocate)[0].code
    friend_payload = customer_payload(first_name="Fay", last_name="Friend")
    assert shopify.post_webhook("customers/create", friend_payload).status_code == 200
    assert shopify.post_webhook("orders/paid", order_payload(friend_payload, code=code)).status_code == 200
    db.session.expire_all()
    friend = get_customer(api_shop, friend_payload["id"])
    assert friend is not None
    return Referred(advocate, friend, code)


def test_generate_invitation_returns_the_customers_link_and_code(api: ApiClient, api_shop: Shop,
                                                                   shopify: ShopifyActions) -> None:
    """POST invitations with a customer's email answers their invite link and code, the same each time."""
    advocate = register(shopify, api_shop)
    response = api.post(f"{BASE}/invitations", json={"email": advocate.email.upper() if advocate.email else ""})
    assert response.status_code == 200
    body = response.get_json()
    assert_joy_envelope(body)
    code = codes_of(advocate)[0].code
    assert body["data"]["referralCode"] == code
    assert body["data"]["inviteLink"] == f"https://{api_shop.shopify_domain}/apps/referrals/r/{code}"
    again = api.post(f"{BASE}/invitations", json={"email": advocate.email}).get_json()
    assert again["data"]["referralCode"] == code


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"email": "nobody@example.com"}, 404, "CUSTOMER_NOT_FOUND"),
    ({}, 400, "VALIDATION_ERROR"),
    ({"email": 42}, 400, "VALIDATION_ERROR"),
    ({"email": "not an email"}, 400, "INVALID_EMAIL"),
    ([], 400, "VALIDATION_ERROR"),
    ({"email": "a@example.com", "campaignToken": "ZZZZZ"}, 400, "INVALID_CAMPAIGN"),
])
def test_generate_invitation_errors(api: ApiClient, api_shop: Shop, body: t.Any, status: int, code: str) -> None:
    """Bad or unknown emails answer in Joy's envelope with success false and a stable code."""
    response = api.post(f"{BASE}/invitations", json=body)
    assert response.status_code == status
    payload = response.get_json()
    assert_joy_envelope(payload, success=False)
    assert payload["error"]["code"] == code and payload["data"] is None


def test_referrers_summary_and_analytics_after_a_referred_order(api: ApiClient, referred: Referred) -> None:
    """After the friend's paid first order: the friend's referrer is the advocate; the summaries count it."""
    friend_id, advocate_id = referred.friend.shopify_customer_id, referred.advocate.shopify_customer_id

    referrers = api.get(f"{BASE}/customers/{friend_id}/referrers").get_json()
    assert_joy_envelope(referrers)
    assert referrers["meta"]["count"] == 1
    assert referrers["data"][0]["customerId"] == advocate_id and referrers["data"][0]["referred"] is True
    none = api.get(f"{BASE}/customers/{advocate_id}/referrers").get_json()
    assert none["meta"]["count"] == 0 and none["data"] == []

    advocate = api.get(f"{BASE}/customers/{advocate_id}/summary").get_json()
    assert_joy_envelope(advocate)
    assert advocate["data"]["totalRedeemCoupon"] == 1
    assert advocate["data"]["totalPointEarnRefer"] == 100
    assert advocate["data"]["referralCode"] == referred.code
    friend = api.get(f"{BASE}/customers/{friend_id}/summary").get_json()
    assert friend["data"]["totalPointEarnRefer"] == 50 and friend["data"]["totalRedeemCoupon"] == 0

    analytics = api.get(f"{BASE}/analytics").get_json()
    assert_joy_envelope(analytics)
    assert analytics["data"]["countCouponCodeUsage"] == 1
    assert analytics["data"]["pointsAwarded"] == 150


def test_lookup_shows_the_referee_and_incentives(api: ApiClient, referred: Referred) -> None:
    """The Capillary lookup of the advocate lists the friend as referee and the 100 points as incentive."""
    response = api.get("/v2/customers/lookup/referrals?source=ECOMMERCE&identifierName=id"
                       f"&identifierValue={referred.advocate.shopify_customer_id}")
    item = response.get_json()["data"][0]
    assert item["referralCode"] == referred.code
    [referee] = item["referee"]
    assert referee["customerId"] == referred.friend.shopify_customer_id and referee["eventType"] == "TRANSACTION"
    assert sum(i["points"] for i in item["incentives"] if i["type"] == "POINTS") == 100


def test_analytics_date_range(api: ApiClient, referred: Referred) -> None:
    """A range that excludes today counts nothing; bad dates are 400 INVALID_DATE in Joy's envelope."""
    old = api.get(f"{BASE}/analytics?startDate=2020-01-01&endDate=2020-01-31").get_json()
    assert old["data"]["countCouponCodeUsage"] == 0 and old["data"]["startDate"] == "2020-01-01"
    for query in ("startDate=yesterday", "endDate=2024-13-01", "startDate=0001-01-01&endDate=0001-01-02"):
        response = api.get(f"{BASE}/analytics?{query}")
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "INVALID_DATE"
    reversed_range = api.get(f"{BASE}/analytics?startDate=2024-02-01&endDate=2024-01-01")
    assert reversed_range.status_code == 400 and reversed_range.get_json()["success"] is False


@pytest.mark.parametrize("customer_id", ["999", "abc", "99999999999999999999999", "-1"])
@pytest.mark.parametrize("leaf", ["referrers", "summary"])
def test_unknown_customer_is_404(api: ApiClient, api_shop: Shop, customer_id: str, leaf: str) -> None:
    """Unknown or malformed customer ids answer 404 CUSTOMER_NOT_FOUND in Joy's envelope."""
    response = api.get(f"{BASE}/customers/{customer_id}/{leaf}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "CUSTOMER_NOT_FOUND"
