"""A key of one shop never reads or changes another shop's data, on any route."""

from __future__ import annotations

from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.codes import get_or_create_code
from referral_plugin.referrals.invitations import invite
from tests.api.conftest import ApiClient
from tests.api.conftest import add_customer


def _populate_other(other_shop: Shop) -> Customer:
    """Give the other shop a customer with a code, an invitation sent, and a campaign token."""
    theirs = add_customer(other_shop, 9001, email="theirs@example.com", phone="+919777785205",
                          first_name="Their")
    get_or_create_code(other_shop, theirs)
    invite(other_shop, theirs, "email", "friend@example.com", source="test")
    ensure_default_campaign(other_shop).token = "OTHR2"
    db.session.commit()
    return theirs


def test_no_route_reads_another_shops_data(api: ApiClient, api_shop: Shop, other_shop: Shop) -> None:
    """Shop A's key cannot find shop B's customers, codes, campaigns or figures on any route."""
    theirs = _populate_other(other_shop)

    lookup = api.get("/v2/customers/lookup/referrals?source=INSTORE&identifierName=mobile,email,id"
                     "&identifierValue=919777785205,theirs@example.com,9001")
    assert lookup.status_code == 404 and lookup.get_json()["errors"][0]["code"] == 8015
    token = api.get("/v2/customers/lookup/referrals?source=INSTORE&identifierName=id&identifierValue=9001"
                    "&campaignToken=OTHR2")
    assert token.get_json()["errors"][0]["code"] == 1222

    assert api.post("/rest_api/v2/referrals/invitations", json={"email": "theirs@example.com"}).status_code == 404
    for leaf in ("referrers", "summary"):
        response = api.get(f"/rest_api/v2/referrals/customers/{theirs.shopify_customer_id}/{leaf}")
        assert response.status_code == 404
    analytics = api.get("/rest_api/v2/referrals/analytics").get_json()["data"]
    assert analytics["countInvitations"] == 0

    campaigns = api.get("/api/v1/campaigns").get_json()["data"]
    assert [c["token"] for c in campaigns] == [ensure_default_campaign(api_shop).token]


def test_refer_cannot_act_for_another_shops_customer(api: ApiClient, other_api: ApiClient, api_shop: Shop,
                                                     other_shop: Shop) -> None:
    """Shop A's key cannot invite on behalf of shop B's customer, nor use B's campaign token."""
    _populate_other(other_shop)
    body = {"root": {"customer": [{"mobile": "919777785205", "referrals": {"referral_type": {
        "type": "EMAIL", "referral": [{"id": "", "invited_on": "x", "name": "N", "identifier": "new@example.com"}]}}}]}}
    customer = api.post("/v1.1/customer/referrals", json=body).get_json()["response"]["customers"]["customer"][0]
    assert customer["item_status"]["code"] == 1012

    mine = add_customer(api_shop, 1, phone="+919777785205")
    body["root"]["customer"][0]["referrals"]["campaign_token"] = "OTHR2"
    customer = api.post("/v1.1/customer/referrals", json=body).get_json()["response"]["customers"]["customer"][0]
    assert customer["item_status"]["code"] == 1222
    assert db.session.scalars(select(Invitation.identifier).where(Invitation.shop_id == api_shop.id)).all() == []

    # The same body with shop B's own key works, and only in shop B.
    customer = other_api.post("/v1.1/customer/referrals", json=body).get_json()["response"]["customers"]["customer"][0]
    assert customer["item_status"]["code"] == 1000
    identifiers = db.session.scalars(select(Invitation.identifier).where(Invitation.shop_id == other_shop.id)).all()
    assert sorted(identifiers) == ["friend@example.com", "new@example.com"]
    assert db.session.scalars(select(Invitation).where(Invitation.advocate_id == mine.id)).all() == []
