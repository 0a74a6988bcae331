"""Held rewards: hold days with release by the sweeper, and the merchant's review queue."""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest

from referral_plugin.errors import Conflict
from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.referrals import ledger
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.campaigns import update_campaign
from referral_plugin.referrals.fraud import VELOCITY_LIMIT
from tests.engine.conftest import Store
from tests.engine.conftest import order_payload


def _hold_days(store: Store, days: int) -> None:
    update_campaign(ensure_default_campaign(store.shop), {"hold_days": days}, actor="merchant")
    db.session.commit()


def _rows(entry_type: str) -> list[LedgerEntry]:
    db.session.expire_all()
    return db.session.query(LedgerEntry).filter_by(entry_type=entry_type).order_by(LedgerEntry.id).all()


def test_hold_days_hold_rewards_until_release(store: Store) -> None:
    """With hold days, rewards are HOLD rows dated for release; the sweeper releases them once, when due."""
    _hold_days(store, 30)
    advocate, friend = store.register(), store.register()
    store.pay(order_payload(friend, code=store.code_of(advocate)))
    referral = db.session.query(Referral).one()
    assert (referral.status, referral.reason) == ("held", "HOLD_PERIOD")
    holds = _rows(EntryType.HOLD)
    assert [(h.side, h.points) for h in holds] == [("advocate", 100), ("friend", 50)]
    assert holds[0].available_at is not None
    due = holds[0].available_at
    assert due - dt.datetime.now(dt.UTC) > dt.timedelta(days=29)
    assert (store.balance(advocate), store.balance(friend)) == (0, 0)
    pending = ledger.pending_rewards(store.customer(advocate))
    assert [(p.status, p.points, p.available_at) for p in pending] == [("held", 100, due)]

    assert ledger.release_due_holds(due - dt.timedelta(minutes=1)) == 0
    assert ledger.release_due_holds(due + dt.timedelta(minutes=1)) == 2
    assert ledger.release_due_holds(due + dt.timedelta(minutes=2)) == 0
    db.session.commit()
    assert [(r.side, r.points) for r in _rows(EntryType.RELEASE)] == [("advocate", 100), ("friend", 50)]
    assert (store.balance(advocate), store.balance(friend)) == (100, 50)
    assert ledger.pending_rewards(store.customer(advocate)) == []
    db.session.expire_all()
    assert db.session.query(Referral).one().status == "rewarded"


def test_disposable_email_is_held_for_review_then_approved(store: Store) -> None:
    """A friend on a throwaway inbox is held (REVIEW_DISPOSABLE_EMAIL); approval releases the rewards."""
    advocate = store.register()
    friend = store.register(email="someone@mailinator.com")
    store.pay(order_payload(friend, code=store.code_of(advocate)))
    decision = db.session.query(OrderAttribution).one()
    assert (decision.decision, decision.reason) == ("held", "REVIEW_DISPOSABLE_EMAIL")
    assert decision.evidence is not None and decision.evidence["email_domain"] == "mailinator.com"
    assert [p.status for p in ledger.pending_rewards(store.customer(advocate))] == ["in_review"]
    assert ledger.release_due_holds(dt.datetime.now(dt.UTC) + dt.timedelta(days=400)) == 0

    referral = db.session.query(Referral).one()
    ledger.approve_held(referral, "merchant@example.com")
    db.session.commit()
    assert (referral.status, referral.reason) == ("rewarded", "APPROVED")
    assert (store.balance(advocate), store.balance(friend)) == (100, 50)
    assert db.session.query(AuditEvent).filter_by(action="referral.approve").count() == 1
    with pytest.raises(Conflict):
        ledger.approve_held(referral, "merchant@example.com")


def test_rejecting_a_held_referral_voids_its_rewards(store: Store) -> None:
    """Rejecting a held referral writes VOID rows; nothing is ever released for it."""
    _hold_days(store, 7)
    advocate, friend = store.register(), store.register()
    store.pay(order_payload(friend, code=store.code_of(advocate)))
    referral = db.session.query(Referral).one()
    with pytest.raises(ValidationError):
        ledger.reject_held(referral, "merchant", "  ")
    ledger.reject_held(referral, "merchant", "Same household")
    db.session.commit()
    assert (referral.status, referral.reason) == ("rejected", "REJECTED_BY_MERCHANT")
    assert [(v.side, v.points) for v in _rows(EntryType.VOID)] == [("advocate", -100), ("friend", -50)]
    assert ledger.release_due_holds(dt.datetime.now(dt.UTC) + dt.timedelta(days=30)) == 0
    assert (store.balance(advocate), store.balance(friend)) == (0, 0)
    assert ledger.pending_rewards(store.customer(advocate)) == []


def test_shared_address_between_friends_is_held_for_review(store: Store) -> None:
    """A second friend of one advocate at the first friend's address waits for review."""
    advocate = store.register()
    code = store.code_of(advocate)
    same = {"address1": "5 Shared Lane", "zip": "10001", "country_code": "US"}
    first, second = store.register(default_address=same), store.register(default_address=same)
    for friend in (first, second):
        order = order_payload(friend, code=code)
        order["shipping_address"] = same
        store.pay(order)
    reasons = [r for (r,) in db.session.query(OrderAttribution.reason).order_by(OrderAttribution.id)]
    assert reasons == ["QUALIFIED", "REVIEW_SHARED_ADDRESS"]
    assert (store.balance(advocate), store.balance(second)) == (100, 0)


@pytest.fixture
def low_velocity_limit(app_config: dict[str, t.Any]) -> int:
    """Set a small velocity limit before the app is built."""
    app_config["REVIEW_VELOCITY_LIMIT"] = 3
    return 3


def test_many_referrals_in_a_day_are_held_for_review(low_velocity_limit: int, store: Store) -> None:
    """Past the velocity limit within 24 hours, an advocate's next referral waits for review."""
    advocate = store.register()
    code = store.code_of(advocate)
    for _ in range(low_velocity_limit + 1):
        store.pay(order_payload(store.register(), code=code))
    reasons = [r for (r,) in db.session.query(OrderAttribution.reason).order_by(OrderAttribution.id)]
    assert reasons == ["QUALIFIED"] * low_velocity_limit + ["REVIEW_VELOCITY"]
    assert store.balance(advocate) == 100 * low_velocity_limit
    assert VELOCITY_LIMIT > low_velocity_limit


def test_manual_adjustment_changes_the_balance_with_a_reason(store: Store) -> None:
    """A merchant's adjustment is a ledger row with its reason and an audit event."""
    customer = store.register()
    row = store.customer(customer)
    ledger.record_adjustment(store.shop, row, 25, "Goodwill", "merchant")
    ledger.record_adjustment(store.shop, row, -5, "Correction", "merchant")
    db.session.commit()
    assert store.balance(customer) == 20
    assert ledger.points_earned(store.customer(customer)) == 0
    assert db.session.query(AuditEvent).filter_by(action="ledger.adjust").count() == 2
    with pytest.raises(ValidationError):
        ledger.record_adjustment(store.shop, row, 0, "Nothing", "merchant")


def test_approval_inside_the_hold_period_waits_for_the_release_date(store: Store) -> None:
    """Approving a reviewed referral whose hold days are not over leaves it to the sweeper on its date."""
    _hold_days(store, 10)
    advocate = store.register()
    friend = store.register(email="x@yopmail.com")
    store.pay(order_payload(friend, code=store.code_of(advocate)))
    referral = db.session.query(Referral).one()
    assert referral.reason == "REVIEW_DISPOSABLE_EMAIL"
    ledger.approve_held(referral, "merchant")
    db.session.commit()
    assert (referral.status, referral.reason) == ("held", "HOLD_PERIOD")
    assert store.balance(advocate) == 0
    assert ledger.release_due_holds(dt.datetime.now(dt.UTC) + dt.timedelta(days=11)) == 2
    db.session.commit()
    assert (store.balance(advocate), store.balance(friend)) == (100, 50)
