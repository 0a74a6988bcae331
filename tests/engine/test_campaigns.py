"""Campaigns: the default campaign, tokens, validation, audit and the offer wording."""

from __future__ import annotations

import datetime as dt
import threading
import typing as t
from decimal import Decimal

import pytest
from flask import Flask

from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Campaign
from referral_plugin.models import Shop
from referral_plugin.referrals import campaigns
from referral_plugin.referrals.campaigns import TOKEN_ALPHABET
from tests.conftest import run_at_once


def test_default_campaign_is_the_contracts_and_created_once(shop: Shop) -> None:
    """Every shop gets one active default campaign: 100 points to the advocate, 50 to the friend."""
    first = campaigns.ensure_default_campaign(shop)
    db.session.commit()
    again = campaigns.ensure_default_campaign(shop)
    assert first.id == again.id
    assert db.session.query(Campaign).filter_by(shop_id=shop.id).count() == 1
    assert (first.status, first.is_default) == ("active", True)
    assert (first.advocate_reward_kind, first.advocate_reward_value) == ("points", Decimal(100))
    assert (first.friend_reward_kind, first.friend_reward_value) == ("points", Decimal(50))
    assert len(first.token) == 5 and set(first.token) <= set(TOKEN_ALPHABET)


def test_default_campaign_is_created_once_under_concurrency(app: Flask, shop: Shop) -> None:
    """Eight concurrent callers (own connections) end with exactly one default campaign."""
    shop_id = shop.id
    db.session.commit()
    barrier = threading.Barrier(8)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                barrier.wait()
                current = db.session.get(Shop, shop_id)
                assert current is not None
                tokens.append(campaigns.ensure_default_campaign(current).token)
                db.session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    run_at_once(run, [()] * 8)
    assert errors == []
    db.session.expire_all()
    assert db.session.query(Campaign).filter_by(shop_id=shop_id, is_default=True).count() == 1
    assert len(set(tokens)) == 1


def test_alphabet_is_unambiguous() -> None:
    """Tokens and codes use 32 symbols and never 0, O, 1 or I."""
    assert len(set(TOKEN_ALPHABET)) == 32
    assert not set("0O1I") & set(TOKEN_ALPHABET)


def test_create_campaign_validates_and_audits(shop: Shop) -> None:
    """A valid campaign is created with a fresh token and an audit event naming the actor."""
    campaign = campaigns.create_campaign(shop, {
        "name": "Summer", "advocate_reward_kind": "fixed_amount", "advocate_reward_value": "5",
        "friend_reward_kind": "percentage", "friend_reward_value": 10, "min_order_subtotal": "25.00",
        "advocate_cap": 3, "hold_days": 14, "new_customers_only": True,
    }, actor="merchant@example.com")
    db.session.commit()
    assert campaign.token != campaigns.ensure_default_campaign(shop).token
    assert campaigns.get_campaign(shop, campaign.token.lower()) is campaign
    event = db.session.query(AuditEvent).filter_by(action="campaign.create").one()
    assert (event.actor, event.subject_id) == ("merchant@example.com", campaign.id)
    assert [c.id for c in campaigns.list_campaigns(shop)][-1] == campaign.id


@pytest.mark.parametrize(("data", "field"), [
    ({"name": ""}, "name"),
    ({"name": "x", "status": "running"}, "status"),
    ({"name": "x", "advocate_reward_kind": "cash"}, "advocate_reward_kind"),
    ({"name": "x", "friend_reward_kind": "percentage", "friend_reward_value": 0}, "friend_reward_value"),
    ({"name": "x", "friend_reward_kind": "percentage", "friend_reward_value": 101}, "friend_reward_value"),
    ({"name": "x", "advocate_reward_value": "ten"}, "advocate_reward_value"),
    ({"name": "x", "advocate_reward_value": 10.5}, "advocate_reward_value"),
    ({"name": "x", "friend_reward_kind": "fixed_amount", "friend_reward_value": -5}, "friend_reward_value"),
    ({"name": "x", "min_order_subtotal": -1}, "min_order_subtotal"),
    ({"name": "x", "min_order_subtotal": "1e309"}, "min_order_subtotal"),
    ({"name": "x", "friend_reward_kind": "fixed_amount", "friend_reward_value": "9" * 30}, "friend_reward_value"),
    ({"name": "x", "advocate_cap": 0}, "advocate_cap"),
    ({"name": "x", "advocate_cap": 2**31}, "advocate_cap"),
    ({"name": "x", "hold_days": "soon"}, "hold_days"),
    ({"name": "x", "starts_at": "2026-02-01T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z"}, "ends_at"),
    ({"name": "x", "token": "O0I1Q"}, "token"),
])
def test_create_campaign_rejects_bad_values_naming_the_field(shop: Shop, data: dict[str, t.Any],
                                                             field: str) -> None:
    """Every bad value is a ValidationError that names its field; nothing is written."""
    with pytest.raises(ValidationError) as caught:
        campaigns.create_campaign(shop, data, actor="merchant")
    assert caught.value.field == field
    assert db.session.query(Campaign).count() == 0


def test_update_campaign_records_changes(shop: Shop) -> None:
    """An update changes only what was sent and audits the before and after values."""
    campaign = campaigns.ensure_default_campaign(shop)
    campaigns.update_campaign(campaign, {"friend_reward_value": 75, "status": "paused"}, actor="merchant")
    db.session.commit()
    assert (campaign.friend_reward_value, campaign.status, campaign.advocate_reward_value) == (75, "paused", 100)
    event = db.session.query(AuditEvent).filter_by(action="campaign.update").one()
    assert event.details is not None
    assert event.details["status"] == {"from": "active", "to": "paused"}
    with pytest.raises(ValidationError):
        campaigns.update_campaign(campaign, {"status": "archived"}, actor="merchant")


def test_is_running_follows_status_and_schedule(shop: Shop) -> None:
    """A campaign runs when active and inside its schedule."""
    campaign = campaigns.ensure_default_campaign(shop)
    now = dt.datetime.now(dt.UTC)
    assert campaigns.is_running(campaign, now)
    campaign.starts_at = now + dt.timedelta(days=1)
    assert not campaigns.is_running(campaign, now)
    campaign.starts_at, campaign.ends_at = now - dt.timedelta(days=2), now - dt.timedelta(days=1)
    assert not campaigns.is_running(campaign, now)
    campaign.ends_at, campaign.status = None, "paused"
    assert not campaigns.is_running(campaign, now)


def test_describe_offer_words_each_reward_kind(shop: Shop) -> None:
    """The widget says "Give 50 points, get 100 points", or "Give 10% off, get $5 off" for discounts."""
    campaign = campaigns.ensure_default_campaign(shop)
    assert campaigns.describe_offer(campaign)["headline"] == "Give 50 points, get 100 points"
    campaigns.update_campaign(campaign, {"friend_reward_kind": "percentage", "friend_reward_value": 10,
                                         "advocate_reward_kind": "fixed_amount", "advocate_reward_value": 5},
                              actor="merchant")
    offer = campaigns.describe_offer(campaign)
    assert offer["headline"] == "Give 10% off, get $5 off"
    assert offer["friendReward"] == {"kind": "percentage", "value": 10, "text": "10% off"}
