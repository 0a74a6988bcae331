"""``POST /v1.1/customer/referrals``: Capillary's "Refer Customer", request for request (seed 000)."""

from __future__ import annotations

import copy
import typing as t

import pytest
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import ensure_default_campaign
from tests.api.conftest import ApiClient
from tests.api.conftest import add_customer

PATH = "/v1.1/customer/referrals"

SEED_REQUEST: dict[str, t.Any] = {
    "root": {
        "customer": [
            {
                "mobile": "7999836466",
                "referrals": {
                    "campaign_token": "J0H7Q",
                    "referral_type": {
                        "type": "MOBILE",
                        "referral": [
                            {
                                "id": "",
                                "invited_on": "20240910T16:35:52.pV7BF",
                                "name": "Shikhar",
                                "identifier": "7999836416",
                            }
                        ],
                    },
                },
            }
        ]
    }
}


def seed_response(identifier: str, status: dict[str, t.Any], external_id: str) -> dict[str, t.Any]:
    """Return the seed's documented response (``external_id`` is our Shopify customer id)."""
    return {
        "response": {
            "status": {"success": "true", "code": 200, "message": "SUCCESS"},
            "customers": {
                "customer": [
                    {
                        "email": None,
                        "mobile": "917999836466",
                        "external_id": external_id,
                        "firstname": "shikar",
                        "lastname": "",
                        "referrals": {
                            "referral_type": [
                                {
                                    "type": "MOBILE",
                                    "referral": [
                                        {
                                            "id": "",
                                            "name": "Shikhar",
                                            "identifier": identifier,
                                            "invited_on": "20240910T16:35:52.pV7BF",
                                            "status": status,
                                        }
                                    ],
                                }
                            ]
                        },
                        "item_status": {"success": "true", "code": 1000,
                                        "message": "Referrals are invited successfully"},
                    }
                ]
            },
        }
    }


def use_seed_token(shop: Shop) -> None:
    """Give the shop's default campaign the seed's token ``J0H7Q``."""
    ensure_default_campaign(shop).token = "J0H7Q"
    db.session.commit()


def request_with(**changes: t.Any) -> dict[str, t.Any]:
    """Return a copy of the seed request with the first customer's fields changed."""
    body = copy.deepcopy(SEED_REQUEST)
    body["root"]["customer"][0].update(changes)
    return body


def test_seed_request_gets_the_documented_success_response(api: ApiClient, api_shop: Shop,
                                                            advocate: Customer) -> None:
    """The seed's body answers exactly the seed's success response, and the invitation is stored."""
    use_seed_token(api_shop)
    response = api.post(PATH, json=SEED_REQUEST)
    assert response.status_code == 200
    assert response.get_json() == seed_response(
        "7999836416", {"success": "true", "code": 1000, "message": "Refer was successful"}, "5001")
    invitation = db.session.scalars(select(Invitation)).one()
    assert (invitation.channel, invitation.identifier, invitation.name) == ("mobile", "917999836416", "Shikhar")
    assert (invitation.source, invitation.external_ref) == ("capillary", "20240910T16:35:52.pV7BF")
    assert invitation.advocate_id == advocate.id and invitation.shop_id == api_shop.id


def test_invalid_identifier_gets_the_documented_1701_response(api: ApiClient, api_shop: Shop,
                                                               advocate: Customer) -> None:
    """A mobile that is not a number answers the seed's "Invalid Identifier for the type" response."""
    use_seed_token(api_shop)
    body = copy.deepcopy(SEED_REQUEST)
    body["root"]["customer"][0]["referrals"]["referral_type"]["referral"][0]["identifier"] = "79998364"
    response = api.post(PATH, json=body)
    assert response.status_code == 200
    assert response.get_json() == seed_response(
        "79998364", {"success": "false", "code": 1701, "message": "Invalid Identifier for the type"}, "5001")
    assert db.session.scalars(select(Invitation)).all() == []


def test_email_referrals_and_a_bad_email(api: ApiClient, api_shop: Shop, advocate: Customer) -> None:
    """EMAIL referrals are invited; a malformed email is 1701 next to them."""
    body = request_with(referrals={"referral_type": [{"type": "EMAIL", "referral": [
        {"id": "", "invited_on": "a", "name": "Ann", "identifier": "Ann@Example.com"},
        {"id": "", "invited_on": "b", "name": "Bob", "identifier": "not-an-email"},
    ]}]})
    referrals = api.post(PATH, json=body).get_json()["response"]["customers"]["customer"][0]["referrals"]
    codes = [r["status"]["code"] for r in referrals["referral_type"][0]["referral"]]
    assert codes == [1000, 1701]
    assert db.session.scalars(select(Invitation.identifier)).all() == ["ann@example.com"]


def test_unknown_customer_is_1012(api: ApiClient, api_shop: Shop, advocate: Customer) -> None:
    """A referrer mobile no customer has answers item_status 1012 and invites nobody."""
    use_seed_token(api_shop)
    response = api.post(PATH, json=request_with(mobile="9876543210"))
    assert response.status_code == 200
    customer = response.get_json()["response"]["customers"]["customer"][0]
    assert customer["item_status"] == {"success": "false", "code": 1012,
                                       "message": "Cannot find a customer for provided mobile"}
    assert customer["referrals"]["referral_type"][0]["referral"][0]["status"]["code"] == 1012
    assert db.session.scalars(select(Invitation)).all() == []


def test_unsupported_referral_type_is_1206(api: ApiClient, api_shop: Shop, advocate: Customer) -> None:
    """A referral type other than MOBILE or EMAIL is 1206 per referral and for the customer."""
    use_seed_token(api_shop)
    body = copy.deepcopy(SEED_REQUEST)
    body["root"]["customer"][0]["referrals"]["referral_type"]["type"] = "WECHAT"
    customer = api.post(PATH, json=body).get_json()["response"]["customers"]["customer"][0]
    referral = customer["referrals"]["referral_type"][0]
    assert referral["type"] == "WECHAT"
    assert referral["referral"][0]["status"] == {"success": "false", "code": 1206,
                                                 "message": "Referral type is not supported"}
    assert customer["item_status"]["code"] == 1206
    assert db.session.scalars(select(Invitation)).all() == []


def test_unknown_campaign_token_is_1222(api: ApiClient, api_shop: Shop, advocate: Customer) -> None:
    """An unknown campaign token is item_status 1222 (the lookup seed's code for an invalid token)."""
    customer = api.post(PATH, json=SEED_REQUEST).get_json()["response"]["customers"]["customer"][0]
    assert customer["item_status"]["code"] == 1222 and customer["item_status"]["success"] == "false"
    assert db.session.scalars(select(Invitation)).all() == []


def test_repeating_a_referral_is_idempotent(api: ApiClient, api_shop: Shop, advocate: Customer) -> None:
    """Sending the same referral twice answers 1000 both times and stores one invitation."""
    use_seed_token(api_shop)
    for _ in range(2):
        customer = api.post(PATH, json=SEED_REQUEST).get_json()["response"]["customers"]["customer"][0]
        assert customer["referrals"]["referral_type"][0]["referral"][0]["status"]["code"] == 1000
    assert len(db.session.scalars(select(Invitation)).all()) == 1


def test_several_customers_and_no_token_use_the_default_campaign(api: ApiClient, api_shop: Shop,
                                                                  advocate: Customer) -> None:
    """Each customer gets its own result; without campaign_token the default campaign is used."""
    body = {"root": {"customer": [
        {"mobile": "+91 79998 36466", "referrals": {"referral_type": {"type": "mobile", "referral": [
            {"identifier": "7999836417", "name": "X", "invited_on": "t", "id": "7"}]}}},
        {"email": "nobody@example.com", "referrals": {"referral_type": []}},
    ]}}
    customers = api.post(PATH, json=body).get_json()["response"]["customers"]["customer"]
    assert [c["item_status"]["code"] for c in customers] == [1000, 1012]
    assert customers[1]["item_status"]["message"] == "Cannot find a customer for provided email"
    invitation = db.session.scalars(select(Invitation)).one()
    assert invitation.campaign_id == ensure_default_campaign(api_shop).id


def test_inviting_oneself_is_refused(api: ApiClient, api_shop: Shop, advocate: Customer) -> None:
    """An advocate cannot invite their own number."""
    use_seed_token(api_shop)
    body = copy.deepcopy(SEED_REQUEST)
    body["root"]["customer"][0]["referrals"]["referral_type"]["referral"][0]["identifier"] = "7999836466"
    status = api.post(PATH, json=body).get_json()["response"]["customers"]["customer"][0][
        "referrals"]["referral_type"][0]["referral"][0]["status"]
    assert status["code"] == 1701 and "SELF_INVITE" in status["message"]


def test_malformed_bodies_are_400_in_the_capillary_envelope(api: ApiClient, api_shop: Shop) -> None:
    """A body without root.customer is 400 with response.status success "false"."""
    for body in (b"not json", b"[]", b'{"root": {}}', b'{"root": {"customer": "x"}}'):
        response = api.post(PATH, data=body, content_type="application/json")
        assert response.status_code == 400
        assert response.get_json()["response"]["status"]["success"] == "false"
        assert response.get_json()["response"]["status"]["code"] == 400


def test_oversized_batches_are_refused_before_anything_is_written(api: ApiClient, api_shop: Shop,
                                                                  advocate: Customer) -> None:
    """More than 100 customers, or 100 referrals for one customer, is 400 and invites nobody."""
    ok = copy.deepcopy(SEED_REQUEST["root"]["customer"][0])
    too_many = copy.deepcopy(ok)
    too_many["referrals"]["referral_type"]["referral"] = [
        {"id": "", "invited_on": "x", "name": "n", "identifier": f"f{n}@example.com"} for n in range(101)]
    too_many["referrals"]["referral_type"]["type"] = "EMAIL"
    for body in ({"root": {"customer": [ok] * 101}}, {"root": {"customer": [ok, too_many]}}):
        response = api.post(PATH, json=body)
        assert response.status_code == 400
        assert response.get_json()["response"]["status"]["code"] == 400
    assert db.session.scalars(select(Invitation)).all() == []


class TestWithTheContractsDefaultRegion:
    """With DEFAULT_PHONE_REGION at its default (US), the seed's Indian numbers without +91 still work."""

    @pytest.fixture
    def app_config(self, app_config: dict[str, t.Any]) -> dict[str, t.Any]:
        """Go back to the contract's default phone region."""
        return {**app_config, "DEFAULT_PHONE_REGION": "US"}

    def test_seed_request_in_a_us_shop(self, api: ApiClient, api_shop: Shop, advocate: Customer) -> None:
        """The advocate is found by national number and the friend's number is read in the advocate's country."""
        use_seed_token(api_shop)
        response = api.post(PATH, json=SEED_REQUEST)
        assert response.get_json() == seed_response(
            "7999836416", {"success": "true", "code": 1000, "message": "Refer was successful"}, "5001")
        assert db.session.scalars(select(Invitation.identifier)).one() == "917999836416"

    def test_seed_failure_in_a_us_shop(self, api: ApiClient, api_shop: Shop, advocate: Customer) -> None:
        """The seed's short number is still 1701 whatever the region."""
        use_seed_token(api_shop)
        body = copy.deepcopy(SEED_REQUEST)
        body["root"]["customer"][0]["referrals"]["referral_type"]["referral"][0]["identifier"] = "79998364"
        assert api.post(PATH, json=body).get_json() == seed_response(
            "79998364", {"success": "false", "code": 1701, "message": "Invalid Identifier for the type"}, "5001")

    def test_an_ambiguous_national_number_finds_nobody(self, api: ApiClient, api_shop: Shop,
                                                       advocate: Customer) -> None:
        """When two countries' customers share the national number, a number without country code is 1012."""
        add_customer(api_shop, 5002, phone="+447999836466")
        use_seed_token(api_shop)
        customer = api.post(PATH, json=SEED_REQUEST).get_json()["response"]["customers"]["customer"][0]
        assert customer["item_status"]["code"] == 1012


def test_a_campaign_that_ended_refuses_the_referral(api: ApiClient, api_shop: Shop, advocate: Customer) -> None:
    """Referring into a program that is over: item_status 1222 saying so, each referral too, nothing stored."""
    import datetime as dt

    use_seed_token(api_shop)
    ensure_default_campaign(api_shop).ends_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    db.session.commit()
    customer = api.post(PATH, json=SEED_REQUEST).get_json()["response"]["customers"]["customer"][0]
    assert customer["item_status"]["code"] == 1222 and customer["item_status"]["success"] == "false"
    assert "ended" in customer["item_status"]["message"]
    assert customer["referrals"]["referral_type"][0]["referral"][0]["status"] == customer["item_status"]
    assert db.session.scalars(select(Invitation)).all() == []
