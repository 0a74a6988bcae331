"""The review queue states what is on hold in the reward's own unit, never a sum of unlike things."""

from __future__ import annotations

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import EntryType
from referral_plugin.models import ReferralStatus
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models import Side
from tests.admin.conftest import Dashboard
from tests.admin.conftest import History


def test_held_discounts_are_shown_per_side_and_kind(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """A held $10 code for the advocate and a held 10% code for the friend read as such, not '20.00 discount value'."""
    advocate, code = history.advocate("liam@example.com", "Liam")
    referral = history.referral(advocate, code, "tess@yopmail.com", "2026-11-02 12:00", status=ReferralStatus.HELD,
                                reason="REVIEW_DISPOSABLE_EMAIL")
    history.order(referral, "64.00", "2026-11-02 13:00", decision="held", reason="REVIEW_DISPOSABLE_EMAIL")
    friend = db.session.get(Customer, referral.friend_id)
    assert friend is not None
    history.entry(referral, advocate, EntryType.HOLD, "2026-11-02 13:00", amount="10",
                  kind=RewardKind.FIXED_AMOUNT)
    history.entry(referral, friend, EntryType.HOLD, "2026-11-02 13:00", amount="10", kind=RewardKind.PERCENTAGE,
                  side=Side.FRIEND)
    db.session.commit()

    html = dashboard.get("/admin/review").get_data(as_text=True)

    assert "20.00" not in html
    assert "discount value" not in html
    assert "$10 off <span class=\"muted\">to the advocate</span>" in html
    assert "10% off <span class=\"muted\">to the friend</span>" in html


def test_held_points_for_both_sides_are_told_apart(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """100 held points for the advocate and 50 for the friend are listed per side, not as '150 points'."""
    advocate, code = history.advocate("ann@example.com", "Ann")
    referral = history.referral(advocate, code, "cat@example.com", "2026-11-02 12:00", status=ReferralStatus.HELD,
                                reason="REVIEW_VELOCITY")
    history.order(referral, "60.00", "2026-11-02 13:00", decision="held", reason="REVIEW_VELOCITY")
    friend = db.session.get(Customer, referral.friend_id)
    assert friend is not None
    history.entry(referral, advocate, EntryType.HOLD, "2026-11-02 13:00", points=100)
    history.entry(referral, friend, EntryType.HOLD, "2026-11-02 13:00", points=50, side=Side.FRIEND)
    db.session.commit()

    html = dashboard.get("/admin/review").get_data(as_text=True)

    assert "150 points" not in html
    assert "100 points <span class=\"muted\">to the advocate</span>" in html
    assert "50 points <span class=\"muted\">to the friend</span>" in html


def test_a_partial_refund_during_the_hold_shows_what_is_left(shop: Shop, history: History,
                                                              dashboard: Dashboard) -> None:
    """100 points held, a quarter voided by a refund: the queue says 75 points, the overview 75 on hold."""
    advocate, code = history.advocate("ivy@example.com", "Ivy")
    referral = history.referral(advocate, code, "jo@example.com", "2026-11-02 12:00", status=ReferralStatus.HELD,
                                reason="HOLD_PERIOD")
    history.order(referral, "100.00", "2026-11-02 13:00", decision="held", reason="HOLD_PERIOD")
    hold = history.entry(referral, advocate, EntryType.HOLD, "2026-11-02 13:00", points=100)
    history.entry(referral, advocate, EntryType.VOID, "2026-11-03 09:00", points=-25, related=hold)
    db.session.commit()

    html = dashboard.get("/admin/review").get_data(as_text=True)
    pending = dashboard.api("/admin/api/summary").get_json()["pending"]

    assert "75 points <span class=\"muted\">to the advocate</span>" in html
    assert pending["pointsOnHold"] == 75
