"""CONTRACT.md "Storefront": every /proxy route as Shopify's app proxy forwards it."""

from __future__ import annotations

import json
import re
import time
import typing as t
from urllib.parse import quote
from urllib.parse import urlencode

import pytest
import responses as responses_lib
from flask.testing import FlaskClient

from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import update_campaign
from tests.contract.conftest import Integrator
from tests.contract.conftest import register
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import proxy_query
from tests.shopify_actions import proxy_signature
from tests.shopify_actions import session_token

ADVOCATE = 6001


@pytest.fixture
def code(shopify: ShopifyActions, integrator: Integrator) -> str:
    """Register the advocate (Shopify id 6001) and return their referral code."""
    register(shopify, ADVOCATE, "widget@example.com", first_name="Wendy")
    return integrator.code_of("widget@example.com")


def _summary(client: FlaskClient) -> dict[str, t.Any]:
    token = session_token(SHOP)
    response = client.get("/admin/api/summary", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    answer: dict[str, t.Any] = response.get_json()
    return answer


# --- signature ---------------------------------------------------------------------------------------------------


def _unsigned(customer_id: int | None) -> str:
    pairs = [("shop", SHOP), ("logged_in_customer_id", "" if customer_id is None else str(customer_id)),
             ("path_prefix", "/apps/referrals"), ("timestamp", str(int(time.time())))]
    return urlencode(pairs, quote_via=quote)


def _bad_queries(customer_id: int) -> dict[str, str]:
    """Return the query strings Shopify never sends: unsigned, wrongly signed, stale, tampered."""
    tampered = proxy_query(customer_id).replace(f"logged_in_customer_id={customer_id}",
                                                "logged_in_customer_id=999")
    return {
        "missing": _unsigned(customer_id),
        "wrong-secret": proxy_query(customer_id, secret="not-hush"),
        "stale": proxy_query(customer_id, timestamp=int(time.time()) - 3600),
        "tampered": tampered,
        "extra-param": proxy_query(customer_id) + "&evil=1",
        "garbage-signature": _unsigned(customer_id) + "&signature=zz",
    }


@pytest.mark.parametrize("case", ["missing", "wrong-secret", "stale", "tampered", "extra-param",
                                  "garbage-signature"])
def test_every_proxy_route_rejects_bad_signatures(client: FlaskClient, code: str, case: str) -> None:
    """Widget, invitations and the invite-link landing all refuse an unsigned/bad/stale request with no data."""
    query = _bad_queries(ADVOCATE)[case]
    before = _summary(client)
    calls = [
        client.get(f"/proxy/widget?{query}"),
        client.post(f"/proxy/invitations?{query}", json={"emails": ["friend1@example.com"]}),
        client.post(f"/proxy/invitations?{query}", data={"email": "friend2@example.com"}),
        client.get(f"/proxy/r/{code}?{query}"),
    ]
    for response in calls:
        assert response.status_code in (401, 403), (case, response.request.path, response.status_code)
        body = response.get_data(as_text=True)
        assert code not in body
        assert "widget@example.com" not in body
        assert "Location" not in response.headers
    after = _summary(client)
    assert after["clicks"] == before["clicks"]
    assert after["invites"] == before["invites"]


def test_published_proxy_vector_verifies(client: FlaskClient, shop: Shop) -> None:
    """Shopify's documented signing (repeated values comma-joined, no separator) is what the app verifies."""
    pairs = [("extra", "1"), ("extra", "2"), ("shop", SHOP), ("logged_in_customer_id", ""),
             ("path_prefix", "/apps/referrals"), ("timestamp", str(int(time.time())))]
    pairs.append(("signature", proxy_signature(pairs)))
    response = client.get(f"/proxy/widget?{urlencode(pairs, quote_via=quote)}")
    assert response.status_code == 200


# --- widget ------------------------------------------------------------------------------------------------------


def test_widget_for_logged_in_customer(shopify: ShopifyActions, code: str) -> None:
    """The logged-in customer's widget shows their code, invite link, share buttons, invite form and stats."""
    response = shopify.proxy_get("widget", ADVOCATE)
    assert response.status_code == 200
    assert response.mimetype == "application/liquid"
    html = response.get_data(as_text=True)
    assert code in html
    assert f"https://{SHOP}/apps/referrals/r/{code}" in html
    assert "<form" in html
    assert re.search(r"share", html, re.I)


def test_widget_for_anonymous_visitor(shopify: ShopifyActions, code: str) -> None:
    """An anonymous visitor sees the offer and a prompt to log in, and nobody's code."""
    response = shopify.proxy_get("widget", None)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert code not in html
    assert re.search(r"log ?in|sign ?in", html, re.I)
    assert "/account/login" in html or re.search(r"log ?in", html, re.I)
    assert re.search(r"100|50", html)


def test_widget_customer_only_from_signed_param(shopify: ShopifyActions, code: str) -> None:
    """A ``customer_id`` or second ``logged_in_customer_id`` in the query cannot make a visitor someone else."""
    response = shopify.proxy_get("widget", None, extra=[("customer_id", str(ADVOCATE)),
                                                        ("customer", str(ADVOCATE))])
    assert response.status_code == 200
    assert code not in response.get_data(as_text=True)


def test_widget_new_customer_gets_a_code(shopify: ShopifyActions, integrator: Integrator, shop: Shop) -> None:
    """A logged-in customer the app has not seen yet still gets a code in their widget."""
    response = shopify.proxy_get("widget", 6099)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert re.search(rf"https://{re.escape(SHOP)}/apps/referrals/r/[A-Za-z0-9_-]+", html)


class TestWidgetPrefix:
    """APP_PROXY_PREFIX changes the links the widget shows."""

    @pytest.fixture
    def app_config(self, app_config: dict[str, t.Any]) -> dict[str, t.Any]:
        """Serve the storefront under ``/tools/refer``."""
        return {**app_config, "APP_PROXY_PREFIX": "/tools/refer"}

    def test_widget_link_uses_prefix(self, shopify: ShopifyActions, code: str) -> None:
        """The widget's invite link is ``https://{shop}{APP_PROXY_PREFIX}/r/{code}``."""
        html = shopify.proxy_get("widget", ADVOCATE).get_data(as_text=True)
        assert f"https://{SHOP}/tools/refer/r/{code}" in html


# --- invitations -------------------------------------------------------------------------------------------------


def _items(response: t.Any) -> list[dict[str, t.Any]]:
    answer = response.get_json()
    assert answer is not None, response.get_data(as_text=True)
    for key in ("results", "items", "invitations", "data"):
        if isinstance(answer.get(key), list):
            items: list[dict[str, t.Any]] = answer[key]
            return items
    raise AssertionError(f"no per-item results in {answer}")


def _invite_token(shopify: ShopifyActions, customer_id: int) -> str:
    """Return the invite form's token from the customer's widget, as the shopper's browser has it."""
    html = shopify.proxy_get("widget", customer_id).get_data(as_text=True)
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_invitations_json_per_item(client: FlaskClient, shopify: ShopifyActions, code: str) -> None:
    """JSON invitations by email and mobile answer one result per item; invalid items are marked, valid counted."""
    before = _summary(client)["invites"]
    token = _invite_token(shopify, ADVOCATE)
    response = shopify.proxy_post("invitations", ADVOCATE, json={
        "token": token, "friends": ["amy@example.com", "not-an-email", {"phone": "+1 202 555 0111"}]},
        headers={"Accept": "application/json"})
    assert response.status_code in (200, 207), response.get_data(as_text=True)
    items = _items(response)
    assert len(items) == 3
    assert [item["status"] for item in items] == ["created", "invalid", "created"]
    assert _summary(client)["invites"] == before + 2


def test_invitations_form(client: FlaskClient, shopify: ShopifyActions, code: str) -> None:
    """A form post (the widget's own form) invites too."""
    before = _summary(client)["invites"]
    token = _invite_token(shopify, ADVOCATE)
    response = shopify.proxy_post("invitations", ADVOCATE, data={"token": token, "friends": "bea@example.com"})
    assert response.status_code in (200, 201, 207, 302, 303), response.get_data(as_text=True)
    assert _summary(client)["invites"] == before + 1


def test_invitations_are_from_the_signed_customer_only(shopify: ShopifyActions, integrator: Integrator,
                                                      code: str) -> None:
    """Whatever the body carries (another shopper's form token, a customer id), the inviter is the signed one."""
    register(shopify, 6002, "mallory@example.com")
    token = _invite_token(shopify, ADVOCATE)
    response = shopify.proxy_post("invitations", 6002, json={
        "token": token, "friends": ["dan@example.com"], "customer_id": ADVOCATE,
        "logged_in_customer_id": ADVOCATE})
    assert response.status_code < 500

    def invitees(email: str) -> list[t.Any]:
        answer = integrator.get("/v2/customers/lookup/referrals", query_string={
            "source": "INSTORE", "identifierName": "email", "identifierValue": email}).get_json()
        found: list[t.Any] = answer["data"][0]["invitees"]
        return found

    assert invitees("widget@example.com") == []
    if response.status_code < 400:
        assert len(invitees("mallory@example.com")) == 1


def test_invitations_anonymous_refused(client: FlaskClient, shopify: ShopifyActions, code: str) -> None:
    """An anonymous visitor cannot invite anyone."""
    before = _summary(client)["invites"]
    token = _invite_token(shopify, ADVOCATE)
    response = shopify.proxy_post("invitations", None, json={"token": token, "friends": ["cy@example.com"]})
    assert 400 <= response.status_code < 500
    assert _summary(client)["invites"] == before


# --- invite-link landing -----------------------------------------------------------------------------------------


def test_landing_records_click_and_redirects_with_ref(client: FlaskClient, shopify: ShopifyActions,
                                                      code: str) -> None:
    """A points code lands on ``https://{shop}/?ref={code}`` and counts a click."""
    before = _summary(client)["clicks"]
    response = shopify.proxy_get(f"r/{code}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"https://{SHOP}/?ref={code}"
    assert _summary(client)["clicks"] == before + 1


def test_landing_unknown_code_still_lands_on_shop(shopify: ShopifyActions, shop: Shop) -> None:
    """An unknown code still lands on the shop (and is not echoed into a redirect elsewhere)."""
    response = shopify.proxy_get("r/NOSUCHCODE")
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"https://{SHOP}/")


def test_landing_hostile_code_stays_on_shop(shopify: ShopifyActions, shop: Shop) -> None:
    """A code crafted to escape the shop's host still lands on the shop."""
    response = shopify.proxy_get("r/%2F%2Fevil.com")
    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response.headers["Location"].startswith(f"https://{SHOP}/")


def _fake_shopify(request: t.Any) -> tuple[int, dict[str, str], str]:
    """Answer any Admin GraphQL mutation with a created discount node and no user errors."""
    body = json.loads(request.body)
    query = body["query"]
    match = re.search(r"(?:mutation|query)[^{]*{\s*(\w+)", query)
    root = match.group(1) if match else "data"
    if query.lstrip().startswith("mutation"):
        payload = {root: {"codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/77"}, "userErrors": []}}
    else:
        payload = {root: None}
    return 200, {}, json.dumps({"data": payload})


def test_landing_live_discount_form(app: t.Any, client: FlaskClient, shopify: ShopifyActions, code: str,
                                    mocked_responses: responses_lib.RequestsMock) -> None:
    """When the friend reward is a discount, the code is a live Shopify discount: ``/discount/{code}?redirect=/``."""
    url = f"https://{SHOP}/admin/api/{app.config['SHOPIFY_API_VERSION']}/graphql.json"
    mocked_responses.add_callback(responses_lib.POST, url, callback=_fake_shopify, content_type="application/json")
    campaign = db.session.scalars(db.select(Campaign).where(Campaign.is_default.is_(True))).one()
    update_campaign(campaign, {"friend_reward_kind": "percentage", "friend_reward_value": 10}, actor="merchant")
    db.session.commit()
    response = shopify.proxy_get(f"r/{code}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"https://{SHOP}/discount/{code}?redirect=/"


def test_invitations_plain_json_lists(client: FlaskClient, shopify: ShopifyActions, code: str) -> None:
    """A JSON post from the shop's page may list ``emails`` and ``phones`` and needs no form token."""
    before = _summary(client)["invites"]
    response = shopify.proxy_post("invitations", ADVOCATE, json={
        "emails": ["gil@example.com", "nope"], "phones": ["+12025550122"]})
    assert response.status_code in (200, 207), response.get_data(as_text=True)
    items = _items(response)
    assert [item["status"] for item in items] == ["created", "invalid", "created"]
    assert _summary(client)["invites"] == before + 2


def test_invitations_single_email_json(client: FlaskClient, shopify: ShopifyActions, code: str) -> None:
    """``{"email": ...}`` invites one friend."""
    response = shopify.proxy_post("invitations", ADVOCATE, json={"email": "hal@example.com"})
    assert response.status_code in (200, 207)
    assert [item["status"] for item in _items(response)] == ["created"]


def _signed(pairs: list[tuple[str, str]]) -> str:
    pairs = [*pairs, ("signature", proxy_signature(pairs))]
    return urlencode(pairs, quote_via=quote)


@pytest.mark.parametrize("case", ["duplicate-timestamp", "duplicate-shop", "duplicate-customer", "foreign-shop",
                                  "no-timestamp", "fractional-timestamp"])
def test_correctly_signed_but_ambiguous_queries_refused(client: FlaskClient, code: str, case: str) -> None:
    """Even correctly signed, a query with repeated identity keys, a foreign shop or no clean timestamp is refused."""
    now = str(int(time.time()))
    stale = str(int(time.time()) - 3600)
    prefix = ("path_prefix", "/apps/referrals")
    pairs = {
        "duplicate-timestamp": [("shop", SHOP), ("logged_in_customer_id", str(ADVOCATE)), prefix,
                                ("timestamp", stale), ("timestamp", now)],
        "duplicate-shop": [("shop", SHOP), ("shop", "other-shop.myshopify.com"),
                           ("logged_in_customer_id", str(ADVOCATE)), prefix, ("timestamp", now)],
        "duplicate-customer": [("shop", SHOP), ("logged_in_customer_id", "1"),
                               ("logged_in_customer_id", str(ADVOCATE)), prefix, ("timestamp", now)],
        "foreign-shop": [("shop", "evil.com"), ("logged_in_customer_id", str(ADVOCATE)), prefix, ("timestamp", now)],
        "no-timestamp": [("shop", SHOP), ("logged_in_customer_id", str(ADVOCATE)), prefix],
        "fractional-timestamp": [("shop", SHOP), ("logged_in_customer_id", str(ADVOCATE)), prefix,
                                 ("timestamp", f"{now}.5")],
    }[case]
    response = client.get(f"/proxy/widget?{_signed(pairs)}")
    assert response.status_code in (401, 403)
    assert code not in response.get_data(as_text=True)


def test_widget_stats_follow_the_program(shopify: ShopifyActions, code: str) -> None:
    """After a click and a rewarded friend, the advocate's widget counts them and shows the points earned."""
    from tests.contract.conftest import order_payload

    register(shopify, 6003, "stats-friend@example.com")
    assert shopify.proxy_get(f"r/{code}").status_code == 302
    paid = shopify.post_webhook("orders/paid", order_payload(6090, 6003, "stats-friend@example.com", code=code))
    assert paid.status_code == 200
    html = shopify.proxy_get("widget", ADVOCATE).get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert re.search(r"clicks? 1\b", text, re.I), text
    assert re.search(r"points earned 100\b", text, re.I), text
