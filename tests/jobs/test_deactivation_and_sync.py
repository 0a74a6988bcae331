"""Taking reward codes back in Shopify, and making advocates' referral codes live discounts for friends."""

from __future__ import annotations

from decimal import Decimal

import responses as responses_lib
from flask import Flask
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import ReferralCode
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.referrals.codes import get_or_create_code
from referral_plugin.rewards import schedule_code_discount_sync
from referral_plugin.rewards import schedule_discount_deactivation
from referral_plugin.rewards import schedule_discount_issue
from referral_plugin.rewards.discounts import DEACTIVATED
from tests.jobs.conftest import GrantFactory
from tests.jobs.conftest import created
from tests.jobs.conftest import graphql_url
from tests.jobs.conftest import sent_bodies
from tests.jobs.conftest import user_errors
from tests.shopify_actions import ShopifyActions

NODE = "gid://shopify/DiscountCodeNode/501"


def deactivated() -> dict[str, object]:
    """Return Shopify's answer to a successful ``discountCodeDeactivate``."""
    return {"data": {"discountCodeDeactivate": {"codeDiscountNode": {"id": NODE}, "userErrors": []}}}


def reverse(grant: LedgerEntry) -> LedgerEntry:
    """Write the reversal of a whole grant, as the engine does on a cancelled order."""
    reversal = LedgerEntry(
        shop_id=grant.shop_id, customer_id=grant.customer_id, campaign_id=grant.campaign_id,
        entry_type=EntryType.REVERSAL, side=grant.side, reward_kind=grant.reward_kind, amount=-grant.amount,
        related_entry_id=grant.id, idempotency_key=f"reversal:cancel:{grant.id}", reason="ORDER_CANCELLED",
    )
    db.session.add(reversal)
    db.session.flush()
    return reversal


def test_reversed_grant_code_is_deactivated_once(app: Flask, make_grant: GrantFactory,
                                                 mocked_responses: responses_lib.RequestsMock) -> None:
    """After a reversal the issued code is deactivated in Shopify and audited; a repeat calls nobody."""
    url = graphql_url(app)
    mocked_responses.post(url, json=created(NODE))
    mocked_responses.post(url, json=deactivated())
    grant = make_grant(commit=False)
    schedule_discount_issue(grant.id)
    db.session.commit()

    reversal = reverse(grant)
    schedule_discount_deactivation(reversal.id)
    db.session.commit()
    schedule_discount_deactivation(grant.id)
    db.session.commit()

    bodies = sent_bodies(mocked_responses)
    assert len(bodies) == 2
    assert "discountCodeDeactivate" in bodies[1]["query"] and bodies[1]["variables"] == {"id": NODE}
    [audit] = db.session.execute(select(AuditEvent).where(AuditEvent.action == DEACTIVATED)).scalars()
    assert audit.details is not None and audit.details["discount_node_id"] == NODE


def test_deactivating_a_never_issued_grant_calls_nobody(app: Flask, make_grant: GrantFactory,
                                                        mocked_responses: responses_lib.RequestsMock) -> None:
    """A grant reversed before it was issued has no code in Shopify to take back."""
    grant = make_grant()
    schedule_discount_deactivation(reverse(grant).id)
    db.session.commit()
    assert len(mocked_responses.calls) == 0


def test_deactivation_refused_is_audited(app: Flask, make_grant: GrantFactory,
                                         mocked_responses: responses_lib.RequestsMock) -> None:
    """A refused deactivation is recorded with Shopify's errors instead of vanishing."""
    url = graphql_url(app)
    mocked_responses.post(url, json=created(NODE))
    mocked_responses.post(url, json=user_errors({"field": ["id"], "code": "INVALID", "message": "Discount gone"},
                                                root="discountCodeDeactivate"))
    grant = make_grant(commit=False)
    schedule_discount_issue(grant.id)
    db.session.commit()
    schedule_discount_deactivation(reverse(grant).id)
    db.session.commit()
    actions = list(db.session.execute(select(AuditEvent.action)).scalars())
    assert actions == ["discount_deactivate_failed"]


def friend_discount_campaign(campaign: Campaign) -> Campaign:
    """Turn the campaign's friend reward into 15 % off a first order of at least 40."""
    campaign.friend_reward_kind = RewardKind.PERCENTAGE
    campaign.friend_reward_value = Decimal(15)
    campaign.min_order_subtotal = Decimal(40)
    db.session.commit()
    return campaign


def test_new_code_becomes_a_live_discount_for_friends(
    app: Flask, shop: Shop, campaign: Campaign, advocate: Customer, mocked_responses: responses_lib.RequestsMock
) -> None:
    """With a discount as the friend reward, the advocate's code is created in Shopify for everyone, once each."""
    mocked_responses.post(graphql_url(app), json=created("gid://shopify/DiscountCodeNode/900"))
    friend_discount_campaign(campaign)
    code = get_or_create_code(shop, advocate, campaign)
    db.session.commit()

    db.session.refresh(code)
    assert code.discount_node_id == "gid://shopify/DiscountCodeNode/900"
    [body] = sent_bodies(mocked_responses)
    data = body["variables"]["d"]
    assert data["code"] == code.code
    assert data["context"] == {"all": "ALL"}
    assert data["appliesOncePerCustomer"] is True
    assert "usageLimit" not in data
    assert data["customerGets"]["value"] == {"percentage": 0.15}
    assert data["minimumRequirement"] == {"subtotal": {"greaterThanOrEqualToSubtotal": "40.00"}}


def test_an_erased_advocates_live_code_is_retired_and_taken_down(
    app: Flask, shop: Shop, campaign: Campaign, advocate: Customer, shopify: ShopifyActions,
    mocked_responses: responses_lib.RequestsMock,
) -> None:
    """customers/redact of an advocate retires their code and deactivates its Shopify discount, once."""
    url = graphql_url(app)
    mocked_responses.post(url, json=created(NODE))
    mocked_responses.post(url, json=deactivated())
    friend_discount_campaign(campaign)
    code = get_or_create_code(shop, advocate, campaign)
    db.session.commit()
    redact = {"shop_id": 1, "shop_domain": shop.shopify_domain,
              "customer": {"id": advocate.shopify_customer_id, "email": "ada@example.com"}, "orders_to_redact": []}

    for webhook_id in ("redact-ada", "redact-ada-again"):
        assert shopify.post_webhook("customers/redact", redact, webhook_id=webhook_id).status_code == 200

    db.session.refresh(code)
    assert code.retired_at is not None and code.discount_node_id is None
    bodies = sent_bodies(mocked_responses)
    assert ["discountCodeDeactivate" in body["query"] for body in bodies] == [False, True]
    assert bodies[1]["variables"] == {"id": NODE}


def test_code_sync_adopts_an_existing_discount_then_updates_it(
    app: Flask, shop: Shop, campaign: Campaign, advocate: Customer, mocked_responses: responses_lib.RequestsMock
) -> None:
    """A code already in Shopify is looked up and linked; the next sync updates that discount instead."""
    url = graphql_url(app)
    mocked_responses.post(url, json=user_errors({"field": ["basicCodeDiscount", "code"], "code": "TAKEN",
                                                 "message": "Code must be unique."}))
    mocked_responses.post(url, json={"data": {"codeDiscountNodeByCode": {"id": "gid://shopify/DiscountCodeNode/3"}}})
    mocked_responses.post(url, json={"data": {"discountCodeBasicUpdate": {
        "codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/3"}, "userErrors": []}}})
    friend_discount_campaign(campaign)
    code = get_or_create_code(shop, advocate, campaign)
    db.session.commit()
    schedule_code_discount_sync(code.id)
    db.session.commit()

    db.session.refresh(code)
    assert code.discount_node_id == "gid://shopify/DiscountCodeNode/3"
    update = sent_bodies(mocked_responses)[2]
    assert "discountCodeBasicUpdate" in update["query"]
    assert update["variables"]["id"] == "gid://shopify/DiscountCodeNode/3"


def test_retired_code_is_taken_down(
    app: Flask, shop: Shop, campaign: Campaign, advocate: Customer, mocked_responses: responses_lib.RequestsMock
) -> None:
    """A retired code that was live is deactivated and unlinked; a points-only code is left alone."""
    code = get_or_create_code(shop, advocate, campaign)
    db.session.commit()
    schedule_code_discount_sync(code.id)  # friend reward is points: nothing to do
    db.session.commit()
    assert len(mocked_responses.calls) == 0

    mocked_responses.post(graphql_url(app), json=deactivated())
    code.discount_node_id = NODE
    code.retired_at = utcnow()
    schedule_code_discount_sync(code.id)
    db.session.commit()

    assert db.session.execute(select(ReferralCode.discount_node_id)).scalar_one() is None
    assert sent_bodies(mocked_responses)[0]["variables"] == {"id": NODE}


def test_demo_shop_rewards_never_reach_shopify(app: Flask, shop: Shop, make_grant: GrantFactory,
                                               mocked_responses: responses_lib.RequestsMock) -> None:
    """In demo mode the demo shop's dummy token stays home: codes are recorded as issued without any call."""
    from referral_plugin.config import DEMO_SHOP_DOMAIN

    app.config["DEMO_MODE"] = True
    shop.shopify_domain = DEMO_SHOP_DOMAIN
    grant = make_grant(commit=False)
    schedule_discount_issue(grant.id)
    db.session.commit()

    issue = db.session.execute(select(LedgerEntry).where(LedgerEntry.entry_type == EntryType.ISSUE)).scalar_one()
    assert issue.discount_code is not None and issue.discount_code.startswith("REF-")
    assert issue.discount_node_id is not None and "demo-" in issue.discount_node_id
    assert len(mocked_responses.calls) == 0


def test_campaign_change_syncs_every_code(app: Flask, shop: Shop, campaign: Campaign, advocate: Customer,
                                          friend: Customer, mocked_responses: responses_lib.RequestsMock) -> None:
    """Switching the friend reward to a discount makes each existing advocate code a live discount."""
    from referral_plugin.rewards import schedule_campaign_code_sync

    codes = [get_or_create_code(shop, customer, campaign) for customer in (advocate, friend)]
    db.session.commit()
    assert len(mocked_responses.calls) == 0  # points for friends: nothing in Shopify yet

    mocked_responses.post(graphql_url(app), json=created("gid://shopify/DiscountCodeNode/1"))
    mocked_responses.post(graphql_url(app), json=created("gid://shopify/DiscountCodeNode/2"))
    friend_discount_campaign(campaign)
    schedule_campaign_code_sync(campaign.id)
    db.session.commit()

    sent = {body["variables"]["d"]["code"] for body in sent_bodies(mocked_responses)}
    assert sent == {code.code for code in codes}
    db.session.expire_all()
    assert all(code.discount_node_id for code in db.session.execute(select(ReferralCode)).scalars())


def test_live_reward_code_is_not_deactivated_without_a_reversal(
    app: Flask, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """A deactivation job for a grant that still stands (a stray or early job) leaves the code alone."""
    mocked_responses.post(graphql_url(app), json=created(NODE))
    grant = make_grant(commit=False)
    schedule_discount_issue(grant.id)
    db.session.commit()
    schedule_discount_deactivation(grant.id)
    db.session.commit()
    assert len(mocked_responses.calls) == 1
    assert db.session.execute(select(AuditEvent)).first() is None
