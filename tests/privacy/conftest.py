"""A shop full of personal data, built through the engine's services, for the privacy tests."""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import func
from sqlalchemy import select

from referral_plugin.apikeys import create_key
from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Click
from referral_plugin.models import Customer
from referral_plugin.models import DataExport
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from referral_plugin.models import WebhookDelivery
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.codes import get_or_create_code
from referral_plugin.referrals.customers import upsert_customer
from referral_plugin.referrals.invitations import invite
from tests.conftest import make_shop
from tests.shopify_actions import OTHER_SHOP

#: The customer of Shopify's sample compliance payloads.
JOHN_ID = 191167
JOHN_EMAIL = "john@example.com"
ADA_ID = 9101
ORDER_ID = 299938


@dataclass
class World:
    """The ids of what :func:`populate` wrote for one shop."""

    shop: Shop
    advocate: Customer
    friend: Customer
    referral: Referral
    code: str


def populate(shop: Shop) -> World:
    """Write an advocate (Ada) who invited and referred John, with clicks, evidence, ledger rows and an export."""
    campaign = ensure_default_campaign(shop)
    ada = upsert_customer(shop, ADA_ID, email="ada@example.com", phone="+14155550101", first_name="Ada",
                          last_name="Lovelace", address={"address1": "1 Analytical St", "city": "London",
                                                         "zip": "N1", "country_code": "GB"})
    code = get_or_create_code(shop, ada, campaign)
    invite(shop, ada, "email", JOHN_EMAIL, name="Johnny", source="widget", campaign=campaign)
    invite(shop, ada, "mobile", "+14155552671", name="Johnny mobile", source="capillary", campaign=campaign)
    invite(shop, ada, "email", "zoe@example.org", name="Zoe", source="widget", campaign=campaign)
    john = upsert_customer(shop, JOHN_ID, email=JOHN_EMAIL, phone="+14155552671", first_name="John",
                           last_name="Smith", address={"address1": "2 Main St", "city": "Ottawa", "zip": "K1A",
                                                       "country_code": "CA"})
    db.session.add(Click(shop_id=shop.id, referral_code_id=code.id, visitor_hash="a" * 64))
    evidence = {"discount_codes": [code.code], "customer": {"email": JOHN_EMAIL, "first_name": "John"},
                "note": f"Referred by Ada; contact {JOHN_EMAIL}", "landing_site": f"/?ref={code.code}"}
    referral = Referral(shop_id=shop.id, campaign_id=campaign.id, referral_code_id=code.id, advocate_id=ada.id,
                        friend_id=john.id, source="discount_code", status=ReferralStatus.REWARDED,
                        reason="QUALIFIED", evidence=evidence, shopify_order_id=ORDER_ID, order_name="#1001",
                        order_subtotal=Decimal("80.00"), currency="USD")
    db.session.add(referral)
    db.session.flush()
    db.session.add(OrderAttribution(shop_id=shop.id, shopify_order_id=ORDER_ID, order_name="#1001",
                                    referral_id=referral.id, referral_code_id=code.id, advocate_id=ada.id,
                                    friend_id=john.id, source="discount_code", decision="qualified",
                                    evidence=dict(evidence), subtotal=Decimal("80.00"), currency="USD"))
    for customer, side, points in ((ada, "advocate", 100), (john, "friend", 50)):
        db.session.add(LedgerEntry(shop_id=shop.id, customer_id=customer.id, referral_id=referral.id,
                                   campaign_id=campaign.id, entry_type=EntryType.GRANT, side=side,
                                   reward_kind="points", points=points, idempotency_key=f"grant:{ORDER_ID}:{side}",
                                   reason="REFERRAL_REWARD", shopify_order_id=ORDER_ID))
    db.session.add(DataExport(shop_id=shop.id, shopify_customer_id=JOHN_ID, data_request_id="old-1",
                              payload={"customer": {"email": JOHN_EMAIL}}))
    db.session.add(AuditEvent(shop_id=shop.id, actor="merchant", action="campaign_updated",
                              subject_type="campaign", subject_id=campaign.id, details={}))
    db.session.add(WebhookDelivery(shop_domain=shop.shopify_domain, topic="orders/paid", webhook_id=f"w-{shop.id}",
                                   status="processed", processed_at=dt.datetime.now(dt.UTC)))
    create_key(shop, "integration")
    db.session.commit()
    return World(shop=shop, advocate=ada, friend=john, referral=referral, code=code.code)


@pytest.fixture
def world(shop: Shop) -> World:
    """Return the populated test shop."""
    return populate(shop)


@pytest.fixture
def other_world(app: t.Any) -> World:
    """Return a second, populated shop with the same customers' Shopify ids."""
    return populate(make_shop(OTHER_SHOP))


def ledger_totals(shop_id: int) -> tuple[int, int]:
    """Return (row count, points sum) of the shop's ledger."""
    count, points = db.session.execute(
        select(func.count(LedgerEntry.id), func.coalesce(func.sum(LedgerEntry.points), 0))
        .where(LedgerEntry.shop_id == shop_id)
    ).one()
    return int(count), int(points)
