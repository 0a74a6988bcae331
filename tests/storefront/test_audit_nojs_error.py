"""Without JavaScript, a refused invitation post gives the shopper's text back in a form to fix and resend."""

from __future__ import annotations

from referral_plugin.models import Customer
from tests.shopify_actions import ShopifyActions
from tests.storefront.conftest import ADVOCATE_ID


def _token(shopify: ShopifyActions) -> str:
    return str(shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()["invite"]["token"])


def test_too_many_friends_keeps_what_was_typed(shopify: ShopifyActions, advocate: Customer) -> None:
    """Eleven friends in the form: 400 page with the reason and a form holding the eleven lines and a fresh token."""
    typed = "\n".join(f"f{i}@example.com" for i in range(11))

    response = shopify.proxy_post("invitations", ADVOCATE_ID, data={"token": _token(shopify), "friends": typed},
                                  headers={"Accept": "text/html"})

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Invite at most 10 friends at a time." in html
    assert f'name="friends" rows="3" autocomplete="off">{typed}</textarea>' in html
    assert f'name="token" value="{_token(shopify)}"' in html
    assert 'action="/apps/referrals/invitations"' in html


def test_a_refused_cross_site_post_gets_no_form(shopify: ShopifyActions, advocate: Customer) -> None:
    """A post without the widget's token (a cross-site form) gets the message and a link, never its text in a form."""
    response = shopify.proxy_post("invitations", ADVOCATE_ID, data={"friends": "victim-bait@example.com"},
                                  headers={"Accept": "text/html"})

    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "victim-bait@example.com" not in html and "<form" not in html
    assert "Back to your referrals" in html
