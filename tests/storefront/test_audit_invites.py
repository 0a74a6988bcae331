"""What a shopper reads after sending invitations: words that match what they typed, numbers as they write them."""

from __future__ import annotations

import json
import typing as t

from werkzeug.test import TestResponse

from referral_plugin.models import Customer
from tests.shopify_actions import ShopifyActions
from tests.storefront.conftest import ADVOCATE_ID


def _token(shopify: ShopifyActions) -> str:
    """Read the token the widget renders, as the browser would."""
    return str(shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()["invite"]["token"])


def _post_json(shopify: ShopifyActions, body: t.Mapping[str, t.Any]) -> TestResponse:
    return shopify.proxy_post("invitations", ADVOCATE_ID, data=json.dumps(body), content_type="application/json")


def test_words_without_at_sign_are_not_called_a_mobile_number(shopify: ShopifyActions, advocate: Customer) -> None:
    """'ana.example.com' typed in the box reads 'neither an email nor a number'; '12' still reads as a bad number."""
    body = _post_json(shopify, {"token": _token(shopify), "friends": ["ana.example.com", "12"]}).get_json()

    words, digits = body["results"]
    assert words["status"] == "invalid"
    assert (words["display"], digits["display"]) == ("ana.example.com", "12")  # as typed, no '+' added
    assert words["message"] == "That doesn't look like an email address or mobile number."
    assert digits["message"] == "That doesn't look like a mobile number."


def test_a_named_phone_field_keeps_the_mobile_wording(shopify: ShopifyActions, advocate: Customer) -> None:
    """A value sent as ``phone`` was meant as a number, so its refusal says mobile number."""
    body = _post_json(shopify, {"token": _token(shopify), "friends": [{"phone": "call me"}]}).get_json()

    assert body["results"][0]["message"] == "That doesn't look like a mobile number."


def test_an_invited_number_is_shown_as_the_shopper_writes_it(shopify: ShopifyActions, advocate: Customer) -> None:
    """A mobile friend comes back displayed in E.164 with its '+', on the JSON result and the no-JavaScript page."""
    body = _post_json(shopify, {"token": _token(shopify), "friends": ["+1 415 555 0123"]}).get_json()
    assert body["results"][0]["display"] == "+14155550123"

    page = shopify.proxy_post("invitations", ADVOCATE_ID, data={"token": _token(shopify), "friends": "+1 415 555 0124"},
                              headers={"Accept": "text/html"})
    html = page.get_data(as_text=True)
    assert '<span class="rp-result-who">+14155550124</span>' in html


def test_refusals_read_as_sentences(shopify: ShopifyActions, advocate: Customer) -> None:
    """Too many friends, or none, is refused with a capitalised sentence the widget shows as is."""
    token = _token(shopify)
    many = _post_json(shopify, {"token": token, "friends": [f"f{i}@example.com" for i in range(11)]})
    none = _post_json(shopify, {"token": token, "friends": []})

    assert many.status_code == 400 and many.get_json()["error"]["message"] == "Invite at most 10 friends at a time."
    assert none.status_code == 400
    assert none.get_json()["error"]["message"] == "Enter at least one email address or mobile number."
