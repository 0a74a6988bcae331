"""Fixtures for the job tests: a campaign, two customers, discount grants and Shopify's GraphQL endpoint."""

from __future__ import annotations

import json
import typing as t
from decimal import Decimal

import pytest
import responses as responses_lib
from flask import Flask

from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.customers import upsert_customer
from tests.servers import RedisServer
from tests.servers import ServerUnavailable
from tests.shopify_actions import SHOP

ADVOCATE_ID = 7001
FRIEND_ID = 7002


def graphql_url(app: Flask, shop: str = SHOP) -> str:
    """Return the Admin GraphQL endpoint the app calls for ``shop``."""
    return f"https://{shop}/admin/api/{app.config['SHOPIFY_API_VERSION']}/graphql.json"


def created(node_id: str = "gid://shopify/DiscountCodeNode/1") -> dict[str, t.Any]:
    """Return Shopify's answer to a successful ``discountCodeBasicCreate``."""
    return {"data": {"discountCodeBasicCreate": {"codeDiscountNode": {"id": node_id}, "userErrors": []}}}


def user_errors(*errors: dict[str, t.Any], root: str = "discountCodeBasicCreate") -> dict[str, t.Any]:
    """Return a mutation answer carrying ``userErrors`` (HTTP 200, as GraphQL does)."""
    return {"data": {root: {"codeDiscountNode": None, "userErrors": list(errors)}}}


THROTTLED = {
    "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
    "extensions": {"cost": {"requestedQueryCost": 10, "actualQueryCost": None,
                            "throttleStatus": {"maximumAvailable": 1000, "currentlyAvailable": 0,
                                               "restoreRate": 100}}},
}


def sent_bodies(mocked: responses_lib.RequestsMock) -> list[dict[str, t.Any]]:
    """Return the JSON bodies the app posted, in order."""
    return [json.loads(call.request.body) for call in mocked.calls]


@pytest.fixture(scope="module")
def redis_url() -> t.Iterator[str]:
    """Start a throwaway ``redis-server`` (no persistence) for the module."""
    try:
        server = RedisServer()
    except ServerUnavailable as exc:
        pytest.skip(f"redis-server binary is missing: {exc}")
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def campaign(shop: Shop) -> Campaign:
    """Return the shop's default campaign, giving the advocate 10 % off and the friend points."""
    campaign = ensure_default_campaign(shop)
    campaign.advocate_reward_kind = RewardKind.PERCENTAGE
    campaign.advocate_reward_value = Decimal(10)
    db.session.commit()
    return campaign


@pytest.fixture
def advocate(shop: Shop) -> Customer:
    """Return a known advocate."""
    customer = upsert_customer(shop, ADVOCATE_ID, email="ada@example.com", first_name="Ada", last_name="Lovelace")
    db.session.commit()
    return customer


@pytest.fixture
def friend(shop: Shop) -> Customer:
    """Return a known friend."""
    customer = upsert_customer(shop, FRIEND_ID, email="bob@example.com", first_name="Bob")
    db.session.commit()
    return customer


class GrantFactory(t.Protocol):
    """Write one discount grant."""

    def __call__(self, *, kind: str = ..., amount: Decimal | int = ..., order_id: int = ...,
                 side: str = ..., commit: bool = ...) -> LedgerEntry: ...


@pytest.fixture
def make_grant(shop: Shop, campaign: Campaign, advocate: Customer) -> GrantFactory:
    """Return a factory writing a discount GRANT row for the advocate (not scheduled)."""

    def make(*, kind: str = RewardKind.PERCENTAGE, amount: Decimal | int = 10, order_id: int = 820982911946154508,
             side: str = "advocate", commit: bool = True) -> LedgerEntry:
        entry = LedgerEntry(
            shop_id=shop.id, customer_id=advocate.id, campaign_id=campaign.id, entry_type=EntryType.GRANT,
            side=side, reward_kind=kind, points=0, amount=Decimal(amount),
            currency="USD" if kind == RewardKind.FIXED_AMOUNT else None,
            idempotency_key=f"grant:{order_id}:{side}", reason="REFERRAL_REWARD", shopify_order_id=order_id,
        )
        db.session.add(entry)
        if commit:
            db.session.commit()
        else:
            db.session.flush()
        return entry

    return make
