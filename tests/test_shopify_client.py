"""The Admin GraphQL client: errors, userErrors, throttling with Retry-After, 401 revocation, token refresh."""

from __future__ import annotations

import datetime as dt
import json
import typing as t
from urllib.parse import parse_qs

import pytest
import requests
import responses
from flask import Flask

from referral_plugin import installs
from referral_plugin.errors import ShopifyAPIError
from referral_plugin.errors import ShopifyThrottled
from referral_plugin.errors import ShopifyUnauthorized
from referral_plugin.errors import ShopifyUserErrors
from referral_plugin.extensions import db
from referral_plugin.models import Shop
from referral_plugin.security import crypto
from referral_plugin.shopify.admin import ShopifyClient
from referral_plugin.shopify.admin import client_for
from tests.shopify_actions import API_KEY
from tests.shopify_actions import API_SECRET
from tests.shopify_actions import SHOP

VERSION = "2026-10"
GRAPHQL_URL = f"https://{SHOP}/admin/api/{VERSION}/graphql.json"
TOKEN_URL = f"https://{SHOP}/admin/oauth/access_token"
QUERY = "{ shop { name } }"
OK = {"data": {"shop": {"name": "Test shop"}}, "extensions": {"cost": {"requestedQueryCost": 1}}}
THROTTLED = {
    "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED",
                                                      "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
    "extensions": {"cost": {"requestedQueryCost": 202, "actualQueryCost": None,
                            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 2,
                                               "restoreRate": 100.0}}},
}
MUTATION = "mutation d($d: DiscountCodeBasicInput!) { discountCodeBasicCreate(basicCodeDiscount: $d) { " \
           "codeDiscountNode { id } userErrors { field message code } } }"


class Sleeps:
    """Record the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    """Return a recording sleep."""
    return Sleeps()


@pytest.fixture
def gql(sleeps: Sleeps) -> ShopifyClient:
    """Return a client that never really sleeps."""
    return ShopifyClient(SHOP, "shpat_token", api_version=VERSION, sleep=sleeps, session=requests.Session())


def test_graphql_posts_query_with_token(gql: ShopifyClient, mocked_responses: responses.RequestsMock) -> None:
    """A query is POSTed to the versioned endpoint with the access token, and ``data`` comes back."""
    mocked_responses.post(GRAPHQL_URL, json=OK)
    assert gql.graphql(QUERY, {"a": 1}) == {"shop": {"name": "Test shop"}}
    request = mocked_responses.calls[0].request
    assert request.headers["X-Shopify-Access-Token"] == "shpat_token"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body or b"{}") == {"query": QUERY, "variables": {"a": 1}}


def test_graphql_errors_raise(gql: ShopifyClient, mocked_responses: responses.RequestsMock) -> None:
    """Top-level ``errors`` become a ShopifyAPIError carrying the messages."""
    mocked_responses.post(GRAPHQL_URL, json={"errors": [{"message": "Field 'nope' doesn't exist on type 'Shop'"}]})
    with pytest.raises(ShopifyAPIError) as info:
        gql.graphql("{ shop { nope } }")
    assert "doesn't exist" in info.value.message
    assert not isinstance(info.value, ShopifyThrottled)


def test_throttled_then_ok(gql: ShopifyClient, sleeps: Sleeps, mocked_responses: responses.RequestsMock) -> None:
    """A THROTTLED answer (HTTP 200) is retried after the bucket refills, then succeeds."""
    mocked_responses.post(GRAPHQL_URL, json=THROTTLED)
    mocked_responses.post(GRAPHQL_URL, json=OK)
    assert gql.graphql(QUERY) == OK["data"]
    assert len(mocked_responses.calls) == 2
    assert sleeps.waits == [pytest.approx(2.0)]  # (202 - 2) points at 100 points/s


def test_429_retry_after_honoured(gql: ShopifyClient, sleeps: Sleeps,
                                  mocked_responses: responses.RequestsMock) -> None:
    """A 429 waits the seconds Shopify names in Retry-After before trying again."""
    mocked_responses.post(GRAPHQL_URL, status=429, headers={"Retry-After": "2.5"}, json=THROTTLED)
    mocked_responses.post(GRAPHQL_URL, status=503, body="busy")
    mocked_responses.post(GRAPHQL_URL, json=OK)
    assert gql.graphql(QUERY) == OK["data"]
    assert sleeps.waits == [2.5, 1.0]  # the 503 without Retry-After waits the default second


def test_gives_up_after_three_retries(gql: ShopifyClient, sleeps: Sleeps,
                                      mocked_responses: responses.RequestsMock) -> None:
    """Still throttled after three retries: ShopifyThrottled, after exactly four calls."""
    for _ in range(4):
        mocked_responses.post(GRAPHQL_URL, status=429, headers={"Retry-After": "1"})
    with pytest.raises(ShopifyThrottled):
        gql.graphql(QUERY)
    assert len(mocked_responses.calls) == 4
    assert sleeps.waits == [1.0, 1.0, 1.0]


def test_retry_after_is_capped(gql: ShopifyClient, sleeps: Sleeps,
                               mocked_responses: responses.RequestsMock) -> None:
    """An absurd Retry-After does not park a worker for an hour."""
    mocked_responses.post(GRAPHQL_URL, status=429, headers={"Retry-After": "3600"})
    mocked_responses.post(GRAPHQL_URL, json=OK)
    gql.graphql(QUERY)
    assert sleeps.waits == [30.0]


def test_401_raises_unauthorized(gql: ShopifyClient, mocked_responses: responses.RequestsMock) -> None:
    """A 401 is ShopifyUnauthorized and is not retried."""
    mocked_responses.post(GRAPHQL_URL, status=401, json={"errors": "[API] Invalid API key or access token"})
    with pytest.raises(ShopifyUnauthorized):
        gql.graphql(QUERY)
    assert len(mocked_responses.calls) == 1


@pytest.mark.parametrize(
    "answer",
    [{"status": 500, "body": "oops"}, {"status": 200, "body": "<html>"}, {"status": 403, "json": {"errors": "x"}},
     {"body": requests.ConnectionError("down")}],
    ids=["500", "not-json", "403", "network"],
)
def test_other_failures_raise_api_error(gql: ShopifyClient, mocked_responses: responses.RequestsMock,
                                        answer: dict[str, t.Any]) -> None:
    """Server errors, non-JSON answers, 403 and network failures are a ShopifyAPIError."""
    mocked_responses.post(GRAPHQL_URL, **answer)
    with pytest.raises(ShopifyAPIError):
        gql.graphql(QUERY)


def test_mutate_returns_root(gql: ShopifyClient, mocked_responses: responses.RequestsMock) -> None:
    """``mutate`` returns the mutation's payload when there are no userErrors."""
    node = {"codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/1"}, "userErrors": []}
    mocked_responses.post(GRAPHQL_URL, json={"data": {"discountCodeBasicCreate": node}})
    assert gql.mutate(MUTATION, {"d": {}}, "discountCodeBasicCreate") == node


def test_mutate_user_errors_raise(gql: ShopifyClient, mocked_responses: responses.RequestsMock) -> None:
    """``userErrors`` are raised as ShopifyUserErrors carrying them."""
    errors = [{"field": ["basicCodeDiscount", "code"], "message": "Code must be unique.", "code": "TAKEN"}]
    mocked_responses.post(GRAPHQL_URL, json={"data": {"discountCodeBasicCreate": {"codeDiscountNode": None,
                                                                                  "userErrors": errors}}})
    with pytest.raises(ShopifyUserErrors) as info:
        gql.mutate(MUTATION, {"d": {}}, "discountCodeBasicCreate")
    assert info.value.user_errors == errors
    assert "Code must be unique." in info.value.message


# --- client_for: the shop's token, refresh and revocation -------------------------------------------------


def _shop_with_tokens(*, expires_in: dt.timedelta | None, refresh: bool = True) -> Shop:
    now = dt.datetime.now(dt.UTC)
    shop = Shop(
        shopify_domain=SHOP,
        installed_at=now,
        scopes="read_customers",
        access_token_ciphertext=crypto.encrypt("shpat_old_access"),
        access_token_expires_at=None if expires_in is None else now + expires_in,
        refresh_token_ciphertext=crypto.encrypt("shprt_old_refresh") if refresh else None,
        refresh_token_expires_at=now + dt.timedelta(days=90) if refresh else None,
    )
    db.session.add(shop)
    db.session.commit()
    return shop


def test_client_for_uses_stored_token(app: Flask, mocked_responses: responses.RequestsMock) -> None:
    """A non-expiring token is decrypted and sent as is, to the configured API version."""
    shop = _shop_with_tokens(expires_in=None, refresh=False)
    mocked_responses.post(f"https://{SHOP}/admin/api/{app.config['SHOPIFY_API_VERSION']}/graphql.json", json=OK)
    client_for(shop).graphql(QUERY)
    assert mocked_responses.calls[0].request.headers["X-Shopify-Access-Token"] == "shpat_old_access"


def test_client_for_refreshes_before_expiry(app: Flask, mocked_responses: responses.RequestsMock) -> None:
    """A token expiring within minutes is refreshed first, and the rotated tokens are stored encrypted."""
    shop = _shop_with_tokens(expires_in=dt.timedelta(minutes=2))
    mocked_responses.post(TOKEN_URL, json={"access_token": "shpat_new_access", "scope": "read_customers",
                                           "expires_in": 3600, "refresh_token": "shprt_new_refresh",
                                           "refresh_token_expires_in": 7776000})
    mocked_responses.post(f"https://{SHOP}/admin/api/{app.config['SHOPIFY_API_VERSION']}/graphql.json", json=OK)

    client_for(shop).graphql(QUERY)

    sent = parse_qs(mocked_responses.calls[0].request.body)
    assert sent["grant_type"] == ["refresh_token"]
    assert sent["refresh_token"] == ["shprt_old_refresh"]
    assert sent["client_id"] == [API_KEY] and sent["client_secret"] == [API_SECRET]
    assert mocked_responses.calls[1].request.headers["X-Shopify-Access-Token"] == "shpat_new_access"
    db.session.expire_all()
    stored = db.session.get(Shop, shop.id)
    assert stored is not None
    assert crypto.decrypt(stored.access_token_ciphertext or "") == "shpat_new_access"
    assert crypto.decrypt(stored.refresh_token_ciphertext or "") == "shprt_new_refresh"
    assert stored.access_token_expires_at is not None
    assert stored.access_token_expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=55)


def test_client_for_does_not_refresh_fresh_token(app: Flask, mocked_responses: responses.RequestsMock) -> None:
    """A token with most of its hour left is used without a refresh."""
    shop = _shop_with_tokens(expires_in=dt.timedelta(minutes=50))
    mocked_responses.post(f"https://{SHOP}/admin/api/{app.config['SHOPIFY_API_VERSION']}/graphql.json", json=OK)
    client_for(shop).graphql(QUERY)
    assert len(mocked_responses.calls) == 1


def test_refused_refresh_of_expired_token_marks_revoked(app: Flask, mocked_responses: responses.RequestsMock) -> None:
    """An expired token whose refresh token Shopify refuses is dead: revoked, so the next load re-exchanges."""
    shop = _shop_with_tokens(expires_in=dt.timedelta(minutes=-1))
    mocked_responses.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    with pytest.raises(ShopifyUnauthorized):
        client_for(shop)
    db.session.rollback()
    stored = db.session.get(Shop, shop.id)
    assert stored is not None and stored.token_revoked_at is not None
    assert not installs.has_live_token(stored)


def test_unreachable_refresh_of_expired_token_raises(app: Flask, mocked_responses: responses.RequestsMock) -> None:
    """When Shopify cannot be reached to refresh an expired token, the call fails but nothing is revoked."""
    shop = _shop_with_tokens(expires_in=dt.timedelta(minutes=-1))
    mocked_responses.post(TOKEN_URL, body=requests.ConnectionError("down"))
    with pytest.raises(ShopifyAPIError) as info:
        client_for(shop)
    assert not isinstance(info.value, ShopifyUnauthorized)
    db.session.refresh(shop)
    assert shop.token_revoked_at is None and shop.refresh_token_ciphertext is not None


def test_failed_refresh_keeps_still_valid_token(app: Flask, mocked_responses: responses.RequestsMock) -> None:
    """If the refresh fails while the current token still has minutes left, that token is used."""
    shop = _shop_with_tokens(expires_in=dt.timedelta(minutes=3))
    mocked_responses.post(TOKEN_URL, body=requests.ConnectionError("down"))
    assert client_for(shop)._access_token == "shpat_old_access"


def test_expired_without_refresh_token_is_unauthorized(app: Flask) -> None:
    """An expired token with nothing to refresh it is ShopifyUnauthorized."""
    shop = _shop_with_tokens(expires_in=dt.timedelta(minutes=-1), refresh=False)
    with pytest.raises(ShopifyUnauthorized):
        client_for(shop)


def test_401_marks_shop_revoked(app: Flask, mocked_responses: responses.RequestsMock) -> None:
    """A 401 from Shopify records the revocation and drops the dead token."""
    shop = _shop_with_tokens(expires_in=None, refresh=False)
    mocked_responses.post(f"https://{SHOP}/admin/api/{app.config['SHOPIFY_API_VERSION']}/graphql.json", status=401)
    with pytest.raises(ShopifyUnauthorized):
        client_for(shop).graphql(QUERY)
    db.session.rollback()  # what a failing caller does: the revocation must survive it
    stored = db.session.get(Shop, shop.id)
    assert stored is not None
    assert stored.token_revoked_at is not None
    assert stored.access_token_ciphertext is None and not stored.is_installed
    assert not installs.has_live_token(stored)
    with pytest.raises(ShopifyUnauthorized):
        client_for(stored)


def test_client_for_uninstalled_shop_is_unauthorized(app: Flask) -> None:
    """An uninstalled shop has no client."""
    shop = _shop_with_tokens(expires_in=None)
    shop.uninstalled_at = dt.datetime.now(dt.UTC)
    db.session.commit()
    with pytest.raises(ShopifyUnauthorized):
        client_for(shop)


def test_injected_app_session_is_used(app: Flask, mocked_responses: responses.RequestsMock) -> None:
    """``app.extensions["shopify_http_session"]`` is the session clients use when present."""
    session = requests.Session()
    session.headers["X-Test-Session"] = "yes"
    app.extensions["shopify_http_session"] = session
    shop = _shop_with_tokens(expires_in=None, refresh=False)
    mocked_responses.post(f"https://{SHOP}/admin/api/{app.config['SHOPIFY_API_VERSION']}/graphql.json", json=OK)
    client = client_for(shop)
    assert client.session is session
    client.graphql(QUERY)
    assert mocked_responses.calls[0].request.headers["X-Test-Session"] == "yes"
