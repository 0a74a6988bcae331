"""The widget promises a release date only for rewards that the calendar releases, not for ones the shop reviews."""

from __future__ import annotations

import datetime as dt

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from referral_plugin.referrals.customers import upsert_customer
from tests.shopify_actions import ShopifyActions
from tests.storefront.conftest import ADVOCATE_ID


def _held_friend(shop: Shop, advocate: Customer, code: ReferralCode, friend_id: int, first_name: str,
                 reason: str) -> None:
    friend = upsert_customer(shop, friend_id, email=f"{first_name.lower()}@example.com", first_name=first_name)
    db.session.add(Referral(shop_id=shop.id, campaign_id=code.campaign_id, referral_code_id=code.id,
                            advocate_id=advocate.id, friend_id=friend.id, source="discount_code",
                            status=ReferralStatus.HELD, reason=reason,
                            hold_until=dt.datetime(2026, 12, 6, 15, 0, tzinfo=dt.UTC)))
    db.session.commit()


def test_a_reviewed_friend_has_no_until_date(shopify: ShopifyActions, shop: Shop, advocate: Customer,
                                             advocate_code: ReferralCode) -> None:
    """A friend held for review reads 'reward pending' with the review sentence; one in the hold period gets a date."""
    _held_friend(shop, advocate, advocate_code, 8101, "Kenji", "REVIEW_VELOCITY")
    _held_friend(shop, advocate, advocate_code, 8102, "Ingrid", "HOLD_PERIOD")

    friends = {f["name"]: f for f in shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()["friends"]}
    assert friends["Kenji"]["holdUntil"] is None
    assert friends["Kenji"]["reasonText"] == "The shop is reviewing this referral before the reward is released."
    assert friends["Ingrid"]["holdUntil"] == "2026-12-06"

    html = shopify.proxy_get("widget", ADVOCATE_ID).get_data(as_text=True)
    assert html.count("until Dec 6, 2026") == 1
