"""CONTRACT.md "Integrator REST API": the four seeds at their own paths, with their own examples."""

from __future__ import annotations

import base64
import copy
import typing as t

import pytest
from flask.testing import FlaskClient

from referral_plugin.models import Shop
from tests.conftest import make_shop
from tests.contract.conftest import Integrator
from tests.contract.conftest import order_payload
from tests.contract.conftest import register
from tests.shopify_actions import OTHER_SHOP
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions

# Seed 000's example request, verbatim (the campaign token is replaced by the shop's own).
SEED_REFER: dict[str, t.Any] = {
    "root": {
        "customer": [
            {
                "mobile": "7999836466",
                "referrals": {
                    "campaign_token": "J0H7Q",
                    "referral_type": {
                        "type": "MOBILE",
                        "referral": [
                            {"id": "", "invited_on": "20240910T16:35:52.pV7BF", "name": "Shikhar",
                             "identifier": "7999836416"}
                        ],
                    },
                },
            }
        ]
    }
}

ROUTES = [
    ("post", "/v1.1/customer/referrals"),
    ("get", "/v2/customers/lookup/referrals?source=INSTORE&identifierName=mobile&identifierValue=919777785205"),
    ("post", "/rest_api/v2/referrals/invitations"),
    ("get", "/rest_api/v2/referrals/customers/1/referrers"),
    ("get", "/rest_api/v2/referrals/customers/1/summary"),
    ("get", "/rest_api/v2/referrals/analytics?startDate=2026-01-01&endDate=2026-01-31"),
    ("get", "/api/v1/campaigns"),
]


def _default_token(integrator: Integrator) -> str:
    campaigns = integrator.get("/api/v1/campaigns").get_json()["data"]
    token: str = next(c["token"] for c in campaigns if c["isDefault"])
    return token


def _refer_body(token: str | None, *, mobile: str = "7999836466", kind: str = "MOBILE",
                identifier: str = "7999836416") -> dict[str, t.Any]:
    body = copy.deepcopy(SEED_REFER)
    customer = body["root"]["customer"][0]
    customer["mobile"] = mobile
    referrals = customer["referrals"]
    if token is None:
        del referrals["campaign_token"]
    else:
        referrals["campaign_token"] = token
    referrals["referral_type"]["type"] = kind
    referrals["referral_type"]["referral"][0]["identifier"] = identifier
    return body


# --- authentication ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["x-api-key", "bearer", "basic"])
def test_three_auth_forms(client: FlaskClient, api_key: str, form: str) -> None:
    """The key works as X-Api-Key, as a Bearer token, and as the HTTP Basic password."""
    headers = {
        "x-api-key": {"X-Api-Key": api_key},
        "bearer": {"Authorization": f"Bearer {api_key}"},
        "basic": {"Authorization": "Basic " + base64.b64encode(f"anyone:{api_key}".encode()).decode()},
    }[form]
    for method, path in ROUTES:
        kwargs: dict[str, t.Any] = {"json": {"email": "nobody@example.com"}} if method == "post" else {}
        response = getattr(client, method)(path, headers=headers, **kwargs)
        assert response.status_code != 401, (form, path)
        assert response.is_json, path


@pytest.mark.parametrize("headers", [
    {},
    {"X-Api-Key": "rpk_wrong_key"},
    {"Authorization": "Bearer rpk_wrong_key"},
    {"Authorization": "Basic " + base64.b64encode(b"user:rpk_wrong").decode()},
], ids=["missing", "wrong-header", "wrong-bearer", "wrong-basic"])
def test_missing_or_wrong_key_401_json(client: FlaskClient, api_key: str, headers: dict[str, str]) -> None:
    """A missing or wrong key is 401 with a JSON body on every API route."""
    for method, path in ROUTES:
        kwargs: dict[str, t.Any] = {"json": {"email": "x@example.com"}} if method == "post" else {}
        response = getattr(client, method)(path, headers=headers, **kwargs)
        assert response.status_code == 401, path
        assert response.is_json, path
        assert response.get_json() is not None


def test_key_is_bound_to_its_shop(shopify: ShopifyActions, integrator: Integrator) -> None:
    """One shop's key never sees another shop's customers."""
    make_shop(OTHER_SHOP)
    register(shopify, 4401, "other@example.com", shop=OTHER_SHOP)
    assert integrator.get("/rest_api/v2/referrals/customers/4401/summary").status_code == 404
    response = integrator.post("/rest_api/v2/referrals/invitations", json={"email": "other@example.com"})
    assert response.status_code == 404


def test_openapi_document(client: FlaskClient, shop: Shop) -> None:
    """``/api/openapi.json`` is an OpenAPI 3 document naming every seed route."""
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert str(document["openapi"]).startswith("3.")
    assert document["info"]["title"]
    for path in ["/v1.1/customer/referrals", "/v2/customers/lookup/referrals", "/rest_api/v2/referrals/invitations",
                 "/rest_api/v2/referrals/analytics", "/api/v1/campaigns"]:
        assert path in document["paths"], path
    assert any(p.endswith("/referrers") for p in document["paths"])
    assert any(p.endswith("/summary") for p in document["paths"])


def test_campaigns_fields(integrator: Integrator) -> None:
    """``/api/v1/campaigns`` lists campaigns with the documented fields."""
    data = integrator.get("/api/v1/campaigns").get_json()["data"]
    assert data
    for campaign in data:
        for key in ("token", "name", "status", "isDefault", "advocateReward", "friendReward"):
            assert key in campaign, key


# --- Capillary refer (seed 000) ---------------------------------------------------------------------------------


class TestCapillaryIndia:
    """Seed 000/001 examples verbatim, in a shop whose phone region is India (the seeds' numbers)."""

    @pytest.fixture
    def app_config(self, app_config: dict[str, t.Any]) -> dict[str, t.Any]:
        """Read national numbers as Indian."""
        return {**app_config, "DEFAULT_PHONE_REGION": "IN"}

    @pytest.fixture
    def referrer(self, shopify: ShopifyActions, shop: Shop) -> None:
        """Register the seed's referrer (mobile 917999836466, first name shikar)."""
        register(shopify, 3001, None, phone="+917999836466", first_name="shikar", last_name="")

    def test_seed_example_succeeds(self, integrator: Integrator, referrer: None) -> None:
        """The seed's request answers the seed's success response shape and codes."""
        body = _refer_body(_default_token(integrator))
        response = integrator.post("/v1.1/customer/referrals", json=body)
        assert response.status_code == 200
        answer = response.get_json()["response"]
        assert answer["status"] == {"success": "true", "code": 200, "message": "SUCCESS"}
        customer = answer["customers"]["customer"][0]
        assert customer["mobile"] == "917999836466"
        for key in ("email", "external_id", "firstname", "lastname"):
            assert key in customer
        assert customer["firstname"] == "shikar"
        referral_type = customer["referrals"]["referral_type"][0]
        assert referral_type["type"] == "MOBILE"
        referral = referral_type["referral"][0]
        assert referral["name"] == "Shikhar"
        assert referral["identifier"] == "7999836416"
        assert referral["invited_on"] == "20240910T16:35:52.pV7BF"
        assert referral["id"] == ""
        assert referral["status"]["code"] == 1000
        assert referral["status"]["success"] == "true"
        assert customer["item_status"]["code"] == 1000
        assert customer["item_status"]["success"] == "true"

    def test_seed_example_without_token_uses_default(self, integrator: Integrator, referrer: None) -> None:
        """Without ``campaign_token`` the default campaign is used."""
        response = integrator.post("/v1.1/customer/referrals", json=_refer_body(None))
        referral = response.get_json()["response"]["customers"]["customer"][0]["referrals"]["referral_type"][0]
        assert referral["referral"][0]["status"]["code"] == 1000

    def test_invalid_identifier_1701(self, integrator: Integrator, referrer: None) -> None:
        """The seed's failure example: an 8-digit mobile is 1701 for that referral, success "false"."""
        body = _refer_body(_default_token(integrator), identifier="79998364")
        answer = integrator.post("/v1.1/customer/referrals", json=body).get_json()["response"]
        assert answer["status"]["code"] == 200
        referral = answer["customers"]["customer"][0]["referrals"]["referral_type"][0]["referral"][0]
        assert referral["status"]["code"] == 1701
        assert referral["status"]["success"] == "false"
        assert referral["identifier"] == "79998364"

    def test_email_identifier_for_mobile_type_1701(self, integrator: Integrator, referrer: None) -> None:
        """An email sent as a MOBILE identifier is invalid for the type (1701)."""
        body = _refer_body(None, identifier="friend@example.com")
        answer = integrator.post("/v1.1/customer/referrals", json=body).get_json()["response"]
        referral = answer["customers"]["customer"][0]["referrals"]["referral_type"][0]["referral"][0]
        assert referral["status"]["code"] == 1701

    def test_email_referral(self, integrator: Integrator, referrer: None) -> None:
        """EMAIL referrals are supported (1000)."""
        body = _refer_body(None, kind="EMAIL", identifier="friend@example.com")
        answer = integrator.post("/v1.1/customer/referrals", json=body).get_json()["response"]
        referral = answer["customers"]["customer"][0]["referrals"]["referral_type"][0]["referral"][0]
        assert referral["status"]["code"] == 1000

    def test_unsupported_type_1206(self, integrator: Integrator, referrer: None) -> None:
        """A referral type other than MOBILE/EMAIL is 1206."""
        body = _refer_body(None, kind="WECHAT", identifier="someone")
        response = integrator.post("/v1.1/customer/referrals", json=body)
        assert response.status_code == 200
        customer = response.get_json()["response"]["customers"]["customer"][0]
        codes = {customer["item_status"]["code"]}
        codes |= {r["status"]["code"] for rt in customer["referrals"]["referral_type"] for r in rt["referral"]}
        assert 1206 in codes

    def test_unknown_customer_1012(self, integrator: Integrator, referrer: None) -> None:
        """A referrer mobile that names no customer is 1012."""
        body = _refer_body(None, mobile="9123456789")
        response = integrator.post("/v1.1/customer/referrals", json=body)
        assert response.status_code == 200
        customer = response.get_json()["response"]["customers"]["customer"][0]
        assert customer["item_status"]["code"] == 1012

    def test_bad_body_is_4xx_json(self, integrator: Integrator, referrer: None) -> None:
        """A body without ``root.customer`` is a 4xx JSON answer, not a 500."""
        for body in ({}, {"root": {}}, {"root": {"customer": "x"}}, [1, 2]):
            response = integrator.post("/v1.1/customer/referrals", json=body)
            assert 400 <= response.status_code < 500, body
            assert response.is_json

    def test_lookup_seed_example(self, shopify: ShopifyActions, integrator: Integrator) -> None:
        """Seed 001's example request answers the documented shape for the customer."""
        register(shopify, 3101, "grp3@example.com", phone="+919777785205", first_name="testgrp3",
                 last_name="testgrpv2")
        response = integrator.get("/v2/customers/lookup/referrals", query_string={
            "source": "INSTORE", "identifierName": "mobile", "identifierValue": "919777785205",
            "campaignToken": _default_token(integrator)})
        assert response.status_code == 200
        answer = response.get_json()
        assert answer["pagination"]["limit"] == 10
        assert answer["pagination"]["offset"] == 0
        assert isinstance(answer["pagination"]["total"], int)
        assert answer["warnings"] == [] and answer["errors"] == []
        entry = answer["data"][0]
        customer = entry["customer"]
        assert customer["id"] == 3101
        profile = customer["profiles"][0]
        assert profile["firstName"] == "testgrp3" and profile["lastName"] == "testgrpv2"
        for key in ("fields", "allFields", "identifiers", "commChannels", "userId", "accountId", "autoUpdateTime",
                    "identifiersAll"):
            assert key in profile, key
        assert profile["userId"] == 3101
        identifiers = {(i["type"], i["value"]) for i in profile["identifiers"]}
        assert ("mobile", "919777785205") in identifiers
        assert ("email", "grp3@example.com") in identifiers
        assert entry["referralCode"]
        for key in ("invitees", "referee", "incentives"):
            assert isinstance(entry[key], list), key

    def test_lookup_multiple_identifiers(self, shopify: ShopifyActions, integrator: Integrator) -> None:
        """Comma-separated identifiers (email,mobile) find the one customer."""
        register(shopify, 3201, "multi@example.com", phone="+915795008395")
        response = integrator.get("/v2/customers/lookup/referrals", query_string={
            "source": "INSTORE", "identifierName": "email,mobile",
            "identifierValue": "multi@example.com,915795008395"})
        assert response.status_code == 200
        assert response.get_json()["data"][0]["customer"]["id"] == 3201

    def test_refer_then_lookup_shows_invitee(self, integrator: Integrator, referrer: None) -> None:
        """A friend invited through refer is an invitee in the lookup."""
        integrator.post("/v1.1/customer/referrals", json=_refer_body(None))
        answer = integrator.get("/v2/customers/lookup/referrals", query_string={
            "source": "INSTORE", "identifierName": "mobile", "identifierValue": "917999836466"}).get_json()
        assert len(answer["data"][0]["invitees"]) == 1


def _lookup_error(integrator: Integrator, **params: str) -> tuple[int, list[int]]:
    query = {"source": "INSTORE", "identifierName": "email", "identifierValue": "known@example.com", **params}
    response = integrator.get("/v2/customers/lookup/referrals", query_string=query)
    assert response.is_json
    answer = response.get_json()
    return response.status_code, [int(e["code"]) for e in answer["errors"]]


def test_lookup_error_codes(shopify: ShopifyActions, integrator: Integrator) -> None:
    """Lookup errors carry 8015, 8003, 8013 and 1222 in ``errors[].code`` with a 4xx status."""
    register(shopify, 3301, "known@example.com")
    cases = {
        8015: {"identifierValue": "unknown@example.com"},
        8003: {"source": "NOT_A_SOURCE"},
        8013: {"identifierName": "shoeSize"},
        1222: {"campaignToken": "NOPE1"},
    }
    for code, params in cases.items():
        status, codes = _lookup_error(integrator, **params)
        assert 400 <= status < 500, (code, status)
        assert code in codes, (code, codes)
    status, codes = _lookup_error(integrator)
    assert status == 200 and codes == []


# --- DEFAULT_PHONE_REGION ---------------------------------------------------------------------------------------


def test_us_ten_digit_mobile_through_capillary(shopify: ShopifyActions, integrator: Integrator) -> None:
    """With the default region (US) a 10-digit US mobile names the customer and a 10-digit friend is valid."""
    register(shopify, 3401, "us@example.com", phone="+12025550143", first_name="Sam")
    body = _refer_body(None, mobile="2025550143", identifier="2025550188")
    response = integrator.post("/v1.1/customer/referrals", json=body)
    customer = response.get_json()["response"]["customers"]["customer"][0]
    assert customer["item_status"]["code"] == 1000
    assert customer["mobile"] == "12025550143"
    assert customer["referrals"]["referral_type"][0]["referral"][0]["status"]["code"] == 1000
    lookup = integrator.get("/v2/customers/lookup/referrals", query_string={
        "source": "INSTORE", "identifierName": "mobile", "identifierValue": "2025550143"})
    assert lookup.status_code == 200
    assert lookup.get_json()["data"][0]["customer"]["id"] == 3401


# --- Joy (seed 003) ---------------------------------------------------------------------------------------------


def _envelope(answer: dict[str, t.Any]) -> None:
    assert answer["success"] is True
    assert "data" in answer and "meta" in answer


def test_joy_invitation(shopify: ShopifyActions, integrator: Integrator) -> None:
    """``{"email"}`` answers ``success/data/meta`` with the customer's code and its invite link, every time the same."""
    register(shopify, 3501, "joy@example.com")
    response = integrator.post("/rest_api/v2/referrals/invitations", json={"email": "joy@example.com"})
    assert response.status_code == 200
    answer = response.get_json()
    _envelope(answer)
    code = answer["data"]["referralCode"]
    assert answer["data"]["inviteLink"] == f"https://{SHOP}/apps/referrals/r/{code}"
    again = integrator.post("/rest_api/v2/referrals/invitations", json={"email": "JOY@example.com"}).get_json()
    assert again["data"]["referralCode"] == code


@pytest.mark.parametrize("body", [{}, {"email": "not-an-email"}, {"email": ""}, {"email": 5}])
def test_joy_invitation_bad_input_4xx(integrator: Integrator, body: dict[str, t.Any]) -> None:
    """A missing or invalid email is a 4xx JSON error with success false."""
    response = integrator.post("/rest_api/v2/referrals/invitations", json=body)
    assert 400 <= response.status_code < 500
    assert response.get_json()["success"] is False


def test_joy_referrers_summary_analytics(shopify: ShopifyActions, integrator: Integrator) -> None:
    """After a rewarded referral: referrers meta.count, the summary's totals, and analytics' coupon usage."""
    register(shopify, 3601, "adv@example.com")
    register(shopify, 3602, "fr@example.com")
    code = integrator.code_of("adv@example.com")
    before = integrator.get("/rest_api/v2/referrals/analytics").get_json()
    _envelope(before)
    assert before["data"]["countCouponCodeUsage"] == 0
    response = shopify.post_webhook("orders/paid", order_payload(3690, 3602, "fr@example.com", code=code))
    assert response.status_code == 200

    referrers = integrator.get("/rest_api/v2/referrals/customers/3602/referrers").get_json()
    _envelope(referrers)
    assert referrers["meta"]["count"] == 1
    assert isinstance(referrers["data"], list) and len(referrers["data"]) == 1
    none = integrator.get("/rest_api/v2/referrals/customers/3601/referrers").get_json()
    assert none["meta"]["count"] == 0

    summary = integrator.get("/rest_api/v2/referrals/customers/3601/summary").get_json()
    _envelope(summary)
    assert summary["data"]["totalRedeemCoupon"] == 1
    assert summary["data"]["totalPointEarnRefer"] == 100
    assert integrator.summary(3602)["totalPointEarnRefer"] == 50
    assert integrator.summary(3602)["totalRedeemCoupon"] == 0

    import datetime as dt

    today = dt.date.today()
    window = {"startDate": (today - dt.timedelta(days=2)).isoformat(),
              "endDate": (today + dt.timedelta(days=1)).isoformat()}
    analytics = integrator.get("/rest_api/v2/referrals/analytics", query_string=window).get_json()
    _envelope(analytics)
    assert analytics["data"]["countCouponCodeUsage"] == 1
    past = integrator.get("/rest_api/v2/referrals/analytics",
                          query_string={"startDate": "2020-01-01", "endDate": "2020-01-31"}).get_json()
    assert past["data"]["countCouponCodeUsage"] == 0


def test_joy_unknown_customer_404(integrator: Integrator) -> None:
    """An unknown Shopify customer id is a 404 with success false."""
    for path in ("/rest_api/v2/referrals/customers/999999/summary",
                 "/rest_api/v2/referrals/customers/999999/referrers"):
        response = integrator.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["success"] is False


def test_joy_analytics_bad_dates_4xx(integrator: Integrator) -> None:
    """Bad dates are a 4xx, never a 500."""
    for query in ({"startDate": "yesterday"}, {"startDate": "2026-02-10", "endDate": "2026-02-01"},
                  {"endDate": "2026-13-45"}):
        response = integrator.get("/rest_api/v2/referrals/analytics", query_string=query)
        assert 400 <= response.status_code < 500, query
        assert response.get_json()["success"] is False


class TestProxyPrefix:
    """APP_PROXY_PREFIX changes the invite link."""

    @pytest.fixture
    def app_config(self, app_config: dict[str, t.Any]) -> dict[str, t.Any]:
        """Serve the storefront under ``/a/invite``."""
        return {**app_config, "APP_PROXY_PREFIX": "/a/invite"}

    def test_invite_link_uses_prefix(self, shopify: ShopifyActions, integrator: Integrator) -> None:
        """The invite link is ``https://{shop}{APP_PROXY_PREFIX}/r/{code}``."""
        register(shopify, 3701, "prefix@example.com")
        data = integrator.post("/rest_api/v2/referrals/invitations",
                               json={"email": "prefix@example.com"}).get_json()["data"]
        assert data["inviteLink"] == f"https://{SHOP}/a/invite/r/{data['referralCode']}"


def test_lookup_pagination(shopify: ShopifyActions, integrator: Integrator) -> None:
    """``limit``/``offset`` page the lists; ``pagination`` echoes them with the total."""
    register(shopify, 3801, "pager@example.com")
    body = {"root": {"customer": [{"email": "pager@example.com", "referrals": {"referral_type": {
        "type": "EMAIL", "referral": [{"id": "", "name": f"F{i}", "identifier": f"pf{i}@example.com",
                                       "invited_on": f"20240910T16:35:52.P{i}"} for i in range(3)]}}}]}}
    answer = integrator.post("/v1.1/customer/referrals", json=body).get_json()["response"]
    assert answer["customers"]["customer"][0]["item_status"]["code"] == 1000
    query = {"source": "INSTORE", "identifierName": "email", "identifierValue": "pager@example.com"}
    full = integrator.get("/v2/customers/lookup/referrals", query_string=query).get_json()
    assert len(full["data"][0]["invitees"]) == 3
    assert full["pagination"] == {"limit": 10, "offset": 0, "total": 3}
    page = integrator.get("/v2/customers/lookup/referrals",
                          query_string={**query, "limit": "1", "offset": "1"}).get_json()
    assert page["pagination"] == {"limit": 1, "offset": 1, "total": 3}
    assert len(page["data"][0]["invitees"]) == 1
    assert page["data"][0]["invitees"][0]["identifier"] != full["data"][0]["invitees"][0]["identifier"]
