"""POST /proxy/invitations: several friends at once, per-item results, cross-site protection, rate limit."""

from __future__ import annotations

import json
import typing as t

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import Shop
from referral_plugin.storefront.tokens import check_form_token
from referral_plugin.storefront.tokens import form_token
from referral_plugin.storefront.tokens import same_origin
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.storefront.conftest import ADVOCATE_ID


def _token(shopify: ShopifyActions, customer_id: int = ADVOCATE_ID) -> str:
    """Read the token the widget renders, as the browser would."""
    return str(shopify.proxy_get("widget.json", customer_id).get_json()["invite"]["token"])


def _post_json(shopify: ShopifyActions, body: t.Mapping[str, t.Any], customer_id: int | None = ADVOCATE_ID,
               headers: t.Mapping[str, str] | None = None) -> TestResponse:
    return shopify.proxy_post("invitations", customer_id, data=json.dumps(body), content_type="application/json",
                              headers=dict(headers or {}))


def _count() -> int:
    return int(db.session.scalar(db.select(db.func.count(Invitation.id))) or 0)


def test_inviting_several_friends_by_json(shopify: ShopifyActions, advocate: Customer) -> None:
    """Email and mobile friends in one call: each is created and normalized, with per-item results."""
    token = _token(shopify)
    response = _post_json(shopify, {"token": token, "friends": [
        "Bea@Example.com", {"phone": "(415) 555-0199", "name": "Cal"}, {"email": "dee@example.org"}]})
    assert response.status_code == 200
    body = response.get_json()
    assert [r["status"] for r in body["results"]] == ["created", "created", "created"]
    assert [r["identifier"] for r in body["results"]] == ["bea@example.com", "14155550199", "dee@example.org"]
    assert [r["channel"] for r in body["results"]] == ["email", "mobile", "email"]
    assert body["summary"] == {"created": 3, "duplicate": 0, "invalid": 0}
    rows = db.session.scalars(db.select(Invitation).order_by(Invitation.id)).all()
    assert [(r.channel, r.identifier, r.source, r.advocate_id) for r in rows] == [
        ("email", "bea@example.com", "widget", advocate.id),
        ("mobile", "14155550199", "widget", advocate.id),
        ("email", "dee@example.org", "widget", advocate.id),
    ]
    assert rows[1].name == "Cal"


def test_without_smtp_the_widget_offers_send_it_yourself_links(shopify: ShopifyActions, advocate: Customer) -> None:
    """With no MAIL_SERVER, each invited friend comes back with a mailto: or sms: link carrying the invite link."""
    token = _token(shopify)
    body = _post_json(shopify, {"token": token, "friends": ["bea@example.com", "+14155550199"]}).get_json()
    assert body["emailDelivery"] is False
    email, sms = body["results"]
    assert email["emailQueued"] is False
    assert email["sendYourself"].startswith("mailto:bea@example.com?subject=")
    assert sms["sendYourself"].startswith("sms:+14155550199?&body=")
    assert "%2Fapps%2Freferrals%2Fr%2F" in email["sendYourself"]
    assert "Get%2050%20points%20at%20test-shop" in sms["sendYourself"]


def test_invalid_friends_get_reasons_in_plain_words(shopify: ShopifyActions, advocate: Customer) -> None:
    """Bad email, bad number and the advocate's own address are refused one by one; valid ones still go."""
    token = _token(shopify)
    body = _post_json(shopify, {"token": token, "friends": [
        "not-an-email@", "12", "ana@example.com", "ok@example.com"]}).get_json()
    results = body["results"]
    assert [(r["status"], r["reason"]) for r in results] == [
        ("invalid", "INVALID_EMAIL"), ("invalid", "INVALID_MOBILE"), ("invalid", "SELF_INVITE"), ("created", None)]
    assert results[0]["message"] == "That doesn't look like an email address."
    assert results[2]["message"] == "That's you! Invite a friend instead."
    assert _count() == 1


def test_duplicates_are_reported_not_repeated(shopify: ShopifyActions, advocate: Customer) -> None:
    """Inviting the same friend again answers duplicate and writes nothing new."""
    token = _token(shopify)
    _post_json(shopify, {"token": token, "friends": ["bea@example.com"]})
    body = _post_json(shopify, {"token": token, "friends": ["BEA@example.com", "bea@example.com"]}).get_json()
    assert [(r["status"], r["reason"]) for r in body["results"]] == [
        ("duplicate", "ALREADY_INVITED"), ("duplicate", "ALREADY_INVITED")]
    assert body["results"][0]["message"] == "You've already invited this friend."
    assert _count() == 1


def test_form_post_with_the_token(shopify: ShopifyActions, advocate: Customer) -> None:
    """The no-JavaScript form (textarea, one per line or comma-separated) works and shows results as a page."""
    token = _token(shopify)
    response = shopify.proxy_post("invitations", ADVOCATE_ID, data={"token": token,
                                                                     "friends": "bea@example.com, cal@example.com"},
                                  headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.mimetype == "application/liquid"
    html = response.get_data(as_text=True)
    assert "bea@example.com" in html and "cal@example.com" in html
    assert 'href="/apps/referrals/widget"' in html
    assert _count() == 2


def test_form_post_answers_json_when_asked(shopify: ShopifyActions, advocate: Customer) -> None:
    """A form post that accepts JSON gets the JSON results."""
    token = _token(shopify)
    response = shopify.proxy_post("invitations", ADVOCATE_ID, data={"token": token, "email": "bea@example.com"},
                                  headers={"Accept": "application/json"})
    assert response.get_json()["results"][0]["status"] == "created"


def test_cross_site_form_post_is_refused(shopify: ShopifyActions, advocate: Customer) -> None:
    """A signed form post without the widget's token (what a hostile page can make) gets 403 and writes nothing."""
    response = shopify.proxy_post("invitations", ADVOCATE_ID, data={"friends": "victim@example.com"},
                                  headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "CROSS_SITE_REQUEST"
    response = shopify.proxy_post("invitations", ADVOCATE_ID, data={"friends": "victim@example.com", "token": "0" * 64})
    assert response.status_code == 403
    assert _count() == 0


def test_json_without_token_is_refused_from_another_site(shopify: ShopifyActions, advocate: Customer) -> None:
    """JSON without a token is refused from a foreign origin or a cross-site fetch, and nothing is written."""
    body = {"friends": ["bea@example.com"]}
    assert _post_json(shopify, body, headers={"Origin": "https://evil.example"}).status_code == 403
    assert _post_json(shopify, body, headers={"Origin": "http://test-shop.myshopify.com"}).status_code == 403
    assert _post_json(shopify, body, headers={"Origin": "null"}).status_code == 403
    assert _post_json(shopify, body, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert _count() == 0


def test_json_without_token_from_the_shop_or_no_page_is_accepted(shopify: ShopifyActions,
                                                                 advocate: Customer) -> None:
    """JSON from the shop's own origin, or with no Origin (no web page can send that), is accepted."""
    response = _post_json(shopify, {"friends": ["bea@example.com"]},
                          headers={"Origin": "https://test-shop.myshopify.com", "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 200
    assert _post_json(shopify, {"friends": ["cal@example.com"]}).status_code == 200
    assert _count() == 2


def test_text_plain_json_is_a_form_post_and_needs_the_token(shopify: ShopifyActions, advocate: Customer) -> None:
    """A JSON body sent as text/plain (what a cross-site form can do without a preflight) needs the token."""
    response = shopify.proxy_post("invitations", ADVOCATE_ID, data=json.dumps({"friends": ["bea@example.com"]}),
                                  content_type="text/plain")
    assert response.status_code == 403
    assert _count() == 0


def test_token_in_a_header_works_for_json(shopify: ShopifyActions, advocate: Customer) -> None:
    """widget.js may send the token in ``X-Referral-Token``."""
    response = _post_json(shopify, {"friends": ["bea@example.com"]}, headers={"X-Referral-Token": _token(shopify)})
    assert response.status_code == 200


def test_another_customers_token_is_refused(shopify: ShopifyActions, advocate: Customer) -> None:
    """A token is bound to its customer: Ana's token does not let customer 42 post."""
    token = _token(shopify)
    response = _post_json(shopify, {"token": token, "friends": ["bea@example.com"]}, customer_id=42,
                          headers={"Origin": "https://evil.example"})
    assert response.status_code == 403


def test_anonymous_visitors_cannot_invite(shopify: ShopifyActions, shop: Shop) -> None:
    """Without a logged-in customer, invitations answer 401 and write nothing."""
    response = _post_json(shopify, {"friends": ["bea@example.com"]}, customer_id=None,
                          headers={"Origin": "https://test-shop.myshopify.com"})
    assert response.status_code == 401
    assert _count() == 0


@pytest.mark.parametrize("body", [{"friends": []}, {"friends": "  "}, {"friends": 5}, {"friends": [1]}, [1, 2]])
def test_malformed_bodies_are_400(shopify: ShopifyActions, advocate: Customer, body: t.Any) -> None:
    """Nothing to invite, or a body of the wrong shape, is a 400 with a stable code, never a 500."""
    response = _post_json(shopify, body, headers={"Origin": "https://test-shop.myshopify.com"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"]


def test_too_many_friends_at_once_is_400(shopify: ShopifyActions, advocate: Customer) -> None:
    """More than ten friends in one post is refused whole."""
    friends = [f"f{n}@example.com" for n in range(11)]
    response = _post_json(shopify, {"token": _token(shopify), "friends": friends})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "TOO_MANY_FRIENDS"
    assert _count() == 0


def test_new_customer_can_invite_before_opening_the_widget(shopify: ShopifyActions, shop: Shop) -> None:
    """A logged-in customer unknown to the app is created on their first invitation."""
    response = _post_json(shopify, {"friends": ["bea@example.com"]}, customer_id=31337,
                          headers={"Origin": "https://test-shop.myshopify.com"})
    assert response.get_json()["results"][0]["status"] == "created"


@pytest.fixture
def app_config(app_config: dict[str, t.Any]) -> dict[str, t.Any]:
    """Allow five invitations per customer per hour in these tests."""
    return {**app_config, "INVITATION_RATE_LIMIT": "5 per hour"}


def test_rate_limit_per_customer(shopify: ShopifyActions, advocate: Customer, app: Flask) -> None:
    """Past the limit the customer gets 429 with Retry-After and nothing is written; others are unaffected."""
    token = _token(shopify)
    first = _post_json(shopify, {"token": token, "friends": [f"f{n}@example.com" for n in range(4)]})
    assert first.status_code == 200
    refused = _post_json(shopify, {"token": token, "friends": ["a@example.com", "b@example.com"]})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.get_json()["error"]["code"] == "RATE_LIMITED"
    assert _count() == 4
    assert _post_json(shopify, {"token": token, "friends": ["e@example.com"]}).status_code == 200
    assert _post_json(shopify, {"token": token, "friends": ["g@example.com"]}).status_code == 429
    other = _post_json(shopify, {"friends": ["h@example.com"]}, customer_id=4242,
                       headers={"Origin": "https://test-shop.myshopify.com"})
    assert other.status_code == 200


def test_tokens_are_bound_to_shop_customer_and_day() -> None:
    """The token changes with the shop, the customer and the day; yesterday's still works."""
    import datetime as dt

    from referral_plugin import create_app

    app = create_app({"TESTING": True, "SECRET_KEY": "k", "SHOPIFY_API_KEY": "a", "SHOPIFY_API_SECRET": "b"})
    now = dt.datetime(2026, 11, 22, 0, 5, tzinfo=dt.UTC)
    with app.app_context():
        token = form_token(SHOP, 1, now)
        assert check_form_token(SHOP, 1, token, now)
        assert check_form_token(SHOP, 1, token, now + dt.timedelta(hours=23))
        assert not check_form_token(SHOP, 1, token, now + dt.timedelta(days=2))
        assert not check_form_token(SHOP, 2, token, now)
        assert not check_form_token("other-shop.myshopify.com", 1, token, now)
        assert not check_form_token(SHOP, 1, None, now)


@pytest.mark.parametrize(("origin", "ok"), [
    ("https://test-shop.myshopify.com", True), ("https://test-shop.myshopify.com:443", True),
    ("http://test-shop.myshopify.com", False), ("https://test-shop.myshopify.com.evil.example", False),
    ("null", False), (None, False), ("https://other-shop.myshopify.com", False),
])
def test_same_origin(origin: str | None, ok: bool) -> None:
    """Only the shop's own https origin counts as same-origin."""
    assert same_origin(origin, SHOP) is ok


def test_refused_form_post_without_javascript_gets_a_page(shopify: ShopifyActions, advocate: Customer) -> None:
    """A no-JavaScript form post that is refused gets a page explaining why, with a way back; nothing written."""
    response = shopify.proxy_post("invitations", ADVOCATE_ID, data={"friends": "bea@example.com"},
                                  headers={"Accept": "text/html"})
    assert response.status_code == 403
    assert response.mimetype == "application/liquid"
    html = response.get_data(as_text=True)
    assert "reload the page and try again" in html and 'href="/apps/referrals/widget"' in html
    assert _count() == 0


def test_non_ascii_form_token_is_refused(shopify: ShopifyActions, advocate: Customer) -> None:
    """A form token with non-ASCII characters is refused like any wrong token (403), not a server error."""
    response = shopify.proxy_post("invitations", ADVOCATE_ID, data={"friends": "victim@example.com", "token": "é" * 64})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "CROSS_SITE_REQUEST"
    assert _count() == 0
