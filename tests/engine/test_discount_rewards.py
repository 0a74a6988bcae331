"""Discount rewards: granted in the ledger, issued in Shopify by JOBS, taken back on cancellation."""

from __future__ import annotations

import json
import typing as t

import pytest
import responses as responses_lib
from flask import Flask

from referral_plugin.extensions import db
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.campaigns import update_campaign
from tests.engine.conftest import Store
from tests.engine.conftest import order_payload


class FakeAdminAPI:
    """Answer the app's GraphQL mutations as Shopify would, and remember which were called."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, request: t.Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        query = body["query"]
        for root in ("discountCodeBasicCreate", "discountCodeBasicUpdate", "discountCodeDeactivate"):
            if root in query:
                self.calls.append(root)
                node = {"id": f"gid://shopify/DiscountCodeNode/{len(self.calls)}"}
                data = {root: {"codeDiscountNode": node, "userErrors": []}}
                return 200, {}, json.dumps({"data": data})
        self.calls.append("query")
        return 200, {}, json.dumps({"data": {"codeDiscountNodeByCode": None}})


@pytest.fixture
def admin_api(app: Flask, mocked_responses: responses_lib.RequestsMock) -> FakeAdminAPI:
    """Play the shop's Admin GraphQL endpoint."""
    fake = FakeAdminAPI()
    url = f"https://test-shop.myshopify.com/admin/api/{app.config['SHOPIFY_API_VERSION']}/graphql.json"
    mocked_responses.add_callback(responses_lib.POST, url, callback=fake, content_type="application/json")
    mocked_responses.assert_all_requests_are_fired = False
    return fake


def _rows(entry_type: str) -> list[LedgerEntry]:
    db.session.expire_all()
    return db.session.query(LedgerEntry).filter_by(entry_type=entry_type).order_by(LedgerEntry.id).all()


def test_advocate_discount_is_granted_then_issued_and_deactivated_on_cancel(store: Store,
                                                                           admin_api: FakeAdminAPI) -> None:
    """A percentage reward is a GRANT, becomes a Shopify code (ISSUE row), and is deactivated when cancelled."""
    update_campaign(ensure_default_campaign(store.shop),
                    {"advocate_reward_kind": "percentage", "advocate_reward_value": 10}, actor="merchant")
    db.session.commit()
    advocate, friend = store.register(), store.register()
    order = order_payload(friend, code=store.code_of(advocate))
    store.pay(order)
    grants = _rows(EntryType.GRANT)
    assert [(g.side, g.reward_kind, g.amount, g.points) for g in grants] == [
        ("advocate", "percentage", 10, 0), ("friend", "points", 0, 50)]
    issues = _rows(EntryType.ISSUE)
    assert [i.related_entry_id for i in issues] == [grants[0].id]
    assert admin_api.calls == ["discountCodeBasicCreate"]

    store.send("orders/cancelled", dict(order, cancelled_at="2026-11-02T10:00:00Z"))
    assert admin_api.calls == ["discountCodeBasicCreate", "discountCodeDeactivate"]
    assert {r.related_entry_id for r in _rows(EntryType.REVERSAL)} == {g.id for g in grants}


def test_friend_discount_used_at_checkout_is_recorded_as_applied(store: Store, admin_api: FakeAdminAPI) -> None:
    """When the code itself is the friend's discount, the friend's GRANT records the checkout discount, no issue."""
    update_campaign(ensure_default_campaign(store.shop),
                    {"friend_reward_kind": "fixed_amount", "friend_reward_value": 10}, actor="merchant")
    db.session.commit()
    advocate = store.register()
    assert admin_api.calls == ["discountCodeBasicCreate"]  # the advocate's code became a live discount
    friend = store.register()
    store.pay(order_payload(friend, code=store.code_of(advocate)))
    friend_grant = [g for g in _rows(EntryType.GRANT) if g.side == "friend"][0]
    assert (friend_grant.reason, friend_grant.amount, friend_grant.discount_code) == (
        "APPLIED_AT_CHECKOUT", 10, store.code_of(advocate))
    assert _rows(EntryType.ISSUE) == []
    assert store.balance(advocate) == 100
    assert admin_api.calls.count("discountCodeBasicCreate") == 2  # the friend's own code, made at registration


def test_switching_the_friend_reward_to_a_discount_makes_existing_codes_live(store: Store,
                                                                            admin_api: FakeAdminAPI) -> None:
    """Existing advocates' codes become Shopify discounts when the friend reward turns into one."""
    store.register()
    store.register()
    assert admin_api.calls == []
    update_campaign(ensure_default_campaign(store.shop),
                    {"friend_reward_kind": "percentage", "friend_reward_value": 15}, actor="merchant")
    db.session.commit()
    assert admin_api.calls == ["discountCodeBasicCreate", "discountCodeBasicCreate"]
