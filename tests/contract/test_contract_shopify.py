"""CONTRACT.md "Shopify-facing routes": install, callback and webhooks, as Shopify drives them."""

from __future__ import annotations

import json
import time
import typing as t
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import responses as responses_lib
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner

from referral_plugin.models import Shop
from tests.contract.conftest import Integrator
from tests.contract.conftest import create_api_key
from tests.contract.conftest import customer_payload
from tests.contract.conftest import register
from tests.shopify_actions import API_KEY
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload
from tests.shopify_actions import raw_payload
from tests.shopify_actions import signed_admin_query
from tests.shopify_actions import webhook_hmac

NEW_SHOP = "fresh-shop.myshopify.com"
TOKEN_URL = f"https://{NEW_SHOP}/admin/oauth/access_token"


def _not_to_shop(response: t.Any, shop: str) -> None:
    """Assert ``response`` is a 400/401 that does not send the browser to ``shop``."""
    assert response.status_code in (400, 401), response.status_code
    assert shop not in response.headers.get("Location", "")


# --- GET /auth/install -----------------------------------------------------------------------------------------


def test_install_redirects_to_authorize(client: FlaskClient) -> None:
    """A signed, fresh install request is a 302 to the shop's authorize page with the four parameters."""
    response = client.get("/auth/install", query_string=signed_admin_query({"shop": NEW_SHOP}))
    assert response.status_code == 302
    parts = urlsplit(response.headers["Location"])
    assert (parts.scheme, parts.netloc, parts.path) == ("https", NEW_SHOP, "/admin/oauth/authorize")
    query = parse_qs(parts.query)
    assert query["client_id"] == [API_KEY]
    assert query["redirect_uri"] == ["https://referrals.example.test/auth/callback"]
    assert query["scope"][0]
    assert len(query["state"][0]) >= 16


def test_install_each_request_gets_its_own_state(client: FlaskClient) -> None:
    """Every install gets a fresh nonce."""
    states = set()
    for _ in range(2):
        response = client.get("/auth/install", query_string=signed_admin_query({"shop": NEW_SHOP}))
        states.add(parse_qs(urlsplit(response.headers["Location"]).query)["state"][0])
    assert len(states) == 2


def test_install_bad_hmac(client: FlaskClient) -> None:
    """A wrong hmac is refused with 400/401 and no redirect to the shop."""
    query = signed_admin_query({"shop": NEW_SHOP}, secret="not-the-secret")
    _not_to_shop(client.get("/auth/install", query_string=query), NEW_SHOP)


def test_install_missing_hmac(client: FlaskClient) -> None:
    """No hmac at all is refused."""
    query = {"shop": NEW_SHOP, "timestamp": str(int(time.time()))}
    _not_to_shop(client.get("/auth/install", query_string=query), NEW_SHOP)


def test_install_stale_timestamp(client: FlaskClient) -> None:
    """A correctly signed but hour-old request is refused."""
    query = signed_admin_query({"shop": NEW_SHOP, "timestamp": str(int(time.time()) - 3600)})
    _not_to_shop(client.get("/auth/install", query_string=query), NEW_SHOP)


@pytest.mark.parametrize("bad_shop", ["evil.com", "shop.myshopify.com.evil.com", "attacker.com/.myshopify.com",
                                      "shop.myshopify.com@evil.com", "-bad.myshopify.com", "two words.myshopify.com"])
def test_install_bad_shop(client: FlaskClient, bad_shop: str) -> None:
    """A signed request naming a shop that is not ``{handle}.myshopify.com`` is refused, never redirected there."""
    response = client.get("/auth/install", query_string=signed_admin_query({"shop": bad_shop}))
    assert response.status_code in (400, 401)
    location = response.headers.get("Location", "")
    assert "evil" not in location and "attacker" not in location and bad_shop not in location


# --- GET /auth/callback ----------------------------------------------------------------------------------------


def _begin(client: FlaskClient) -> str:
    """Start an install for NEW_SHOP and return its state."""
    response = client.get("/auth/install", query_string=signed_admin_query({"shop": NEW_SHOP}))
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]


def _no_token_request(rsps: responses_lib.RequestsMock) -> None:
    assert [call.request.url for call in rsps.calls] == []


@pytest.fixture
def shopify_http() -> t.Iterator[responses_lib.RequestsMock]:
    """Play Shopify's HTTP side without requiring every registered call to fire."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def test_callback_installs_shop(client: FlaskClient, runner: FlaskCliRunner,
                                shopify_http: responses_lib.RequestsMock) -> None:
    """A valid callback exchanges the code once, stores the shop with its default campaign, and enters the app."""
    shopify_http.add(responses_lib.POST, TOKEN_URL, json={
        "access_token": "shpat_new", "scope": "read_customers,write_customers,read_orders,write_discounts,"
        "write_app_proxy", "expires_in": 3600, "refresh_token": "shprt_new", "refresh_token_expires_in": 7776000})
    shopify_http.add(responses_lib.POST, f"https://{NEW_SHOP}/admin/api/2026-10/graphql.json",
                     json={"data": {}})
    state = _begin(client)
    query = signed_admin_query({"shop": NEW_SHOP, "code": "0907a61c0c8d55e99db179b68161bc00", "state": state})
    response = client.get("/auth/callback", query_string=query)
    assert response.status_code == 302, response.get_data(as_text=True)
    token_calls = [c for c in shopify_http.calls if c.request.url == TOKEN_URL]
    assert len(token_calls) == 1
    body = token_calls[0].request.body
    sent = body.decode() if isinstance(body, bytes) else str(body)
    assert "0907a61c0c8d55e99db179b68161bc00" in sent and "hush" in sent
    # Into the embedded app: the shop admin or this app, never elsewhere.
    location = response.headers["Location"]
    assert location.startswith(("https://admin.shopify.com/", f"https://{NEW_SHOP}/admin", "/",
                                "https://referrals.example.test/")), location
    # The shop is installed: it gets keys and has its active default campaign.
    key = create_api_key(runner, NEW_SHOP)
    campaigns = client.get("/api/v1/campaigns", headers={"X-Api-Key": key}).get_json()["data"]
    defaults = [c for c in campaigns if c["isDefault"]]
    assert len(defaults) == 1
    assert defaults[0]["status"] == "active"


def _callback_query(state: str, **changes: str) -> dict[str, str]:
    params = {"shop": NEW_SHOP, "code": "abc123", "state": state}
    params.update(changes)
    return signed_admin_query(params)


def test_callback_bad_hmac_no_token_request(client: FlaskClient, shopify_http: responses_lib.RequestsMock) -> None:
    """A callback with a wrong hmac is refused before any token request."""
    state = _begin(client)
    query = _callback_query(state)
    query["hmac"] = "0" * 64
    response = client.get("/auth/callback", query_string=query)
    assert response.status_code in (400, 401, 403)
    _no_token_request(shopify_http)


def test_callback_stale_timestamp_no_token_request(client: FlaskClient,
                                                   shopify_http: responses_lib.RequestsMock) -> None:
    """A callback signed an hour ago is refused before any token request."""
    state = _begin(client)
    query = _callback_query(state, timestamp=str(int(time.time()) - 3600))
    response = client.get("/auth/callback", query_string=query)
    assert response.status_code in (400, 401, 403)
    _no_token_request(shopify_http)


def test_callback_wrong_state_no_token_request(client: FlaskClient, shopify_http: responses_lib.RequestsMock) -> None:
    """A callback whose state was never issued is refused before any token request."""
    _begin(client)
    response = client.get("/auth/callback", query_string=_callback_query("f" * 64))
    assert response.status_code in (400, 401, 403)
    _no_token_request(shopify_http)


def test_callback_missing_state_no_token_request(client: FlaskClient,
                                                 shopify_http: responses_lib.RequestsMock) -> None:
    """A callback without state is refused before any token request."""
    _begin(client)
    query = signed_admin_query({"shop": NEW_SHOP, "code": "abc123"})
    response = client.get("/auth/callback", query_string=query)
    assert response.status_code in (400, 401, 403)
    _no_token_request(shopify_http)


def test_callback_replay_no_second_token_request(client: FlaskClient,
                                                 shopify_http: responses_lib.RequestsMock) -> None:
    """A state is used once: replaying a completed callback makes no second token request."""
    shopify_http.add(responses_lib.POST, TOKEN_URL, json={"access_token": "shpat_new", "scope": "read_orders"})
    shopify_http.add(responses_lib.POST, f"https://{NEW_SHOP}/admin/api/2026-10/graphql.json", json={"data": {}})
    state = _begin(client)
    query = _callback_query(state)
    assert client.get("/auth/callback", query_string=query).status_code == 302
    replay = client.get("/auth/callback", query_string=query)
    assert replay.status_code in (400, 401, 403)
    assert len([c for c in shopify_http.calls if c.request.url == TOKEN_URL]) == 1


def test_callback_bad_shop_no_token_request(client: FlaskClient, shopify_http: responses_lib.RequestsMock) -> None:
    """A signed callback naming a non-myshopify host is refused before any token request."""
    state = _begin(client)
    response = client.get("/auth/callback", query_string=_callback_query(state, shop="evil.com"))
    assert response.status_code in (400, 401, 403)
    _no_token_request(shopify_http)


def test_callback_other_shop_than_install_no_token_request(client: FlaskClient, shopify_http: responses_lib.RequestsMock
                                                           ) -> None:
    """A state issued for one shop does not complete an install of another."""
    state = _begin(client)
    response = client.get("/auth/callback", query_string=_callback_query(state, shop="other-one.myshopify.com"))
    assert response.status_code in (400, 401, 403)
    _no_token_request(shopify_http)


# --- POST /webhooks ---------------------------------------------------------------------------------------------


def _lookup_email(integrator: Integrator, email: str) -> t.Any:
    return integrator.get("/v2/customers/lookup/referrals", query_string={
        "source": "INSTORE", "identifierName": "email", "identifierValue": email})


def test_webhook_published_vector_is_accepted(shopify: ShopifyActions, shop: Shop) -> None:
    """Shopify's own sample body with its published HMAC (secret ``hush``) is accepted with 200."""
    body = raw_payload("customers_create")
    assert webhook_hmac(body) == "pttdiaoFM5sLP22ttY8IpgBi8jqi9ihcvo7sv9L4NP8="
    assert shopify.post_webhook("customers/create", body).status_code == 200


@pytest.mark.parametrize("mode", ["missing", "invalid"])
def test_webhook_bad_hmac_401_nothing_stored(client: FlaskClient, shopify: ShopifyActions, integrator: Integrator,
                                             mode: str) -> None:
    """Missing or invalid HMAC: 401, and nothing is stored (the same delivery later counts as new)."""
    payload = customer_payload(9101, "nohmac@example.com")
    body = json.dumps(payload).encode()
    headers = {"X-Shopify-Topic": "customers/create", "X-Shopify-Shop-Domain": SHOP,
               "X-Shopify-Webhook-Id": "wh-bad-hmac", "X-Shopify-Event-Id": "ev-bad-hmac",
               "X-Shopify-API-Version": "2026-10"}
    if mode == "invalid":
        headers["X-Shopify-Hmac-Sha256"] = webhook_hmac(body, "wrong-secret")
    response = client.post("/webhooks", data=body, headers=headers, content_type="application/json")
    assert response.status_code == 401
    assert _lookup_email(integrator, "nohmac@example.com").status_code == 404
    # The same webhook and event ids, now validly signed, are processed: nothing was recorded before.
    ok = shopify.post_webhook("customers/create", payload, webhook_id="wh-bad-hmac", event_id="ev-bad-hmac")
    assert ok.status_code == 200
    assert _lookup_email(integrator, "nohmac@example.com").status_code == 200


def test_webhook_hmac_of_other_body_is_401(client: FlaskClient, shop: Shop) -> None:
    """An HMAC of different bytes (e.g. re-serialized JSON) does not verify."""
    payload = customer_payload(9102, "x@example.com")
    signed = webhook_hmac(json.dumps(payload).encode())
    response = client.post("/webhooks", data=json.dumps(payload, indent=2).encode(), content_type="application/json",
                           headers={"X-Shopify-Topic": "customers/create", "X-Shopify-Hmac-Sha256": signed,
                                    "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Webhook-Id": "wh-x"})
    assert response.status_code == 401


def test_webhook_duplicate_webhook_id_changes_nothing(shopify: ShopifyActions, integrator: Integrator) -> None:
    """A second delivery with the same X-Shopify-Webhook-Id is 200 and changes nothing."""
    first = shopify.post_webhook("customers/create", customer_payload(9201, "first@example.com"),
                                 webhook_id="wh-dup-1")
    assert first.status_code == 200
    again = shopify.post_webhook("customers/create", customer_payload(9202, "second@example.com"),
                                 webhook_id="wh-dup-1")
    assert again.status_code == 200
    assert _lookup_email(integrator, "first@example.com").status_code == 200
    assert _lookup_email(integrator, "second@example.com").status_code == 404


def test_webhook_duplicate_event_id_changes_nothing(shopify: ShopifyActions, integrator: Integrator) -> None:
    """A second delivery of the same X-Shopify-Event-Id (new webhook id) is 200 and changes nothing."""
    first = shopify.post_webhook("customers/create", customer_payload(9301, "evfirst@example.com"),
                                 event_id="ev-dup-1")
    assert first.status_code == 200
    again = shopify.post_webhook("customers/create", customer_payload(9302, "evsecond@example.com"),
                                 event_id="ev-dup-1")
    assert again.status_code == 200
    assert _lookup_email(integrator, "evfirst@example.com").status_code == 200
    assert _lookup_email(integrator, "evsecond@example.com").status_code == 404


def test_webhook_unknown_topic_200(shopify: ShopifyActions, shop: Shop) -> None:
    """An unknown topic is acknowledged with 200 and ignored."""
    response = shopify.post_webhook("products/create", {"id": 1, "title": "Hat"})
    assert response.status_code == 200


def test_webhook_malformed_json_400_nothing_stored(shopify: ShopifyActions, integrator: Integrator) -> None:
    """Malformed JSON with a valid HMAC is 400, and the delivery is not recorded."""
    response = shopify.post_webhook("customers/create", b'{"id": 9401, "email": ', webhook_id="wh-malformed")
    assert response.status_code == 400
    ok = shopify.post_webhook("customers/create", customer_payload(9401, "malformed@example.com"),
                              webhook_id="wh-malformed")
    assert ok.status_code == 200
    assert _lookup_email(integrator, "malformed@example.com").status_code == 200


def _compliance(name: str) -> dict[str, t.Any]:
    payload = load_payload(name)
    payload["shop_domain"] = SHOP
    return payload


@pytest.mark.parametrize(("topic", "payload_name"), [
    ("customers/create", "customers_create"),
    ("orders/paid", "orders_paid"),
    ("orders/cancelled", "orders_cancelled"),
    ("refunds/create", "refunds_create"),
    ("customers/data_request", "customers_data_request"),
    ("customers/redact", "customers_redact"),
    ("shop/redact", "shop_redact"),
    ("app/uninstalled", "app_uninstalled"),
])
def test_every_topic_accepted(shopify: ShopifyActions, shop: Shop, topic: str, payload_name: str) -> None:
    """Each of the eight topics, with Shopify's sample payload, is answered 200 (twice: the repeat too)."""
    payload = _compliance(payload_name) if "redact" in topic or "data_request" in topic else load_payload(
        payload_name)
    first = shopify.post_webhook(topic, payload, webhook_id=f"wh-{payload_name}")
    assert first.status_code == 200, first.get_data(as_text=True)
    assert shopify.post_webhook(topic, payload, webhook_id=f"wh-{payload_name}").status_code == 200


def test_webhook_for_unknown_shop_is_not_an_error(shopify: ShopifyActions, shop: Shop) -> None:
    """Deliveries for a shop that is not installed are acknowledged, never a 5xx."""
    response = shopify.post_webhook("customers/create", customer_payload(9501, "ghost@example.com"),
                                    shop="ghost-shop.myshopify.com")
    assert response.status_code < 500


def test_customers_create_registers_for_the_header_shop_only(shopify: ShopifyActions, integrator: Integrator,
                                                             make_other: None) -> None:
    """A customer created in another shop is invisible to this shop's integrator."""
    register(shopify, 9601, "elsewhere@example.com", shop="other-shop.myshopify.com")
    assert _lookup_email(integrator, "elsewhere@example.com").status_code == 404


@pytest.fixture
def make_other(shop: Shop) -> None:
    """Install a second shop."""
    from tests.conftest import make_shop

    make_shop("other-shop.myshopify.com")
