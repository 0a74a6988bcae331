"""``GET /v2/customers/lookup/referrals``: Capillary's "Get Referrals (Lookup)" (seed 001)."""

from __future__ import annotations

import typing as t
from urllib.parse import urlencode

import pytest

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.invitations import invite
from tests.api.conftest import ApiClient
from tests.api.conftest import add_customer

PATH = "/v2/customers/lookup/referrals"


def lookup(api: ApiClient, **params: t.Any) -> t.Any:
    """Call the lookup with ``params`` and return the response."""
    return api.get(f"{PATH}?{urlencode(params)}")


@pytest.fixture
def seed_customer(api_shop: Shop) -> Customer:
    """Return the seed's customer (mobile 919777785205) in a campaign with the seed's token SL7UN."""
    ensure_default_campaign(api_shop).token = "SL7UN"
    return add_customer(api_shop, 564955301, email="testgrp3@example.com", phone="919777785205",
                        first_name="testgrp3", last_name="testgrpv2")


def test_seed_example_request(api: ApiClient, seed_customer: Customer) -> None:
    """The seed's request answers the seed's shape: pagination, one profile, code, empty lists, no errors."""
    response = lookup(api, source="INSTORE", identifierName="mobile", identifierValue="919777785205",
                      campaignToken="SL7UN")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"pagination", "data", "warnings", "errors"}
    assert body["pagination"] == {"limit": 10, "offset": 0, "total": 0}
    assert body["warnings"] == [] and body["errors"] == []
    [item] = body["data"]
    assert set(item) == {"customer", "referralCode", "invitees", "referee", "incentives"}
    assert item["customer"]["id"] == 564955301
    [profile] = item["customer"]["profiles"]
    assert set(profile) == {"firstName", "lastName", "fields", "allFields", "identifiers", "commChannels",
                            "userId", "accountId", "autoUpdateTime", "identifiersAll"}
    assert (profile["firstName"], profile["lastName"], profile["userId"]) == ("testgrp3", "testgrpv2", 564955301)
    assert profile["identifiers"] == [
        {"type": "externalId", "value": "564955301"},
        {"type": "email", "value": "testgrp3@example.com"},
        {"type": "mobile", "value": "919777785205"},
    ]
    assert profile["identifiersAll"] == profile["identifiers"]
    assert profile["fields"] == {} and profile["commChannels"] == [] and profile["accountId"] == ""
    assert profile["autoUpdateTime"].endswith("Z")
    assert item["referralCode"] and (item["invitees"], item["referee"], item["incentives"]) == ([], [], [])
    again = lookup(api, source="INSTORE", identifierName="mobile", identifierValue="919777785205",
                   campaignToken="SL7UN").get_json()
    assert again["data"][0]["referralCode"] == item["referralCode"]


def test_multiple_identifiers_the_primary_decides(api: ApiClient, api_shop: Shop, seed_customer: Customer) -> None:
    """With email and mobile naming different customers, the more authoritative identifier (mobile) decides."""
    add_customer(api_shop, 77, email="other@example.com", phone="+919777700000")
    response = lookup(api, source="INSTORE", identifierName="email,mobile",
                      identifierValue="other@example.com,919777785205")
    assert response.status_code == 200
    assert response.get_json()["data"][0]["customer"]["id"] == 564955301
    by_id = lookup(api, source="ECOMMERCE", identifierName="mobile,id", identifierValue="919777785205,77")
    assert by_id.get_json()["data"][0]["customer"]["id"] == 77


def test_an_unknown_primary_falls_back_to_a_matching_identifier(api: ApiClient, seed_customer: Customer) -> None:
    """When the mobile matches nobody, a matching email still names the customer."""
    response = lookup(api, source="INSTORE", identifierName="mobile,email",
                      identifierValue="919000000001,testgrp3@example.com")
    assert response.get_json()["data"][0]["customer"]["id"] == 564955301


def test_pagination_pages_the_lists_and_reports_the_total(api: ApiClient, api_shop: Shop,
                                                          seed_customer: Customer) -> None:
    """limit/offset page invitees; total counts them all."""
    for n in range(3):
        invite(api_shop, seed_customer, "email", f"friend{n}@example.com", source="test")
    db.session.commit()
    first = lookup(api, source="INSTORE", identifierName="mobile", identifierValue="919777785205", limit=2)
    body = first.get_json()
    assert body["pagination"] == {"limit": 2, "offset": 0, "total": 3}
    assert [i["identifier"] for i in body["data"][0]["invitees"]] == ["friend0@example.com", "friend1@example.com"]
    invitee = body["data"][0]["invitees"][0]
    assert invitee["type"] == "EMAIL" and invitee["status"] == "invited"
    rest = lookup(api, source="INSTORE", identifierName="mobile", identifierValue="919777785205", limit=2,
                  offset=2).get_json()
    assert [i["identifier"] for i in rest["data"][0]["invitees"]] == ["friend2@example.com"]
    assert rest["pagination"] == {"limit": 2, "offset": 2, "total": 3}


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"identifierName": "mobile", "identifierValue": "919111111111"}, 404, 8015),
    ({"identifierName": "email", "identifierValue": "nobody@example.com"}, 404, 8015),
    ({"identifierName": "id", "identifierValue": "999"}, 404, 8015),
    ({"source": "CARRIER_PIGEON"}, 400, 8003),
    ({"source": ""}, 400, 8003),
    ({"identifierName": "cardnumber", "identifierValue": "1234"}, 400, 8013),
    ({"identifierName": "email,mobile", "identifierValue": "a@example.com"}, 400, 8013),
    ({"identifierName": "", "identifierValue": ""}, 400, 8013),
    ({"identifierName": "id", "identifierValue": "abc"}, 400, 8013),
    ({"campaignToken": "NOPE1"}, 400, 1222),
    ({"limit": "0"}, 400, 400),
    ({"offset": "-1"}, 400, 400),
])
def test_documented_error_codes(api: ApiClient, seed_customer: Customer, params: dict[str, str], status: int,
                                code: int) -> None:
    """Each documented error answers in errors[].code, with an empty data list."""
    query = {"source": "INSTORE", "identifierName": "mobile", "identifierValue": "919777785205", **params}
    response = lookup(api, **query)
    assert response.status_code == status
    body = response.get_json()
    assert [e["code"] for e in body["errors"]] == [code]
    assert body["data"] == [] and set(body) == {"pagination", "data", "warnings", "errors"}


def test_a_big_limit_is_capped_with_a_warning(api: ApiClient, seed_customer: Customer) -> None:
    """A limit above 100 is served as 100 and says so in warnings."""
    body = lookup(api, source="INSTORE", identifierName="mobile", identifierValue="919777785205",
                  limit=5000).get_json()
    assert body["pagination"]["limit"] == 100 and body["warnings"]
