"""The sweeper recovers lost code deactivations and lost referral-code syncs, once, and leaves fresh work alone."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import responses as responses_lib
from flask import Flask
from sqlalchemy import select

from referral_plugin.extensions import db
from referral_plugin.jobs import get_queue
from referral_plugin.models import AuditEvent
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import EntryType
from referral_plugin.models import Invitation
from referral_plugin.models import LedgerEntry
from referral_plugin.models import ReferralCode
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.rewards.discounts import DEACTIVATE_FAILED
from referral_plugin.rewards.discounts import DEACTIVATED
from referral_plugin.rewards.sweeper import sweep
from tests.jobs.conftest import GrantFactory
from tests.jobs.conftest import created
from tests.jobs.conftest import graphql_url
from tests.jobs.conftest import sent_bodies

NODE = "gid://shopify/DiscountCodeNode/601"
CODE_NODE = "gid://shopify/DiscountCodeNode/602"


def ago(minutes: float) -> dt.datetime:
    """Return the moment ``minutes`` ago."""
    return utcnow() - dt.timedelta(minutes=minutes)


def deactivated(node: str = NODE) -> dict[str, object]:
    """Return Shopify's answer to a successful ``discountCodeDeactivate``."""
    return {"data": {"discountCodeDeactivate": {"codeDiscountNode": {"id": node}, "userErrors": []}}}


def issued_then_reversed(make_grant: GrantFactory, *, reversed_minutes_ago: float,
                         order_id: int = 820982911946154508) -> LedgerEntry:
    """Commit a grant, its ISSUE row and a whole reversal, as if the deactivation job died with its worker."""
    grant = make_grant(order_id=order_id, commit=False)
    grant.created_at = ago(60)
    db.session.add(LedgerEntry(
        shop_id=grant.shop_id, customer_id=grant.customer_id, campaign_id=grant.campaign_id,
        entry_type=EntryType.ISSUE, side=grant.side, reward_kind=grant.reward_kind, amount=Decimal(0),
        discount_code=f"REF-{order_id}", discount_node_id=NODE, related_entry_id=grant.id,
        idempotency_key=f"issue:{grant.id}", created_at=ago(59),
    ))
    db.session.add(LedgerEntry(
        shop_id=grant.shop_id, customer_id=grant.customer_id, campaign_id=grant.campaign_id,
        entry_type=EntryType.REVERSAL, side=grant.side, reward_kind=grant.reward_kind, amount=-grant.amount,
        related_entry_id=grant.id, idempotency_key=f"reversal:cancel:{grant.id}", reason="ORDER_CANCELLED",
        created_at=ago(reversed_minutes_ago),
    ))
    db.session.commit()
    return grant


def test_lost_deactivation_is_recovered_by_one_sweep(app: Flask, make_grant: GrantFactory,
                                                     mocked_responses: responses_lib.RequestsMock) -> None:
    """A reversal committed without its deactivation: one sweep takes the code down; later sweeps call nobody."""
    mocked_responses.post(graphql_url(app), json=deactivated())
    grant = issued_then_reversed(make_grant, reversed_minutes_ago=30)
    now = utcnow()

    assert sweep(now).deactivations == [grant.id]
    [body] = sent_bodies(mocked_responses)
    assert "discountCodeDeactivate" in body["query"] and body["variables"] == {"id": NODE}
    [audit] = db.session.execute(select(AuditEvent).where(AuditEvent.action == DEACTIVATED)).scalars()
    assert audit.details is not None and audit.details["discount_node_id"] == NODE

    assert sweep(now).deactivations == []
    assert sweep(now + dt.timedelta(minutes=30)).deactivations == []  # done, not merely claimed
    assert len(mocked_responses.calls) == 1


def test_fresh_partial_and_refused_deactivations_are_left_alone(
    app: Flask, shop: Shop, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """A reversal younger than the interval, a grant only partly reversed, and a refused one are not re-queued."""
    issued_then_reversed(make_grant, reversed_minutes_ago=1, order_id=1)
    partial = make_grant(order_id=2, commit=False)
    partial.created_at = ago(60)
    db.session.add_all([
        LedgerEntry(shop_id=shop.id, entry_type=EntryType.ISSUE, side="advocate", reward_kind="percentage",
                    amount=Decimal(0), discount_code="REF-2", discount_node_id="gid://shopify/DiscountCodeNode/2",
                    related_entry_id=partial.id, idempotency_key=f"issue:{partial.id}"),
        LedgerEntry(shop_id=shop.id, entry_type=EntryType.REVERSAL, side="advocate", reward_kind="percentage",
                    amount=Decimal(-4), related_entry_id=partial.id, idempotency_key="reversal:2",
                    created_at=ago(30)),
    ])
    db.session.commit()
    refused = issued_then_reversed(make_grant, reversed_minutes_ago=30, order_id=3)
    issue_id = db.session.execute(select(LedgerEntry.id).where(
        LedgerEntry.idempotency_key == f"issue:{refused.id}")).scalar_one()
    db.session.add(AuditEvent(shop_id=shop.id, actor="system:rewards", action=DEACTIVATE_FAILED,
                              subject_type="ledger_entry", subject_id=issue_id, details={}))
    db.session.commit()

    assert sweep().deactivations == []
    assert len(mocked_responses.calls) == 0


def friend_discount(campaign: Campaign, *, minutes_ago: float) -> Campaign:
    """Give friends 15 % off, as a campaign edit committed ``minutes_ago``."""
    campaign.friend_reward_kind = RewardKind.PERCENTAGE
    campaign.friend_reward_value = Decimal(15)
    campaign.updated_at = ago(minutes_ago)
    db.session.commit()
    return campaign


def lost_code(shop: Shop, campaign: Campaign, customer: Customer, *, minutes_ago: float,
              node: str | None = None) -> ReferralCode:
    """Commit a referral code without running its sync job, as if the worker died."""
    code = ReferralCode(shop_id=shop.id, campaign_id=campaign.id, customer_id=customer.id,
                        code=f"LOST{customer.id}", discount_node_id=node, created_at=ago(minutes_ago))
    db.session.add(code)
    db.session.commit()
    return code


def test_lost_code_sync_is_recovered_by_one_sweep(
    app: Flask, shop: Shop, campaign: Campaign, advocate: Customer, friend: Customer,
    mocked_responses: responses_lib.RequestsMock
) -> None:
    """A code left without its friend discount is created in Shopify by one sweep; a younger code waits."""
    mocked_responses.post(graphql_url(app), json=created(CODE_NODE))
    friend_discount(campaign, minutes_ago=30)
    code = lost_code(shop, campaign, advocate, minutes_ago=30)
    young = lost_code(shop, campaign, friend, minutes_ago=1)
    now = utcnow()

    assert sweep(now).code_syncs == [code.id]
    [body] = sent_bodies(mocked_responses)
    assert "discountCodeBasicCreate" in body["query"] and body["variables"]["d"]["code"] == code.code
    db.session.expire_all()
    assert db.session.get(ReferralCode, code.id).discount_node_id == CODE_NODE  # type: ignore[union-attr]
    assert db.session.get(ReferralCode, young.id).discount_node_id is None  # type: ignore[union-attr]

    assert sweep(now).code_syncs == []
    young_code = db.session.get(ReferralCode, young.id)
    assert young_code is not None
    young_code.discount_node_id = "gid://shopify/DiscountCodeNode/603"  # its own job ran meanwhile
    db.session.commit()
    assert sweep(now + dt.timedelta(minutes=30)).code_syncs == []
    assert len(mocked_responses.calls) == 1


def test_code_kept_live_after_the_campaign_dropped_the_discount_is_taken_down(
    app: Flask, shop: Shop, campaign: Campaign, advocate: Customer, mocked_responses: responses_lib.RequestsMock
) -> None:
    """A code still live in Shopify after friends went back to points is deactivated by one sweep, once."""
    mocked_responses.post(graphql_url(app), json=deactivated(CODE_NODE))
    campaign.updated_at = ago(30)  # the friend reward is points
    db.session.commit()
    code = lost_code(shop, campaign, advocate, minutes_ago=60, node=CODE_NODE)
    now = utcnow()

    assert sweep(now).code_syncs == [code.id]
    [body] = sent_bodies(mocked_responses)
    assert "discountCodeDeactivate" in body["query"] and body["variables"] == {"id": CODE_NODE}
    assert db.session.execute(select(ReferralCode.discount_node_id)).scalar_one() is None
    assert sweep(now + dt.timedelta(minutes=30)).code_syncs == []
    assert len(mocked_responses.calls) == 1


def test_code_sync_waits_for_a_fresh_campaign_edit(
    app: Flask, shop: Shop, campaign: Campaign, advocate: Customer, mocked_responses: responses_lib.RequestsMock
) -> None:
    """An old code whose campaign was edited within the interval is left to the edit's own sync job."""
    friend_discount(campaign, minutes_ago=1)
    lost_code(shop, campaign, advocate, minutes_ago=60)
    assert sweep().code_syncs == []
    assert len(mocked_responses.calls) == 0


def test_repair_job_calls_nobody_for_a_code_already_in_line(
    app: Flask, shop: Shop, campaign: Campaign, advocate: Customer, mocked_responses: responses_lib.RequestsMock
) -> None:
    """The sweeper's code job is a no-op when the code's link already matches its campaign (a slow, not lost, job)."""
    friend_discount(campaign, minutes_ago=30)
    live = lost_code(shop, campaign, advocate, minutes_ago=30, node=CODE_NODE)
    get_queue(app).enqueue("rewards.repair_code_discount", live.id)
    assert len(mocked_responses.calls) == 0


def test_without_mail_invitations_are_not_swept(app: Flask, shop: Shop, campaign: Campaign,
                                                advocate: Customer) -> None:
    """With no ``MAIL_SERVER`` nobody expects an email, so unsent invitations are not re-queued."""
    db.session.add(Invitation(shop_id=shop.id, campaign_id=campaign.id, advocate_id=advocate.id, channel="email",
                              identifier="friend@example.net", source="widget", invited_at=ago(30)))
    db.session.commit()
    assert sweep().emails == []
