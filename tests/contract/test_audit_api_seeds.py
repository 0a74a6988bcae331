"""Black-box audit of the integrator API against what the seed documents say beyond their examples."""

from __future__ import annotations

import typing as t

import pytest

from tests.contract.conftest import Integrator
from tests.contract.conftest import register
from tests.shopify_actions import ShopifyActions

REFER = "/v1.1/customer/referrals"


def _element(**fields: t.Any) -> dict[str, t.Any]:
    """Return a ``customer`` element of seed 000 inviting one friend by email, with ``fields`` naming the advocate."""
    return {**fields, "referrals": {"referral_type": {"type": "EMAIL", "referral": [
        {"id": "", "invited_on": "20240910T16:35:52.pV7BF", "name": "Friend", "identifier": "q-friend@example.com"}]}}}


@pytest.fixture
def advocates(shopify: ShopifyActions) -> None:
    """Register two advocates: 9701 (Indian mobile, seed 000's) and 9702 (email only)."""
    register(shopify, 9701, "q-advocate@example.com", phone="+917999836466")
    register(shopify, 9702, "q-other@example.com")


@pytest.mark.parametrize("query", ["mobile=7999836466", "email=q-advocate@example.com",
                                   "email=Q-Advocate%40Example.com"])
def test_refer_customer_takes_the_documented_query_params(integrator: Integrator, advocates: None,
                                                          query: str) -> None:
    """Seed 000's "Query Params: mobile/email" name the referring customer when the element does not."""
    response = integrator.post(f"{REFER}?{query}", json={"root": {"customer": [_element()]}})
    assert response.status_code == 200
    customer = response.get_json()["response"]["customers"]["customer"][0]
    assert customer["item_status"]["code"] == 1000, customer
    assert customer["external_id"] == "9701"
    assert customer["referrals"]["referral_type"][0]["referral"][0]["status"]["code"] == 1000


def test_the_elements_own_identifier_wins_over_the_query(integrator: Integrator, advocates: None) -> None:
    """An element that names its customer keeps them; the query only fills in for elements naming nobody."""
    response = integrator.post(f"{REFER}?mobile=7999836466", json={"root": {"customer": [
        _element(email="q-other@example.com"), _element()]}})
    customers = response.get_json()["response"]["customers"]["customer"]
    assert [c["external_id"] for c in customers] == ["9702", "9701"]


def test_an_unknown_customer_in_the_query_is_1012(integrator: Integrator, advocates: None) -> None:
    """A query mobile naming nobody is the seed's 1012 for the element, as in the body."""
    response = integrator.post(f"{REFER}?mobile=9000000001", json={"root": {"customer": [_element()]}})
    customer = response.get_json()["response"]["customers"]["customer"][0]
    assert customer["item_status"]["code"] == 1012
    assert customer["mobile"] == "9000000001"
