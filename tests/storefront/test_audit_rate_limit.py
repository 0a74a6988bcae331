"""The invitation limit tells a shopper how many friends still go now when a batch is too big for what is left."""

from __future__ import annotations

import json
import typing as t

import pytest
from werkzeug.test import TestResponse

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from tests.shopify_actions import ShopifyActions
from tests.storefront.conftest import ADVOCATE_ID


@pytest.fixture
def app_config(app_config: dict[str, t.Any]) -> dict[str, t.Any]:
    """Allow five invitations per customer per hour."""
    return {**app_config, "INVITATION_RATE_LIMIT": "5 per hour"}


def _post(shopify: ShopifyActions, friends: list[str]) -> TestResponse:
    token = shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()["invite"]["token"]
    return shopify.proxy_post("invitations", ADVOCATE_ID, data=json.dumps({"token": token, "friends": friends}),
                              content_type="application/json")


def test_a_batch_bigger_than_what_is_left_says_how_many_still_go(shopify: ShopifyActions,
                                                                 advocate: Customer) -> None:
    """With 2 of 5 left, a batch of 3 is refused with 'You can invite 2 more friends right now'; 2 then go."""
    assert _post(shopify, ["a@example.com", "b@example.com", "c@example.com"]).status_code == 200

    refused = _post(shopify, ["d@example.com", "e@example.com", "f@example.com"])

    assert refused.status_code == 429
    error = refused.get_json()["error"]
    assert error["message"].startswith("You can invite 2 more friends right now, or more in ")
    assert error["details"] == {"remaining": 2}
    assert _post(shopify, ["d@example.com", "e@example.com"]).status_code == 200
    spent = _post(shopify, ["g@example.com"])
    assert spent.status_code == 429
    assert spent.get_json()["error"]["message"].startswith("You've sent a lot of invitations. Try again in ")
    assert db.session.scalar(db.select(db.func.count(Invitation.id))) == 5
