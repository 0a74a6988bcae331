"""CONTRACT.md rows probed at their edges: seeds in the default region, app loads, keys at rest, compliance."""

from __future__ import annotations

import copy
import time
import tomllib
import typing as t
from pathlib import Path
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from sqlalchemy import inspect
from sqlalchemy import text

from referral_plugin.extensions import db
from referral_plugin.models import Shop
from tests.contract.conftest import Integrator
from tests.contract.conftest import customer_payload
from tests.contract.conftest import full_refund
from tests.contract.conftest import order_payload
from tests.contract.conftest import register
from tests.contract.test_contract_api import SEED_REFER
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload
from tests.shopify_actions import proxy_query
from tests.shopify_actions import signed_admin_query

REPO = Path(__file__).resolve().parents[2]
TOPICS = {"customers/create", "orders/paid", "orders/cancelled", "refunds/create", "app/uninstalled",
          "customers/data_request", "customers/redact", "shop/redact"}


def _seed_body(**referral: t.Any) -> dict[str, t.Any]:
    body = copy.deepcopy(SEED_REFER)
    del body["root"]["customer"][0]["referrals"]["campaign_token"]
    body["root"]["customer"][0]["referrals"]["referral_type"]["referral"][0].update(referral)
    return body


def test_refer_seed_example_in_default_region(shopify: ShopifyActions, integrator: Integrator) -> None:
    """Seed 000's Indian numbers work in a shop on the default region (US) when the customer is stored in E.164."""
    register(shopify, 2001, None, phone="+917999836466", first_name="shikar", last_name="")
    answer = integrator.post("/v1.1/customer/referrals", json=_seed_body()).get_json()["response"]
    customer = answer["customers"]["customer"][0]
    assert customer["item_status"]["code"] == 1000, customer
    assert customer["mobile"] == "917999836466"
    assert customer["referrals"]["referral_type"][0]["referral"][0]["status"]["code"] == 1000


def test_lookup_seed_example_in_default_region(shopify: ShopifyActions, integrator: Integrator) -> None:
    """Seed 001's identifierValue ``919777785205`` (country code, no plus) finds the customer in a US shop."""
    register(shopify, 2101, "grp@example.com", phone="+919777785205", first_name="testgrp3")
    response = integrator.get("/v2/customers/lookup/referrals", query_string={
        "source": "INSTORE", "identifierName": "mobile", "identifierValue": "919777785205"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"][0]["customer"]["id"] == 2101


def test_refer_several_customers_mixed(shopify: ShopifyActions, integrator: Integrator) -> None:
    """One request with a found and an unknown customer answers per customer: 1000 and 1012."""
    register(shopify, 2201, "known@example.com")
    body = {"root": {"customer": [
        {"email": "known@example.com", "referrals": {"referral_type": [
            {"type": "EMAIL", "referral": [{"id": "", "name": "A", "identifier": "a1@example.com",
                                            "invited_on": "20240910T16:35:52.X"}]}]}},
        {"email": "ghost@example.com", "referrals": {"referral_type": [
            {"type": "EMAIL", "referral": [{"id": "", "name": "B", "identifier": "b1@example.com",
                                            "invited_on": "20240910T16:35:52.Y"}]}]}},
    ]}}
    response = integrator.post("/v1.1/customer/referrals", json=body)
    assert response.status_code == 200
    customers = response.get_json()["response"]["customers"]["customer"]
    assert [c["item_status"]["code"] for c in customers] == [1000, 1012]


def test_repeat_refer_is_idempotent(shopify: ShopifyActions, integrator: Integrator) -> None:
    """Referring the same friend twice is 1000 both times and one invitee."""
    register(shopify, 2301, "again@example.com")
    body = {"root": {"customer": [{"email": "again@example.com", "referrals": {"referral_type": {
        "type": "EMAIL", "referral": [{"id": "", "name": "F", "identifier": "f@example.com",
                                       "invited_on": "20240910T16:35:52.Z"}]}}}]}}
    for _ in range(2):
        answer = integrator.post("/v1.1/customer/referrals", json=body).get_json()["response"]
        assert answer["customers"]["customer"][0]["item_status"]["code"] == 1000
    lookup = integrator.get("/v2/customers/lookup/referrals", query_string={
        "source": "INSTORE", "identifierName": "email", "identifierValue": "again@example.com"}).get_json()
    assert len(lookup["data"][0]["invitees"]) == 1


def test_keys_are_stored_hashed(app: t.Any, integrator: Integrator, api_key: str) -> None:
    """The API key printed by the CLI appears nowhere in the database."""
    tables = inspect(db.engine).get_table_names()  # SQLite and PostgreSQL alike
    for table in tables:
        for row in db.session.execute(text(f'select * from "{table}"')):
            assert not any(api_key in str(value) for value in row), table
    # Only the key's secret part matters: the visible prefix may be stored for lookup.
    assert integrator.get("/api/v1/campaigns").status_code == 200


def test_app_load_for_uninstalled_shop_goes_to_install(client: FlaskClient, shop: Shop) -> None:
    """Shopify's signed app load (``/?shop=&hmac=&timestamp=``) of a shop never installed leads to the install."""
    query = signed_admin_query({"shop": "brand-new.myshopify.com", "embedded": "1"})
    response = client.get("/", query_string=query)
    if response.status_code in (301, 302, 303, 307):
        location = response.headers["Location"]
        assert "/auth/install" in location or (
            urlsplit(location).netloc == "brand-new.myshopify.com" and "/admin/oauth/authorize" in location), location
    else:
        assert response.status_code in (200, 401)
        assert "app-bridge.js" in response.get_data(as_text=True)


def test_app_toml_declares_every_topic() -> None:
    """``shopify.app.toml`` declares all eight topics (so the callback need not register them), and the proxy."""
    config = tomllib.loads((REPO / "shopify.app.toml").read_text())
    declared: set[str] = set()
    for subscription in config["webhooks"]["subscriptions"]:
        declared |= set(subscription.get("topics", [])) | set(subscription.get("compliance_topics", []))
        assert subscription["uri"].startswith(("/webhooks", "https://"))
    assert TOPICS <= declared
    proxy = config["app_proxy"]
    assert f"/{proxy['prefix']}/{proxy['subpath']}" == "/apps/referrals"
    assert proxy["url"].endswith("/proxy")
    assert config["access_scopes"]["scopes"] == (
        "read_customers,write_customers,read_orders,write_discounts,write_app_proxy")


def test_customers_redact_erases_the_customer(shopify: ShopifyActions, integrator: Integrator) -> None:
    """``customers/redact`` removes the customer's personal data: they can no longer be looked up by email."""
    register(shopify, 2401, "forget-me@example.com")
    payload = load_payload("customers_redact")
    payload.update(shop_domain=SHOP, customer={"id": 2401, "email": "forget-me@example.com", "phone": None},
                   orders_to_redact=[])
    assert shopify.post_webhook("customers/redact", payload).status_code == 200
    lookup = integrator.get("/v2/customers/lookup/referrals", query_string={
        "source": "INSTORE", "identifierName": "email", "identifierValue": "forget-me@example.com"})
    assert lookup.status_code == 404


def test_uninstall_revokes_api_access(shopify: ShopifyActions, integrator: Integrator) -> None:
    """After ``app/uninstalled`` the shop's keys no longer open its data."""
    assert integrator.get("/api/v1/campaigns").status_code == 200
    assert shopify.post_webhook("app/uninstalled", load_payload("app_uninstalled")).status_code == 200
    assert integrator.get("/api/v1/campaigns").status_code == 401


def test_api_errors_are_json_in_each_envelope(integrator: Integrator) -> None:
    """Unknown paths and wrong methods under each API prefix answer JSON 404/405, never HTML."""
    cases = [("get", "/v1.1/customer/referrals", 405), ("get", "/rest_api/v2/referrals/nope", 404),
             ("get", "/api/v1/nope", 404), ("post", "/api/v1/campaigns", 405),
             ("get", "/v2/customers/lookup/nope", 404)]
    for method, path, status in cases:
        response = getattr(integrator, method)(path)
        assert response.status_code == status, path
        assert response.is_json, path


def test_future_timestamps_refused(client: FlaskClient, shop: Shop) -> None:
    """A timestamp an hour in the future is as bad as a stale one (proxy and install)."""
    future = int(time.time()) + 3600
    assert client.get(f"/proxy/widget?{proxy_query(None, timestamp=future)}").status_code in (401, 403)
    query = signed_admin_query({"shop": "x-shop.myshopify.com", "timestamp": str(future)})
    response = client.get("/auth/install", query_string=query)
    assert response.status_code in (400, 401)
    assert "x-shop.myshopify.com" not in response.headers.get("Location", "")


def test_webhook_body_not_an_object_or_empty_is_400(shopify: ShopifyActions, shop: Shop) -> None:
    """A validly signed body that is empty or not a JSON object is a 400."""
    for body in (b"[]", b"", b"null", b"\xff\xfe"):
        assert shopify.post_webhook("customers/create", body).status_code == 400, body


def test_refunds_adding_up_to_full_take_everything_back_once(shopify: ShopifyActions,
                                                              integrator: Integrator) -> None:
    """Two half refunds make a full refund (all rewards back), and a redelivered refund takes nothing more."""
    register(shopify, 2501, "adv2@example.com")
    register(shopify, 2502, "fr2@example.com")
    code = integrator.code_of("adv2@example.com")
    order = order_payload(2590, 2502, "fr2@example.com", code=code, total="120.00")
    assert shopify.post_webhook("orders/paid", order).status_code == 200

    def half(refund_id: int) -> dict[str, t.Any]:
        refund = full_refund(order, refund_id)
        refund["transactions"][0]["amount"] = "60.00"
        for item in refund["refund_line_items"]:
            item["subtotal"] = 60.0
            for money in item["subtotal_set"].values():
                money["amount"] = "60.00"
        return refund

    assert shopify.post_webhook("refunds/create", half(2591)).status_code == 200
    assert shopify.post_webhook("refunds/create", half(2592)).status_code == 200
    assert shopify.post_webhook("refunds/create", half(2592)).status_code == 200
    assert integrator.summary(2501)["totalPointEarnRefer"] == 0
    assert integrator.summary(2502)["totalPointEarnRefer"] == 0


def test_odd_customer_ids_answer_json(integrator: Integrator) -> None:
    """Customer ids that are not numbers (slashes, unicode digits, huge) are a JSON 4xx, never HTML or a 500."""
    for raw in ("0%2F", "%C2%B2", "abc", "99999999999999999999999999", "-1"):
        for tail in ("referrers", "summary"):
            response = integrator.get(f"/rest_api/v2/referrals/customers/{raw}/{tail}")
            assert 400 <= response.status_code < 500, (raw, tail, response.status_code)
            assert response.is_json, (raw, tail)
            assert response.get_json()["success"] is False


def test_event_id_shared_across_topics_is_not_a_duplicate(shopify: ShopifyActions, integrator: Integrator) -> None:
    """One merchant action fires several topics with one event id: each topic is still processed once."""
    register(shopify, 2601, "adv3@example.com")
    code = integrator.code_of("adv3@example.com")
    created = shopify.post_webhook("customers/create", customer_payload(2602, "fr3@example.com"), event_id="ev-shared")
    assert created.status_code == 200
    order = order_payload(2690, 2602, "fr3@example.com", code=code)
    assert shopify.post_webhook("orders/paid", order, event_id="ev-shared").status_code == 200
    assert integrator.summary(2601)["totalPointEarnRefer"] == 100
