"""The Capillary lookup's three lists, row by row: fields, order, pages, campaign and shop scope."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import LedgerEntry
from referral_plugin.models import Referral
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import ensure_default_campaign
from tests.api.conftest import ApiClient
from tests.api.conftest import add_customer

PATH = "/v2/customers/lookup/referrals"
T0 = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)
#: The advocate's invitations in the default campaign, in the order the lookup lists them.
INVITED = ["a@example.com", "b@example.com", "c1@example.com", "c2@example.com", "d@example.com",
           "e@example.com", "f@example.com"]


@dataclasses.dataclass
class Busy:
    """An advocate with invitations, referrals and ledger rows in two campaigns, and decoys around them."""

    shop: Shop
    advocate: Customer
    default: Campaign
    spring: Campaign


def at(days: int, hours: int = 0) -> dt.datetime:
    """Return a moment ``days`` (and ``hours``) after T0."""
    return T0 + dt.timedelta(days=days, hours=hours)


def iso(moment: dt.datetime) -> str:
    """Return the lookup's timestamp form."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def rows_for(shop: Shop, campaign: Campaign, advocate: Customer) -> t.Iterator[Invitation]:
    """Yield the advocate's invitations in the default campaign, out of order on purpose."""
    order = [(4, "d@example.com"), (0, "a@example.com"), (6, "f@example.com"), (2, "c1@example.com"),
             (1, "b@example.com"), (5, "e@example.com"), (2, "c2@example.com")]
    for days, identifier in order:
        yield Invitation(shop_id=shop.id, campaign_id=campaign.id, advocate_id=advocate.id, channel="email",
                         identifier=identifier, status="invited", source="widget", invited_at=at(days))


@pytest.fixture
def busy(api_shop: Shop, other_shop: Shop) -> Busy:
    """Build the busy advocate (Shopify id 9001) and the rows that must stay out of its answer."""
    default = ensure_default_campaign(api_shop)
    spring = Campaign(shop_id=api_shop.id, token="SPRNG", name="Spring")
    db.session.add(spring)
    advocate = add_customer(api_shop, 9001, email="ada@example.com", phone="+919876543210", first_name="Ada",
                            last_name="Lovelace")
    friend = add_customer(api_shop, 9101, email="bo@example.com", phone="+919800000001", first_name="Bo",
                          last_name="Friend")
    quiet = add_customer(api_shop, 9102, email="cy@example.com")
    bystander = add_customer(api_shop, 9002, email="by@example.com")
    # c1 and c2 share a timestamp: c1 is written first, so its id breaks the tie.
    db.session.add_all(rows_for(api_shop, default, advocate))
    db.session.add_all([
        Invitation(shop_id=api_shop.id, campaign_id=spring.id, advocate_id=advocate.id, channel="mobile",
                   identifier="919811111111", name="Spring Friend", status="joined", source="capillary",
                   external_ref="2025-02-01", invited_at=at(3), joined_at=at(3, 5)),
        Invitation(shop_id=api_shop.id, campaign_id=default.id, advocate_id=bystander.id, channel="email",
                   identifier="z@example.com", status="invited", source="widget", invited_at=at(0)),
    ])
    db.session.flush()
    rewarded = Referral(shop_id=api_shop.id, campaign_id=default.id, advocate_id=advocate.id, friend_id=friend.id,
                        source="discount_code", status="rewarded", shopify_order_id=5551, order_name="#1001",
                        order_subtotal=Decimal("120.00"), currency="USD", created_at=at(1), decided_at=at(2))
    held = Referral(shop_id=api_shop.id, campaign_id=default.id, advocate_id=advocate.id, friend_id=quiet.id,
                    source="landing_site", status="held", reason="HOLD_PERIOD", shopify_order_id=5552,
                    order_name="#1002", created_at=at(3), decided_at=at(3, 1), hold_until=at(17))
    orphan = Referral(shop_id=api_shop.id, campaign_id=default.id, advocate_id=advocate.id, friend_id=None,
                      source="invitation", status="pending", created_at=at(0))
    db.session.add_all([rewarded, held, orphan])
    db.session.flush()
    db.session.add_all([
        LedgerEntry(shop_id=api_shop.id, customer_id=advocate.id, referral_id=rewarded.id, campaign_id=default.id,
                    entry_type="grant", side="advocate", reward_kind="points", points=100, amount=Decimal(0),
                    idempotency_key="grant:5551:advocate", shopify_order_id=5551, created_at=at(2)),
        LedgerEntry(shop_id=api_shop.id, customer_id=advocate.id, referral_id=held.id, campaign_id=default.id,
                    entry_type="hold", side="advocate", reward_kind="fixed_amount", points=0,
                    amount=Decimal("10.50"), currency="USD", idempotency_key="hold:5552:advocate",
                    shopify_order_id=5552, available_at=at(17), created_at=at(3, 1)),
        LedgerEntry(shop_id=api_shop.id, customer_id=advocate.id, campaign_id=default.id, entry_type="issue",
                    side="advocate", reward_kind="fixed_amount", points=0, amount=Decimal("5.00"), currency="USD",
                    discount_code="ADA-5OFF", idempotency_key="issue:manual:1", reason="GOODWILL",
                    created_at=at(4)),
        # Decoys: the advocate in another campaign, and the friend's own row.
        LedgerEntry(shop_id=api_shop.id, customer_id=advocate.id, campaign_id=spring.id, entry_type="grant",
                    side="advocate", reward_kind="points", points=7, amount=Decimal(0),
                    idempotency_key="grant:spring:advocate", created_at=at(1)),
        LedgerEntry(shop_id=api_shop.id, customer_id=friend.id, referral_id=rewarded.id, campaign_id=default.id,
                    entry_type="grant", side="friend", reward_kind="points", points=50, amount=Decimal(0),
                    idempotency_key="grant:5551:friend", shopify_order_id=5551, created_at=at(2)),
    ])
    # The same Shopify id in another shop, with an invitation of its own.
    twin = add_customer(other_shop, 9001, email="ada@example.com")
    db.session.add(Invitation(shop_id=other_shop.id, campaign_id=ensure_default_campaign(other_shop).id,
                              advocate_id=twin.id, channel="email", identifier="twin@example.com",
                              status="invited", source="widget", invited_at=at(0)))
    db.session.commit()
    return Busy(api_shop, advocate, default, spring)


def lookup(api: ApiClient, **params: t.Any) -> t.Any:
    """Look up the busy advocate by external id (unless ``params`` say otherwise); return the JSON body."""
    query = {"source": "INSTORE", "identifierName": "externalId", "identifierValue": "9001", **params}
    response = api.get(f"{PATH}?{urlencode(query)}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_each_list_holds_the_advocates_rows_in_order_with_their_fields(api: ApiClient, busy: Busy) -> None:
    """Invitees, referees and incentives are the advocate's rows in the campaign, oldest first, every field."""
    body = lookup(api, limit=100)
    assert body["pagination"] == {"limit": 100, "offset": 0, "total": 7}
    [item] = body["data"]
    assert item["customer"]["id"] == 9001
    assert [i["identifier"] for i in item["invitees"]] == INVITED
    assert item["invitees"][0] == {
        "type": "EMAIL", "identifier": "a@example.com", "name": None, "invitedOn": iso(at(0)),
        "invitedAt": iso(at(0)), "source": "widget", "status": "invited", "joinedAt": None, "purchasedAt": None,
    }
    assert item["referee"] == [
        {"customerId": None, "firstName": None, "lastName": None, "identifiers": [], "eventType": "REGISTRATION",
         "orderName": None, "status": "pending", "reason": None, "source": "invitation", "referredOn": iso(at(0)),
         "decidedOn": None, "holdUntil": None},
        {"customerId": 9101, "firstName": "Bo", "lastName": "Friend",
         "identifiers": [{"type": "externalId", "value": "9101"}, {"type": "email", "value": "bo@example.com"},
                         {"type": "mobile", "value": "919800000001"}],
         "eventType": "TRANSACTION", "orderName": "#1001", "status": "rewarded", "reason": None,
         "source": "discount_code", "referredOn": iso(at(1)), "decidedOn": iso(at(2)), "holdUntil": None},
        {"customerId": 9102, "firstName": None, "lastName": None,
         "identifiers": [{"type": "externalId", "value": "9102"}, {"type": "email", "value": "cy@example.com"}],
         "eventType": "TRANSACTION", "orderName": "#1002", "status": "held", "reason": "HOLD_PERIOD",
         "source": "landing_site", "referredOn": iso(at(3)), "decidedOn": iso(at(3, 1)), "holdUntil": iso(at(17))},
    ]
    assert item["incentives"] == [
        {"type": "POINTS", "entryType": "grant", "side": "advocate", "rewardKind": "points", "points": 100,
         "amount": 0.0, "currency": None, "couponCode": None, "reason": None, "orderId": 5551,
         "issuedOn": iso(at(2)), "availableAt": None},
        {"type": "COUPON", "entryType": "hold", "side": "advocate", "rewardKind": "fixed_amount", "points": 0,
         "amount": 10.5, "currency": "USD", "couponCode": None, "reason": None, "orderId": 5552,
         "issuedOn": iso(at(3, 1)), "availableAt": iso(at(17))},
        {"type": "COUPON", "entryType": "issue", "side": "advocate", "rewardKind": "fixed_amount", "points": 0,
         "amount": 5.0, "currency": "USD", "couponCode": "ADA-5OFF", "reason": "GOODWILL", "orderId": None,
         "issuedOn": iso(at(4)), "availableAt": None},
    ]


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_pages_put_together_are_the_whole_lists(api: ApiClient, busy: Busy, limit: int) -> None:
    """Walking the pages with any limit yields each list once, in order, and the same total on every page."""
    whole = lookup(api, limit=100)["data"][0]
    walked: dict[str, list[t.Any]] = {"invitees": [], "referee": [], "incentives": []}
    for offset in range(0, 7, limit):
        body = lookup(api, limit=limit, offset=offset)
        assert body["pagination"] == {"limit": limit, "offset": offset, "total": 7}
        for name, rows in walked.items():
            page = body["data"][0][name]
            assert len(page) <= limit
            rows.extend(page)
    for name, rows in walked.items():
        assert rows == whole[name], name


def test_an_offset_past_every_list_keeps_the_total_and_the_code(api: ApiClient, busy: Busy) -> None:
    """Past the end every list is empty, yet the total and the referral code are still given."""
    first = lookup(api)
    body = lookup(api, offset=50)
    assert body["pagination"] == {"limit": 10, "offset": 50, "total": 7}
    [item] = body["data"]
    assert (item["invitees"], item["referee"], item["incentives"]) == ([], [], [])
    assert item["referralCode"] == first["data"][0]["referralCode"]


def test_a_campaign_token_shows_that_campaigns_rows_and_code(api: ApiClient, busy: Busy) -> None:
    """campaignToken scopes every list to that campaign, whose code is the advocate's own there."""
    default = lookup(api)["data"][0]
    body = lookup(api, campaignToken="sprng")
    assert body["pagination"]["total"] == 1
    [item] = body["data"]
    assert item["invitees"] == [{
        "type": "MOBILE", "identifier": "919811111111", "name": "Spring Friend", "invitedOn": "2025-02-01",
        "invitedAt": iso(at(3)), "source": "capillary", "status": "joined", "joinedAt": iso(at(3, 5)),
        "purchasedAt": None,
    }]
    assert item["referee"] == []
    assert [(i["points"], i["entryType"]) for i in item["incentives"]] == [(7, "grant")]
    assert item["referralCode"] and item["referralCode"] != default["referralCode"]
    assert lookup(api, campaignToken="SPRNG")["data"][0]["referralCode"] == item["referralCode"]


def test_multiple_identifiers_page_the_primary_customers_lists(api: ApiClient, busy: Busy) -> None:
    """With an email naming a bystander and the external id naming the advocate, the advocate's page is served."""
    body = lookup(api, identifierName="email,externalId", identifierValue="by@example.com,9001", limit=2, offset=2)
    assert body["pagination"] == {"limit": 2, "offset": 2, "total": 7}
    [item] = body["data"]
    assert item["customer"]["id"] == 9001
    assert [i["identifier"] for i in item["invitees"]] == INVITED[2:4]
    assert [r["customerId"] for r in item["referee"]] == [9102]
    assert [i["couponCode"] for i in item["incentives"]] == ["ADA-5OFF"]
    bystander = lookup(api, identifierName="email", identifierValue="by@example.com")
    assert [i["identifier"] for i in bystander["data"][0]["invitees"]] == ["z@example.com"]
    assert bystander["pagination"]["total"] == 1


def test_the_same_shopify_id_in_another_shop_is_another_customer(api: ApiClient, other_api: ApiClient,
                                                                  busy: Busy) -> None:
    """Each shop's key sees only its own customer's rows under the same Shopify id."""
    mine = lookup(api)["data"][0]
    theirs = lookup(other_api)
    assert theirs["pagination"]["total"] == 1
    assert [i["identifier"] for i in theirs["data"][0]["invitees"]] == ["twin@example.com"]
    assert theirs["data"][0]["referralCode"] != mine["referralCode"]


def test_a_shop_without_a_default_campaign_gets_one_and_a_code(api: ApiClient, api_shop: Shop) -> None:
    """With no default campaign yet, the lookup creates it (as the engine does) and answers with a fresh code."""
    add_customer(api_shop, 9301, email="new@example.com")
    db.session.delete(ensure_default_campaign(api_shop))
    db.session.commit()
    body = lookup(api, identifierValue="9301")
    assert body["pagination"]["total"] == 0
    [item] = body["data"]
    assert item["referralCode"] and (item["invitees"], item["referee"], item["incentives"]) == ([], [], [])
    campaign = db.session.scalar(db.select(Campaign).where(Campaign.shop_id == api_shop.id, Campaign.is_default))
    assert campaign is not None
    assert lookup(api, identifierValue="9301")["data"][0]["referralCode"] == item["referralCode"]
