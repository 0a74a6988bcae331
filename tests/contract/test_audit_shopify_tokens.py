"""Audit as Shopify: expiring offline tokens and revoked tokens, seen from the Admin API calls rewards make.

The shop is installed through OAuth with an expiring offline token; a discount reward then needs the Admin API,
so the app must refresh the token first (Shopify's refresh grant) and call GraphQL with the new one. After an
uninstall there is no token: a late paid order must still be acknowledged without calling Shopify.
"""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import responses as responses_lib
from flask import Flask
from flask.testing import FlaskClient

from tests.contract.conftest import Integrator
from tests.contract.conftest import order_payload
from tests.contract.conftest import register
from tests.contract.test_contract_dashboard_campaign import _fake_shopify
from tests.contract.test_contract_dashboard_campaign import make_advocate_reward_a_discount
from tests.shopify_actions import API_KEY
from tests.shopify_actions import API_SECRET
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload
from tests.shopify_actions import session_token
from tests.shopify_actions import signed_admin_query

TOKEN_URL = f"https://{SHOP}/admin/oauth/access_token"
SCOPES = "read_customers,write_customers,read_orders,write_discounts,write_app_proxy"


@pytest.fixture
def http() -> t.Iterator[responses_lib.RequestsMock]:
    """Play Shopify's HTTP side; nothing has to be called."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def _install(client: FlaskClient, http: responses_lib.RequestsMock, grant: dict[str, t.Any]) -> None:
    http.add(responses_lib.POST, TOKEN_URL, json=grant)
    begin = client.get("/auth/install", query_string=signed_admin_query({"shop": SHOP}))
    state = parse_qs(urlsplit(begin.headers["Location"]).query)["state"][0]
    done = client.get("/auth/callback", query_string=signed_admin_query({"shop": SHOP, "code": "c0de",
                                                                        "state": state}))
    assert done.status_code == 302, done.get_data(as_text=True)
    http.remove(responses_lib.POST, TOKEN_URL)


def _graphql_calls(http: responses_lib.RequestsMock) -> list[t.Any]:
    return [call for call in http.calls if call.request.url.endswith("/graphql.json")]


def test_expiring_token_is_refreshed_before_the_discount_is_issued(
        app: Flask, client: FlaskClient, shopify: ShopifyActions, http: responses_lib.RequestsMock,
        runner: t.Any) -> None:
    """A token that expires within minutes is refreshed with the refresh grant, and GraphQL gets the new token."""
    _install(client, http, {"access_token": "shpat_short", "scope": SCOPES, "expires_in": 60,
                            "refresh_token": "shprt_first", "refresh_token_expires_in": 7776000})
    from tests.contract.conftest import create_api_key

    integrator = Integrator(client, create_api_key(runner))
    register(shopify, 7301, "adv@example.com")
    register(shopify, 7302, "fr@example.com")
    code = integrator.code_of("adv@example.com")
    make_advocate_reward_a_discount(client, integrator)
    http.add(responses_lib.POST, TOKEN_URL, json={"access_token": "shpat_fresh", "scope": SCOPES,
                                                  "expires_in": 3600, "refresh_token": "shprt_second",
                                                  "refresh_token_expires_in": 7776000})
    url = f"https://{SHOP}/admin/api/{app.config['SHOPIFY_API_VERSION']}/graphql.json"
    http.add_callback(responses_lib.POST, url, callback=_fake_shopify, content_type="application/json")

    paid = shopify.post_webhook("orders/paid", order_payload(7390, 7302, "fr@example.com", code=code))
    assert paid.status_code == 200

    grants = [parse_qs(str(call.request.body)) for call in http.calls if call.request.url == TOKEN_URL]
    assert [grant["grant_type"] for grant in grants] == [["authorization_code"], ["refresh_token"]]
    sent = grants[1]
    assert sent["refresh_token"] == ["shprt_first"]
    assert sent["client_id"] == [API_KEY] and sent["client_secret"] == [API_SECRET]
    calls = _graphql_calls(http)
    assert calls and all(call.request.headers["X-Shopify-Access-Token"] == "shpat_fresh" for call in calls)
    assert any(b"discountCodeBasicCreate" in (call.request.body or b"") for call in calls)


def test_late_paid_order_after_uninstall_is_acknowledged_without_calling_shopify(
        client: FlaskClient, shopify: ShopifyActions, http: responses_lib.RequestsMock, runner: t.Any) -> None:
    """With a discount reward and the app uninstalled, a late orders/paid is 200 and no Admin API call is made."""
    _install(client, http, {"access_token": "shpat_live", "scope": SCOPES})
    from tests.contract.conftest import create_api_key

    integrator = Integrator(client, create_api_key(runner))
    register(shopify, 7311, "adv2@example.com")
    register(shopify, 7312, "fr2@example.com")
    code = integrator.code_of("adv2@example.com")
    make_advocate_reward_a_discount(client, integrator)
    assert shopify.post_webhook("app/uninstalled", load_payload("app_uninstalled")).status_code == 200
    paid = shopify.post_webhook("orders/paid", order_payload(7391, 7312, "fr2@example.com", code=code))
    assert paid.status_code == 200, paid.get_data(as_text=True)
    assert _graphql_calls(http) == []


def test_revoked_token_is_replaced_by_the_next_embedded_load(
        app: Flask, client: FlaskClient, shopify: ShopifyActions, http: responses_lib.RequestsMock,
        runner: t.Any) -> None:
    """A 401 from the Admin API (token revoked) still acknowledges the order; the next load exchanges a new token."""
    _install(client, http, {"access_token": "shpat_dead", "scope": SCOPES})
    from tests.contract.conftest import create_api_key

    integrator = Integrator(client, create_api_key(runner))
    register(shopify, 7321, "adv3@example.com")
    register(shopify, 7322, "fr3@example.com")
    code = integrator.code_of("adv3@example.com")
    make_advocate_reward_a_discount(client, integrator)
    url = f"https://{SHOP}/admin/api/{app.config['SHOPIFY_API_VERSION']}/graphql.json"
    http.add(responses_lib.POST, url, status=401, json={"errors": "[API] Invalid API key or access token"})
    paid = shopify.post_webhook("orders/paid", order_payload(7392, 7322, "fr3@example.com", code=code))
    assert paid.status_code == 200, paid.get_data(as_text=True)
    assert _graphql_calls(http), "the discount was attempted"

    http.add(responses_lib.POST, TOKEN_URL, json={"access_token": "shpat_new", "scope": SCOPES})
    summary = client.get("/admin/api/summary", headers={"Authorization": f"Bearer {session_token(SHOP)}"})
    assert summary.status_code == 200
    exchanges = [parse_qs(str(call.request.body)) for call in http.calls if call.request.url == TOKEN_URL]
    assert exchanges[-1]["grant_type"] == ["urn:ietf:params:oauth:grant-type:token-exchange"]
