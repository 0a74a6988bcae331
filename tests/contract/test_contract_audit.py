"""Black-box audit of CONTRACT.md: bad input the other contract tests do not send, on SQLite and PostgreSQL.

"Bad input is a 4xx with the documented error code, never a 500", and a webhook Shopify can deliver is
processed, not failed forever.
"""

from __future__ import annotations

import json
import sqlite3
import typing as t
from pathlib import Path

import pytest
import responses as responses_lib
from flask.testing import FlaskClient

from referral_plugin import create_app
from referral_plugin.extensions import db
from tests.contract.conftest import Integrator
from tests.contract.conftest import customer_payload
from tests.contract.conftest import order_payload
from tests.contract.conftest import register
from tests.contract.test_contract_dashboard_campaign import _fake_shopify
from tests.contract.test_contract_dashboard_campaign import _form_with
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload
from tests.shopify_actions import session_token
from tests.shopify_actions import signed_admin_query

#: Valid JSON that Python parses but no parser can nest (``RecursionError``) and no database can store.
TOO_DEEP = b"[" * 100_000 + b"]" * 100_000
#: Strings that parse as JSON but that no database stores: NUL (PostgreSQL) and a lone surrogate (no UTF-8).
UNSTORABLE = ["X\u0000", "X\ud800"]


def _body(value: t.Any) -> bytes:
    """Return ``value`` as JSON text with ``\\uXXXX`` escapes, as a client library sends it."""
    return json.dumps(value).encode()


def _invitees(integrator: Integrator, email: str) -> list[t.Any]:
    answer = integrator.get("/v2/customers/lookup/referrals", query_string={
        "source": "INSTORE", "identifierName": "email", "identifierValue": email}).get_json()
    found: list[t.Any] = answer["data"][0]["invitees"]
    return found


@pytest.fixture
def advocate(shopify: ShopifyActions, integrator: Integrator) -> str:
    """Register an advocate (Shopify id 9101) and return their email."""
    register(shopify, 9101, "audit-advocate@example.com")
    return "audit-advocate@example.com"


def test_too_deeply_nested_json_is_a_400_in_each_envelope(client: FlaskClient, shopify: ShopifyActions,
                                                          integrator: Integrator, advocate: str) -> None:
    """JSON nested deeper than any parser allows is a 400 in the route's envelope, never a 500."""
    refer = integrator.post("/v1.1/customer/referrals", data=TOO_DEEP, content_type="application/json")
    assert refer.status_code == 400, refer.get_data(as_text=True)
    assert refer.get_json()["response"]["status"] == {"success": "false", "code": 400,
                                                      "message": refer.get_json()["response"]["status"]["message"]}
    joy = integrator.post("/rest_api/v2/referrals/invitations", data=TOO_DEEP, content_type="application/json")
    assert joy.status_code == 400, joy.get_data(as_text=True)
    assert joy.get_json()["success"] is False and joy.get_json()["error"]["code"] == "VALIDATION_ERROR"
    proxy = shopify.proxy_post("invitations", 9101, data=TOO_DEEP, content_type="application/json")
    assert proxy.status_code == 400, proxy.get_data(as_text=True)
    assert proxy.is_json
    assert _invitees(integrator, advocate) == []


def test_too_deeply_nested_webhook_is_a_400_and_stores_nothing(shopify: ShopifyActions,
                                                                integrator: Integrator) -> None:
    """A validly signed webhook body nested too deeply is malformed JSON: 400, and its webhook id stays unused."""
    response = shopify.post_webhook("customers/create", b'{"id": ' + TOO_DEEP + b"}", webhook_id="audit-deep")
    assert response.status_code == 400, response.get_data(as_text=True)
    retry = shopify.post_webhook("customers/create", customer_payload(9201, "deep@example.com"),
                                 webhook_id="audit-deep")
    assert retry.status_code == 200
    assert retry.get_json()["status"] == "processed"


@pytest.mark.parametrize("bad", UNSTORABLE, ids=["nul", "lone-surrogate"])
def test_unstorable_text_in_api_json_is_a_400(integrator: Integrator, advocate: str, bad: str) -> None:
    """NUL or a lone surrogate anywhere in an API body is bad input: 400 in the envelope, nothing stored."""
    refer = integrator.post("/v1.1/customer/referrals", content_type="application/json", data=_body({"root": {
        "customer": [{"email": advocate, "referrals": {"campaign_token": bad, "referral_type": [
            {"type": "EMAIL", "referral": [{"id": "", "name": bad, "identifier": "friend@example.com",
                                            "invited_on": bad}]}]}}]}}))
    assert refer.status_code == 400, refer.get_data(as_text=True)
    assert refer.get_json()["response"]["status"]["code"] == 400
    joy = integrator.post("/rest_api/v2/referrals/invitations", content_type="application/json",
                          data=_body({"email": advocate, "campaignToken": bad}))
    assert joy.status_code == 400, joy.get_data(as_text=True)
    assert joy.get_json()["success"] is False
    assert _invitees(integrator, advocate) == []


@pytest.mark.parametrize("bad", UNSTORABLE, ids=["nul", "lone-surrogate"])
def test_unstorable_text_in_proxy_json_is_a_400(shopify: ShopifyActions, integrator: Integrator, advocate: str,
                                                bad: str) -> None:
    """The widget's JSON invitations with NUL or a lone surrogate are a 400, and nobody is invited."""
    response = shopify.proxy_post("invitations", 9101, content_type="application/json",
                                  data=_body({"friends": [{"email": "pal@example.com", "name": bad}]}))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.is_json
    assert _invitees(integrator, advocate) == []


def test_webhook_with_unstorable_text_is_processed(shopify: ShopifyActions, integrator: Integrator) -> None:
    """A customer whose names carry NUL and a lone surrogate is still registered (200), not failed and retried."""
    payload = customer_payload(9301, "odd-names@example.com", first_name="Ada\u0000", last_name="L\ud800")
    payload["note"] = "\u0000"
    response = shopify.post_webhook("customers/create", _body(payload))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "processed"
    lookup = integrator.get("/v2/customers/lookup/referrals", query_string={
        "source": "INSTORE", "identifierName": "id", "identifierValue": "9301"})
    assert lookup.status_code == 200
    profile = lookup.get_json()["data"][0]["customer"]["profiles"][0]
    assert "\u0000" not in profile["firstName"] and profile["firstName"].startswith("Ada")


def test_nul_in_a_code_or_campaign_token_names_nothing(shopify: ShopifyActions, integrator: Integrator,
                                                       advocate: str) -> None:
    """A NUL in an invite-link code still lands on the shop; in a lookup's campaignToken it is 1222, not a 500."""
    landing = shopify.proxy_get("r/AB%00CD", None)
    assert landing.status_code == 302
    assert landing.headers["Location"].startswith("https://test-shop.myshopify.com/")
    lookup = integrator.get("/v2/customers/lookup/referrals?source=INSTORE&identifierName=email"
                            f"&identifierValue={advocate}&campaignToken=X%00")
    assert lookup.status_code == 400, lookup.get_data(as_text=True)
    assert [error["code"] for error in lookup.get_json()["errors"]] == [1222]


def test_callback_state_with_nul_is_refused_before_any_token_request(
        client: FlaskClient, mocked_responses: responses_lib.RequestsMock) -> None:
    """A signed callback whose state holds a NUL is a 403 (no state of ours looks like that), not a 500."""
    query = signed_admin_query({"shop": "audit-shop.myshopify.com", "code": "abc123", "state": "ab\u0000cd"})
    response = client.get("/auth/callback", query_string=query)
    assert response.status_code in (400, 401, 403), response.get_data(as_text=True)
    assert "Location" not in response.headers
    assert list(mocked_responses.calls) == []


@pytest.mark.parametrize("header", ["X-Shopify-Topic", "X-Shopify-Webhook-Id", "X-Shopify-Event-Id",
                                    "X-Shopify-API-Version"])
def test_webhook_header_with_control_characters_is_a_400(shopify: ShopifyActions, integrator: Integrator,
                                                         header: str) -> None:
    """A signed delivery whose Shopify header holds a NUL is a 400 and stores nothing (a clean retry processes)."""
    payload = customer_payload(9401, "header-nul@example.com")
    response = shopify.post_webhook("customers/create", payload, webhook_id="audit-header",
                                    headers={header: "a\u0000b"})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.is_json
    retry = shopify.post_webhook("customers/create", payload, webhook_id="audit-header")
    assert retry.get_json()["status"] == "processed"


def test_dashboard_search_with_nul_answers(client: FlaskClient, shopify: ShopifyActions, advocate: str) -> None:
    """The dashboard's referral search with a NUL in it answers the page, never a 500."""
    token = shopify.session_token()
    for search in ("%00", "audit%00advocate"):
        response = client.get(f"/admin/referrals?q={search}&id_token={token}")
        assert response.status_code == 200, response.get_data(as_text=True)[:300]


def test_database_url_in_test_config(app_config: dict[str, t.Any], tmp_path: Path) -> None:
    """``DATABASE_URL`` given in ``test_config`` (as the configuration table allows) is the database used."""
    path = tmp_path / "from-test-config.sqlite"
    config = {k: v for k, v in app_config.items() if k != "SQLALCHEMY_DATABASE_URI"}
    app = create_app({**config, "DATABASE_URL": f"sqlite:///{path}"})
    with app.app_context():
        db.create_all()
        assert app.test_client().get("/healthz").get_json() == {"status": "ok"}
        db.engine.dispose()
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("select name from sqlite_master where type='table'")}
    assert "shops" in tables or len(tables) > 5


class TestMinimalTestConfig:
    """An app built with ``TESTING`` and the contract's keys only: no job consumer runs beside a test client."""

    @pytest.fixture
    def app_config(self, app_config: dict[str, t.Any]) -> dict[str, t.Any]:
        """Drop the suite's internal settings (``HUEY_IMMEDIATE``), keeping ``TESTING`` and contract keys."""
        return {k: v for k, v in app_config.items() if k != "HUEY_IMMEDIATE"}

    def test_discount_rewards_reach_shopify(self, app: t.Any, client: FlaskClient, shopify: ShopifyActions,
                                            integrator: Integrator,
                                            mocked_responses: responses_lib.RequestsMock) -> None:
        """Discount rewards: the invite link lands on ``/discount/{code}``, the advocate's coupon is issued."""
        url = f"https://{SHOP}/admin/api/{app.config['SHOPIFY_API_VERSION']}/graphql.json"
        mocked_responses.add_callback(responses_lib.POST, url, callback=_fake_shopify, content_type="application/json")
        register(shopify, 9501, "coupon-advocate@example.com")
        register(shopify, 9502, "coupon-friend@example.com")
        code = integrator.code_of("coupon-advocate@example.com")
        token = next(c["token"] for c in integrator.get("/api/v1/campaigns").get_json()["data"] if c["isDefault"])
        page = client.get(f"/admin/campaigns/{token}", query_string={"id_token": session_token(SHOP)})
        form = _form_with(page.get_data(as_text=True), "friend")
        fields = dict(form["fields"])
        for side, reward in (("friend", "percentage"), ("advocate", "fixed_amount")):
            kind = next(name for name in fields if side in name and "kind" in name)
            value = next(name for name in fields if side in name and "value" in name)
            fields[kind], fields[value] = reward, "10"
        action = form["action"] or f"/admin/campaigns/{token}"
        saved = client.post(action, data=fields, query_string=None if "id_token" in action
                            else {"id_token": session_token(SHOP)})
        assert saved.status_code in (200, 302, 303)
        landing = shopify.proxy_get(f"r/{code}")
        assert landing.headers["Location"] == f"https://{SHOP}/discount/{code}?redirect=/"
        paid = shopify.post_webhook("orders/paid", order_payload(9590, 9502, "coupon-friend@example.com", code=code))
        assert paid.status_code == 200
        summary = client.get("/admin/api/summary", headers={"Authorization": f"Bearer {session_token(SHOP)}"})
        assert summary.get_json()["couponsIssued"] == 1


def test_compliance_webhooks_with_ids_no_shopify_id_can_be(shopify: ShopifyActions, advocate: str) -> None:
    """``customers/redact`` and ``customers/data_request`` naming ids beyond 64 bits (or "²") answer 200, not 500."""
    redact = load_payload("customers_redact")
    redact.update(shop_domain=SHOP, customer={"id": 10**25, "email": advocate, "phone": None},
                  orders_to_redact=[10**25, "\u00b2", 1])
    response = shopify.post_webhook("customers/redact", redact)
    assert response.status_code == 200, response.get_data(as_text=True)
    request = load_payload("customers_data_request")
    request.update(shop_domain=SHOP, customer={"id": 10**25, "email": advocate, "phone": None},
                   orders_requested=[10**25, "\u00b2"])
    response = shopify.post_webhook("customers/data_request", request)
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize("raw", ["20260101", "2026-W01-1", "2026W011"])
def test_dates_other_than_yyyy_mm_dd_are_invalid(client: FlaskClient, shopify: ShopifyActions,
                                                 integrator: Integrator, raw: str) -> None:
    """Joy analytics and the dashboard summary read ``YYYY-MM-DD`` only: other ISO forms are INVALID_DATE."""
    analytics = integrator.get("/rest_api/v2/referrals/analytics", query_string={"startDate": raw})
    assert analytics.status_code == 400, analytics.get_data(as_text=True)
    assert analytics.get_json()["error"]["code"] == "INVALID_DATE"
    summary = client.get("/admin/api/summary", query_string={"start": raw},
                         headers={"Authorization": f"Bearer {shopify.session_token()}"})
    assert summary.status_code == 400, summary.get_data(as_text=True)
    assert summary.get_json()["error"]["code"] == "INVALID_DATE"
