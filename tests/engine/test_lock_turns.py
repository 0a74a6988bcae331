"""Transactions deciding about one advocate take turns without deadlocking each other (PostgreSQL).

SQLite has a single writer, so this is run by the suite's PostgreSQL pass.
"""

from __future__ import annotations

import threading

import pytest
from flask import Flask

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import Referral
from referral_plugin.models import Shop
from referral_plugin.referrals._db import lock_for_turns
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.customers import upsert_customer
from tests.conftest import run_at_once


@pytest.fixture(autouse=True)
def _postgresql_only(app: Flask) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's (TEST_DATABASE_URL)")


def test_two_orders_of_one_advocates_friends_take_turns_without_a_deadlock(app: Flask, shop: Shop) -> None:
    """Each order first binds its friend's referral (the foreign key takes a KEY SHARE lock on the advocate),
    then locks the advocate to decide. Two at once must queue, not deadlock: with FOR UPDATE one of them failed
    with DeadlockDetected (seen in the benchmark, one delivery in ~1,500), to be retried by Shopify."""
    advocate = upsert_customer(shop, 1, email="ada@example.com")
    friends = [upsert_customer(shop, 2 + n, email=f"friend{n}@example.com") for n in range(2)]
    campaign = ensure_default_campaign(shop)
    db.session.commit()
    shop_id, campaign_id, advocate_id = shop.id, campaign.id, advocate.id
    friend_ids = [friend.id for friend in friends]
    both_bound = threading.Barrier(2)
    errors: list[BaseException] = []

    def decide(friend_id: int) -> None:
        with app.app_context():
            try:
                db.session.add(Referral(shop_id=shop_id, campaign_id=campaign_id, advocate_id=advocate_id,
                                        friend_id=friend_id, source="link", status="pending"))
                db.session.flush()
                both_bound.wait(10)
                assert lock_for_turns(Customer, advocate_id) is not None
                db.session.commit()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                db.session.rollback()
            finally:
                db.session.remove()

    run_at_once(decide, [(friend_id,) for friend_id in friend_ids])
    assert errors == []
    db.session.rollback()
    stored = db.session.scalars(db.select(Referral.friend_id).where(Referral.advocate_id == advocate_id)).all()
    assert sorted(stored) == sorted(friend_ids)
