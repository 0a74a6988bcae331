"""The periodic sweeper: stale pending discount grants are re-queued, due holds released."""

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
from referral_plugin.models import LedgerEntry
from referral_plugin.models import Referral
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from referral_plugin.models import utcnow
from referral_plugin.rewards.discounts import ISSUE_FAILED
from referral_plugin.rewards.sweeper import stale_pending_grants
from referral_plugin.rewards.sweeper import sweep
from tests.jobs.conftest import GrantFactory
from tests.jobs.conftest import created
from tests.jobs.conftest import graphql_url


def age(entry: LedgerEntry, minutes: int) -> LedgerEntry:
    """Backdate a row as if it had been written ``minutes`` ago."""
    entry.created_at = utcnow() - dt.timedelta(minutes=minutes)
    db.session.commit()
    return entry


def test_sweeper_requeues_only_stale_pending_grants(
    app: Flask, shop: Shop, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """Old unissued grants are issued; fresh, reversed, applied and recently failed ones are left alone."""
    mocked_responses.post(graphql_url(app), json=created())
    stale = age(make_grant(order_id=1), 30)
    age(make_grant(order_id=2), 1)  # fresh: its own job is still on its way
    reversed_grant = age(make_grant(order_id=3), 30)
    db.session.add(LedgerEntry(shop_id=shop.id, entry_type=EntryType.REVERSAL, side="advocate",
                               reward_kind="percentage", amount=Decimal(-10), related_entry_id=reversed_grant.id,
                               idempotency_key="reversal:3"))
    applied = make_grant(order_id=4, commit=False)
    applied.discount_code = "FRIENDCODE"
    age(applied, 30)
    failed = age(make_grant(order_id=5), 30)
    db.session.add(AuditEvent(shop_id=shop.id, actor="system:rewards", action=ISSUE_FAILED,
                              subject_type="ledger_entry", subject_id=failed.id, details={}))
    db.session.commit()

    result = sweep()

    assert result.requeued == [stale.id]
    [issue] = db.session.execute(select(LedgerEntry).where(LedgerEntry.entry_type == EntryType.ISSUE)).scalars()
    assert issue.related_entry_id == stale.id
    assert stale_pending_grants(utcnow(), dt.timedelta(minutes=5)) == []


def test_sweeper_skips_uninstalled_shops(app: Flask, shop: Shop, make_grant: GrantFactory,
                                         mocked_responses: responses_lib.RequestsMock) -> None:
    """Grants of a shop without a live token wait for the reinstall."""
    age(make_grant(), 30)
    shop.token_revoked_at = utcnow()
    db.session.commit()
    assert sweep().requeued == []
    assert len(mocked_responses.calls) == 0


def test_sweeper_releases_due_holds_and_issues_their_discounts(
    app: Flask, shop: Shop, campaign: Campaign, advocate: Customer, friend: Customer,
    mocked_responses: responses_lib.RequestsMock
) -> None:
    """A held discount reward whose date has passed is released by the engine and then issued in Shopify."""
    mocked_responses.post(graphql_url(app), json=created("gid://shopify/DiscountCodeNode/12"))
    referral = Referral(shop_id=shop.id, campaign_id=campaign.id, advocate_id=advocate.id, friend_id=friend.id,
                        source="discount_code", status=ReferralStatus.HELD, reason="HOLD_PERIOD",
                        shopify_order_id=77)
    db.session.add(referral)
    db.session.flush()
    hold = LedgerEntry(shop_id=shop.id, customer_id=advocate.id, referral_id=referral.id, campaign_id=campaign.id,
                       entry_type=EntryType.HOLD, side="advocate", reward_kind="percentage", amount=Decimal(10),
                       idempotency_key="hold:77:advocate", shopify_order_id=77,
                       available_at=utcnow() - dt.timedelta(hours=1))
    db.session.add(hold)
    db.session.commit()

    result = sweep()

    assert result.released == 1
    release = db.session.execute(select(LedgerEntry).where(LedgerEntry.entry_type == EntryType.RELEASE)).scalar_one()
    issue = db.session.execute(select(LedgerEntry).where(LedgerEntry.entry_type == EntryType.ISSUE)).scalar_one()
    assert issue.related_entry_id == release.id and issue.discount_node_id == "gid://shopify/DiscountCodeNode/12"


def test_sweeper_is_a_periodic_job_every_minute(app: Flask) -> None:
    """The sweeper is registered as a periodic task that is due at every minute."""
    huey = get_queue(app).huey
    periodic = {task.name for task in huey._registry.periodic_tasks
                if task.validate_datetime(dt.datetime(2026, 11, 22, 10, 17))}
    assert "rewards.sweep" in periodic


def test_sweeper_makes_one_attempt_per_interval_during_an_outage(
    app: Flask, make_grant: GrantFactory, mocked_responses: responses_lib.RequestsMock
) -> None:
    """While Shopify fails, each sweep interval makes one attempt per grant, with no retry chains piling up."""
    url = graphql_url(app)
    mocked_responses.post(url, status=502, body="bad gateway")
    grant = age(make_grant(), 30)
    now = utcnow()

    assert sweep(now).requeued == [grant.id]
    assert get_queue(app).huey.scheduled() == []  # the sweeper is the retry: no chain of its own
    assert sweep(now + dt.timedelta(minutes=1)).requeued == []
    assert len(mocked_responses.calls) == 1

    mocked_responses.post(url, json=created())
    assert sweep(now + dt.timedelta(minutes=6)).requeued == [grant.id]
    assert len(mocked_responses.calls) == 2
    assert db.session.execute(select(LedgerEntry).where(LedgerEntry.entry_type == EntryType.ISSUE)).scalar_one()
