"""CONTRACT.md "The default campaign" (seed 002, Talon.One), end to end through webhooks and the API."""

from __future__ import annotations

import typing as t

import pytest
from flask.testing import FlaskClient

from referral_plugin.models import Shop
from tests.contract.conftest import Integrator
from tests.contract.conftest import cancelled
from tests.contract.conftest import full_refund
from tests.contract.conftest import order_payload
from tests.contract.conftest import register
from tests.shopify_actions import ShopifyActions

ADVOCATE = 7001
FRIEND = 7002


@pytest.fixture
def advocate_code(shopify: ShopifyActions, integrator: Integrator) -> str:
    """Register an advocate and a friend; return the advocate's code."""
    register(shopify, ADVOCATE, "alice@example.com", first_name="Alice")
    register(shopify, FRIEND, "fred@example.com", first_name="Fred")
    return integrator.code_of("alice@example.com")


def _paid(shopify: ShopifyActions, order: dict[str, t.Any], **kwargs: t.Any) -> None:
    response = shopify.post_webhook("orders/paid", order, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)


def _points(integrator: Integrator, customer_id: int) -> int:
    points: int = integrator.summary(customer_id)["totalPointEarnRefer"]
    return points


def test_registration_gives_a_code(shopify: ShopifyActions, integrator: Integrator, shop: Shop) -> None:
    """A customer who registers (customers/create) has a referral code, shown by lookup and Joy alike."""
    register(shopify, ADVOCATE, "alice@example.com")
    lookup = integrator.get("/v2/customers/lookup/referrals", query_string={
        "source": "INSTORE", "identifierName": "email", "identifierValue": "alice@example.com"})
    assert lookup.status_code == 200
    code = lookup.get_json()["data"][0]["referralCode"]
    assert code
    assert integrator.code_of("alice@example.com") == code


def test_default_campaign_exists_and_is_active(integrator: Integrator) -> None:
    """An installed shop has exactly one active default campaign."""
    campaigns = integrator.get("/api/v1/campaigns").get_json()["data"]
    defaults = [c for c in campaigns if c["isDefault"]]
    assert len(defaults) == 1 and defaults[0]["status"] == "active"


def test_first_paid_order_with_code_rewards_both(shopify: ShopifyActions, integrator: Integrator,
                                                 advocate_code: str) -> None:
    """The friend's first paid order with the code: advocate 100 points, friend 50; the advocate's code counts once."""
    _paid(shopify, order_payload(8001, FRIEND, "fred@example.com", code=advocate_code))
    assert _points(integrator, ADVOCATE) == 100
    assert _points(integrator, FRIEND) == 50
    assert integrator.summary(ADVOCATE)["totalRedeemCoupon"] == 1
    lookup = integrator.get("/v2/customers/lookup/referrals", query_string={
        "source": "INSTORE", "identifierName": "email", "identifierValue": "alice@example.com"}).get_json()
    incentives = lookup["data"][0]["incentives"]
    assert incentives, lookup
    assert len(lookup["data"][0]["referee"]) == 1
    referrers = integrator.get(f"/rest_api/v2/referrals/customers/{FRIEND}/referrers").get_json()
    assert referrers["meta"]["count"] == 1


def test_code_in_landing_site_rewards(shopify: ShopifyActions, integrator: Integrator, advocate_code: str) -> None:
    """An order that landed through the invite link (``/?ref={code}``) is attributed like a typed code."""
    order = order_payload(8002, FRIEND, "fred@example.com")
    order["landing_site"] = f"/?ref={advocate_code}"
    _paid(shopify, order)
    assert _points(integrator, ADVOCATE) == 100
    assert _points(integrator, FRIEND) == 50


def test_unregistered_friend_first_order_rewards(shopify: ShopifyActions, integrator: Integrator,
                                                 advocate_code: str) -> None:
    """A brand-new customer whose first order carries the code is a rewarded friend."""
    _paid(shopify, order_payload(8003, 7050, "newbie@example.com", code=advocate_code))
    assert _points(integrator, ADVOCATE) == 100
    assert _points(integrator, 7050) == 50


def test_code_is_case_insensitive_at_checkout(shopify: ShopifyActions, integrator: Integrator,
                                              advocate_code: str) -> None:
    """Shopify discount codes are case-insensitive; a lower-cased code still refers."""
    _paid(shopify, order_payload(8004, FRIEND, "fred@example.com", code=advocate_code.lower()))
    assert _points(integrator, ADVOCATE) == 100


def test_second_order_earns_nothing(shopify: ShopifyActions, integrator: Integrator, advocate_code: str) -> None:
    """A friend is rewarded once: a second paid order with the code earns nothing more."""
    _paid(shopify, order_payload(8011, FRIEND, "fred@example.com", code=advocate_code))
    _paid(shopify, order_payload(8012, FRIEND, "fred@example.com", code=advocate_code))
    assert _points(integrator, ADVOCATE) == 100
    assert _points(integrator, FRIEND) == 50


def test_redelivered_order_earns_nothing_more(shopify: ShopifyActions, integrator: Integrator,
                                              advocate_code: str) -> None:
    """The same order paid twice (a new webhook id, a new event) still rewards once."""
    order = order_payload(8021, FRIEND, "fred@example.com", code=advocate_code)
    _paid(shopify, order)
    _paid(shopify, order)
    assert _points(integrator, ADVOCATE) == 100
    assert _points(integrator, FRIEND) == 50


def test_duplicate_delivery_changes_nothing(shopify: ShopifyActions, integrator: Integrator,
                                            advocate_code: str) -> None:
    """A redelivery (same webhook id) of a cancellation does not take rewards twice or fail."""
    order = order_payload(8031, FRIEND, "fred@example.com", code=advocate_code)
    _paid(shopify, order, webhook_id="wh-paid", event_id="ev-paid")
    _paid(shopify, order, webhook_id="wh-paid", event_id="ev-paid")
    assert _points(integrator, ADVOCATE) == 100
    for _ in range(2):
        response = shopify.post_webhook("orders/cancelled", cancelled(order), webhook_id="wh-cancel")
        assert response.status_code == 200
    assert _points(integrator, ADVOCATE) == 0
    assert _points(integrator, FRIEND) == 0


def test_cancelled_order_takes_rewards_back(shopify: ShopifyActions, integrator: Integrator,
                                            advocate_code: str) -> None:
    """Cancelling the rewarded order takes back both rewards."""
    order = order_payload(8041, FRIEND, "fred@example.com", code=advocate_code)
    _paid(shopify, order)
    assert shopify.post_webhook("orders/cancelled", cancelled(order)).status_code == 200
    assert _points(integrator, ADVOCATE) == 0
    assert _points(integrator, FRIEND) == 0


def test_fully_refunded_order_takes_rewards_back(shopify: ShopifyActions, integrator: Integrator,
                                                 advocate_code: str) -> None:
    """A full refund of the rewarded order takes back both rewards."""
    order = order_payload(8051, FRIEND, "fred@example.com", code=advocate_code)
    _paid(shopify, order)
    assert shopify.post_webhook("refunds/create", full_refund(order, 9905101)).status_code == 200
    assert _points(integrator, ADVOCATE) == 0
    assert _points(integrator, FRIEND) == 0


def test_self_referral_earns_nothing(shopify: ShopifyActions, integrator: Integrator, advocate_code: str) -> None:
    """An advocate ordering with their own code earns nothing."""
    _paid(shopify, order_payload(8061, ADVOCATE, "alice@example.com", code=advocate_code))
    assert _points(integrator, ADVOCATE) == 0
    assert integrator.summary(ADVOCATE)["totalRedeemCoupon"] == 0


def test_test_order_earns_nothing_by_default(shopify: ShopifyActions, integrator: Integrator,
                                             advocate_code: str) -> None:
    """An order with ``test: true`` earns nothing while REWARD_TEST_ORDERS is off (the default)."""
    _paid(shopify, order_payload(8071, FRIEND, "fred@example.com", code=advocate_code, test=True))
    assert _points(integrator, ADVOCATE) == 0
    assert _points(integrator, FRIEND) == 0


class TestRewardTestOrdersOn:
    """REWARD_TEST_ORDERS on."""

    @pytest.fixture
    def app_config(self, app_config: dict[str, t.Any]) -> dict[str, t.Any]:
        """Turn REWARD_TEST_ORDERS on."""
        return {**app_config, "REWARD_TEST_ORDERS": True}

    def test_test_order_rewards_when_on(self, shopify: ShopifyActions, integrator: Integrator,
                                        advocate_code: str) -> None:
        """With REWARD_TEST_ORDERS on, a ``test: true`` order rewards like a real one."""
        _paid(shopify, order_payload(8081, FRIEND, "fred@example.com", code=advocate_code, test=True))
        assert _points(integrator, ADVOCATE) == 100
        assert _points(integrator, FRIEND) == 50


class TestRewardTestOrdersFromEnvironment:
    """REWARD_TEST_ORDERS set as an environment string."""

    @pytest.fixture
    def app_config(self, app_config: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, t.Any]:
        """Set REWARD_TEST_ORDERS=true in the environment only."""
        monkeypatch.setenv("REWARD_TEST_ORDERS", "true")
        return app_config

    def test_env_true_rewards_test_orders(self, shopify: ShopifyActions, integrator: Integrator,
                                          advocate_code: str) -> None:
        """``REWARD_TEST_ORDERS=true`` in the environment turns test-order rewards on."""
        _paid(shopify, order_payload(8091, FRIEND, "fred@example.com", code=advocate_code, test=True))
        assert _points(integrator, ADVOCATE) == 100


class TestRewardTestOrdersFalseString:
    """REWARD_TEST_ORDERS=false as an environment string."""

    @pytest.fixture
    def app_config(self, app_config: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, t.Any]:
        """Set REWARD_TEST_ORDERS=false in the environment only."""
        monkeypatch.setenv("REWARD_TEST_ORDERS", "false")
        return app_config

    def test_env_false_string_is_off(self, shopify: ShopifyActions, integrator: Integrator,
                                     advocate_code: str) -> None:
        """The string ``false`` keeps test orders unrewarded (it is not a truthy non-empty string)."""
        _paid(shopify, order_payload(8095, FRIEND, "fred@example.com", code=advocate_code, test=True))
        assert _points(integrator, ADVOCATE) == 0


def test_cancellation_before_paid_earns_nothing(shopify: ShopifyActions, integrator: Integrator,
                                                advocate_code: str) -> None:
    """A cancellation delivered before the order's ``orders/paid`` (out of order) leaves nothing earned."""
    order = order_payload(8101, FRIEND, "fred@example.com", code=advocate_code)
    assert shopify.post_webhook("orders/cancelled", cancelled(order)).status_code == 200
    _paid(shopify, order)
    assert _points(integrator, ADVOCATE) == 0
    assert _points(integrator, FRIEND) == 0


def test_guest_order_does_not_fail(shopify: ShopifyActions, client: FlaskClient, advocate_code: str) -> None:
    """A guest checkout (no customer) with the code is accepted without a 5xx."""
    response = shopify.post_webhook("orders/paid", order_payload(8111, None, None, code=advocate_code))
    assert response.status_code == 200


@pytest.mark.parametrize("carrier", ["cart-attribute", "landing-url"])
def test_code_carried_by_cart_or_landing(shopify: ShopifyActions, integrator: Integrator, advocate_code: str,
                                         carrier: str) -> None:
    """The code reaches the order as the widget's cart attribute or in the full landing URL: both reward."""
    order = order_payload(8121, FRIEND, "fred@example.com")
    if carrier == "cart-attribute":
        order["note_attributes"] = [{"name": "referral_code", "value": advocate_code}]
    else:
        order["landing_site"] = f"https://test-shop.myshopify.com/?utm_source=x&ref={advocate_code}"
    _paid(shopify, order)
    assert _points(integrator, ADVOCATE) == 100
    assert _points(integrator, FRIEND) == 50
