"""The widget tells a scheduled or ended program apart from a paused one."""

from __future__ import annotations

import datetime as dt

from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import Shop
from tests.shopify_actions import ShopifyActions
from tests.storefront.conftest import ADVOCATE_ID

NOW = dt.datetime.now(dt.UTC)


def test_an_ended_program_is_not_called_paused(shopify: ShopifyActions, shop: Shop, campaign: Campaign,
                                               advocate: Customer) -> None:
    """A campaign whose end has passed reads 'This program ended <date>', not 'paused ... once it's back'."""
    campaign.starts_at = NOW - dt.timedelta(days=30)
    campaign.ends_at = NOW - dt.timedelta(days=2)
    db.session.commit()

    data = shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()
    html = shopify.proxy_get("widget", ADVOCATE_ID).get_data(as_text=True)

    assert data["campaign"]["state"] == "ended" and data["campaign"]["running"] is False
    assert data["campaign"]["endsAt"] == (NOW - dt.timedelta(days=2)).date().isoformat()
    assert "This program ended " in html
    assert "paused" not in html


def test_a_scheduled_program_says_when_it_starts(shopify: ShopifyActions, shop: Shop, campaign: Campaign) -> None:
    """A campaign starting in the shop's tomorrow reads 'The program starts <shop's date>' to an anonymous visitor."""
    shop.timezone = "Pacific/Kiritimati"  # UTC+14: the shop's date runs ahead of UTC
    start = dt.datetime(2099, 1, 1, 12, 0, tzinfo=dt.UTC)
    campaign.starts_at = start
    db.session.commit()

    data = shopify.proxy_get("widget.json").get_json()
    html = shopify.proxy_get("widget").get_data(as_text=True)

    assert data["campaign"]["state"] == "scheduled"
    assert data["campaign"]["startsAt"] == "2099-01-02"
    assert "The program starts Jan 2, 2099" in html
    assert "paused" not in html


def test_a_paused_program_keeps_its_words(shopify: ShopifyActions, campaign: Campaign, advocate: Customer) -> None:
    """A paused campaign still reads as paused."""
    campaign.status = "paused"
    db.session.commit()

    assert shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()["campaign"]["state"] == "paused"
    assert "paused right now" in shopify.proxy_get("widget", ADVOCATE_ID).get_data(as_text=True)


def test_an_ended_program_offers_no_invitations(shopify: ShopifyActions, campaign: Campaign,
                                                advocate: Customer) -> None:
    """Over is over: no link to share, no invite form to fill in, and a post that still comes (an old page) is
    refused in plain words."""
    token = shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()["invite"]["token"]
    campaign.ends_at = NOW - dt.timedelta(hours=1)
    db.session.commit()

    data = shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()
    html = shopify.proxy_get("widget", ADVOCATE_ID).get_data(as_text=True)
    assert data["campaign"]["state"] == "ended"
    assert "data-rp-invite" not in html and "Send invitations" not in html
    assert data["inviteLink"] not in html and "Copy link" not in html

    response = shopify.proxy_post("invitations", ADVOCATE_ID, json={"token": token, "friends": ["pat@example.com"]},
                                  headers={"Accept": "application/json"})
    result = response.get_json()["results"][0]
    assert (result["status"], result["reason"]) == ("invalid", "CAMPAIGN_ENDED")
    assert result["message"] == "This referral program has ended, so friends can't be invited to it."


def test_an_archived_program_reads_as_ended_without_a_date(shopify: ShopifyActions, campaign: Campaign,
                                                          advocate: Customer) -> None:
    """Archived is over for good, not paused: 'This program has ended', with no empty date in the sentence."""
    campaign.status = "archived"
    db.session.commit()

    assert shopify.proxy_get("widget.json", ADVOCATE_ID).get_json()["campaign"]["state"] == "ended"
    html = shopify.proxy_get("widget", ADVOCATE_ID).get_data(as_text=True)
    assert "This program has ended; orders placed now don't earn rewards." in html
    assert "paused" not in html
