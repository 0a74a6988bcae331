"""What an invite-link visit records: a friend's click counts, the advocate trying their own link does not."""

from __future__ import annotations

from referral_plugin.extensions import db
from referral_plugin.models import Click
from referral_plugin.models import ReferralCode
from tests.shopify_actions import ShopifyActions
from tests.storefront.conftest import ADVOCATE_ID


def _clicks() -> int:
    return int(db.session.scalar(db.select(db.func.count(Click.id))) or 0)


def test_the_advocate_opening_their_own_link_lands_but_counts_no_click(shopify: ShopifyActions,
                                                                       advocate_code: ReferralCode) -> None:
    """Logged in as the code's owner: 302 to the shop with ?ref=, and the widget's 'Link clicks' stays 0."""
    response = shopify.proxy_get(f"r/{advocate_code.code}", ADVOCATE_ID)

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/?ref={advocate_code.code}")
    assert _clicks() == 0
    assert shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()["stats"]["clicks"] == 0


def test_a_logged_in_friend_and_an_anonymous_visitor_both_count(shopify: ShopifyActions,
                                                                advocate_code: ReferralCode) -> None:
    """Another logged-in customer's visit and an anonymous one are two clicks."""
    shopify.proxy_get(f"r/{advocate_code.code}", 9001)
    shopify.proxy_get(f"r/{advocate_code.code}")

    assert _clicks() == 2
