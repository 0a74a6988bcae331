"""Reversals: cancellation, full and partial refunds, repeats, and a cancellation before payment."""

from __future__ import annotations

import datetime as dt

from referral_plugin.extensions import db
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import OrderAttribution
from referral_plugin.models import Referral
from referral_plugin.referrals import ledger
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.campaigns import update_campaign
from tests.engine.conftest import Store
from tests.engine.conftest import order_payload
from tests.engine.conftest import refund_payload


def _referral() -> Referral:
    db.session.expire_all()
    return db.session.query(Referral).one()


def _reversals() -> list[LedgerEntry]:
    db.session.expire_all()
    return db.session.query(LedgerEntry).filter_by(entry_type=EntryType.REVERSAL).order_by(LedgerEntry.id).all()


def _paid(store: Store) -> tuple[dict[str, object], dict[str, object], dict[str, object]]:
    advocate, friend = store.register(), store.register()
    order = order_payload(friend, code=store.code_of(advocate), subtotal_price="200.00", total_price="210.00")
    store.pay(order)
    assert (store.balance(advocate), store.balance(friend)) == (100, 50)
    return advocate, friend, order


def test_cancellation_reverses_the_grants_once(store: Store) -> None:
    """``orders/cancelled`` takes both rewards back with linked REVERSAL rows; a repeat changes nothing."""
    advocate, friend, order = _paid(store)
    cancelled = dict(order, cancelled_at="2026-11-02T10:00:00Z", cancel_reason="customer")
    store.send("orders/cancelled", cancelled)
    store.send("orders/cancelled", cancelled)
    assert (store.balance(advocate), store.balance(friend)) == (0, 0)
    reversals = _reversals()
    assert [(r.side, r.points, r.reason) for r in reversals] == [
        ("advocate", -100, "ORDER_CANCELLED"), ("friend", -50, "ORDER_CANCELLED")]
    grants = {g.id for g in db.session.query(LedgerEntry).filter_by(entry_type=EntryType.GRANT)}
    assert {r.related_entry_id for r in reversals} == grants
    assert (_referral().status, _referral().reason) == ("reversed", "ORDER_CANCELLED")


def test_full_refund_reverses_everything(store: Store) -> None:
    """A refund of the whole subtotal reverses both rewards."""
    advocate, friend, order = _paid(store)
    store.send("refunds/create", refund_payload(int(str(order["id"])), "210.00"))
    assert (store.balance(advocate), store.balance(friend)) == (0, 0)
    assert {r.reason for r in _reversals()} == {"ORDER_REFUNDED"}
    assert _referral().status == "reversed"


def test_partial_refund_reverses_its_share_once(store: Store) -> None:
    """A refund of 30% of the subtotal reverses 30% of the points (rounded down); its repeat is a no-op."""
    advocate, friend, order = _paid(store)
    refund = refund_payload(int(str(order["id"])), "60.00", refund_id=555)
    store.send("refunds/create", refund)
    store.send("refunds/create", refund)
    assert (store.balance(advocate), store.balance(friend)) == (70, 35)
    assert [(r.points, r.shopify_refund_id) for r in _reversals()] == [(-30, 555), (-15, 555)]
    assert (_referral().status, _referral().reason) == ("partially_reversed", "PARTIAL_REFUND")

    store.send("refunds/create", refund_payload(int(str(order["id"])), "70.00", refund_id=556))
    assert (store.balance(advocate), store.balance(friend)) == (35, 18)  # 65% of 50 = 32.5, rounded down

    store.send("refunds/create", refund_payload(int(str(order["id"])), "70.00", refund_id=557))
    assert (store.balance(advocate), store.balance(friend)) == (0, 0)
    assert _referral().status == "reversed"
    store.send("orders/cancelled", dict(order, cancelled_at="2026-11-03T10:00:00Z"))
    assert (store.balance(advocate), store.balance(friend)) == (0, 0)


def test_refund_of_an_unattributed_order_changes_nothing(store: Store) -> None:
    """Refunds of orders that earned nothing write nothing."""
    friend = store.register()
    order = order_payload(friend)
    store.pay(order)
    store.send("refunds/create", refund_payload(int(str(order["id"])), "10.00"))
    assert db.session.query(LedgerEntry).count() == 0


def test_cancellation_before_payment_leaves_the_late_payment_unrewarded(store: Store) -> None:
    """An ``orders/cancelled`` that overtakes ``orders/paid`` leaves a tombstone; the payment earns nothing."""
    advocate, friend = store.register(), store.register()
    order = order_payload(friend, code=store.code_of(advocate))
    store.send("orders/cancelled", dict(order, cancelled_at="2026-11-02T10:00:00Z"))
    store.pay(order)
    decision = db.session.query(OrderAttribution).one()
    assert (decision.decision, decision.reason) == ("rejected", "ORDER_CANCELLED")
    assert (store.balance(advocate), store.balance(friend)) == (0, 0)
    assert db.session.query(LedgerEntry).count() == 0


def test_cancelling_a_held_order_voids_the_holds(store: Store) -> None:
    """Held rewards of a cancelled order are voided and never released."""
    update_campaign(ensure_default_campaign(store.shop), {"hold_days": 14}, actor="merchant")
    db.session.commit()
    advocate, friend = store.register(), store.register()
    order = order_payload(friend, code=store.code_of(advocate), subtotal_price="100.00")
    store.pay(order)
    store.send("refunds/create", refund_payload(int(str(order["id"])), "50.00"))
    assert [p.points for p in ledger.pending_rewards(store.customer(advocate))] == [50]
    store.send("orders/cancelled", dict(order, cancelled_at="2026-11-02T10:00:00Z"))
    assert ledger.release_due_holds(dt.datetime.now(dt.UTC) + dt.timedelta(days=30)) == 0
    db.session.commit()
    assert (store.balance(advocate), store.balance(friend)) == (0, 0)
    assert ledger.pending_rewards(store.customer(advocate)) == []
    assert _referral().status == "reversed"


def test_partial_refund_during_the_hold_releases_only_the_rest(store: Store) -> None:
    """A partial refund of a held order voids its share; the release pays out what is left."""
    update_campaign(ensure_default_campaign(store.shop), {"hold_days": 14}, actor="merchant")
    db.session.commit()
    advocate, friend = store.register(), store.register()
    order = order_payload(friend, code=store.code_of(advocate), subtotal_price="100.00")
    store.pay(order)
    store.send("refunds/create", refund_payload(int(str(order["id"])), "25.00"))
    assert ledger.release_due_holds(dt.datetime.now(dt.UTC) + dt.timedelta(days=15)) == 2
    db.session.commit()
    assert (store.balance(advocate), store.balance(friend)) == (75, 38)
    assert (_referral().status, _referral().reason) == ("partially_reversed", "PARTIAL_REFUND")
