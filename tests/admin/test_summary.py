"""The summary numbers: counts, money, days in the shop's time zone, range checks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from referral_plugin.errors import ValidationError
from referral_plugin.extensions import db
from referral_plugin.models import EntryType
from referral_plugin.models import ReferralStatus
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models import Side
from referral_plugin.reports.summary import parse_range
from referral_plugin.reports.summary import shop_summary
from tests.admin.conftest import History
from tests.admin.conftest import at

D = dt.date


def day(summary: dict, date: str) -> dict:
    """Return one day of the series."""
    return next(row for row in summary["series"] if row["date"] == date)


def test_counts_and_money_for_a_known_week(shop: Shop, history: History) -> None:
    """Clicks, invites, signups, orders, revenue, points and coupons add up to what happened."""
    ann, ann_code = history.advocate("ann@example.com", "Ann")
    bob, bob_code = history.advocate("bob@example.com", "Bob")
    for when in ("2026-11-02 10:00", "2026-11-02 11:00", "2026-11-03 09:00", "2026-11-04 12:00"):
        history.click(ann_code, when)
    history.click(bob_code, "2026-11-03 10:00")
    history.invite(ann, "cat@example.com", "2026-11-02 08:00")
    r1 = history.referral(ann, ann_code, "cat@example.com", "2026-11-02 12:00")
    r2 = history.referral(ann, ann_code, "dan@example.com", "2026-11-03 12:00")
    r3 = history.referral(bob, bob_code, "eve@example.com", "2026-11-03 13:00")
    history.rewarded(r1, ann, "80.00", "2026-11-03 15:00")
    history.rewarded(r2, ann, "40.50", "2026-11-04 15:00")
    history.order(r3, "99.00", "2026-11-04 16:00", decision="rejected", reason="SELF_REFERRAL")
    r3.status = ReferralStatus.REJECTED
    issue = history.entry(r1, ann, EntryType.ISSUE, "2026-11-04 17:00", kind=RewardKind.FIXED_AMOUNT)
    assert issue.id
    db.session.commit()

    s = shop_summary(shop, D(2026, 11, 1), D(2026, 11, 7))

    assert (s["clicks"], s["invites"], s["signups"], s["referredOrders"]) == (5, 1, 3, 2)
    assert s["referralRevenue"] == 120.5
    assert s["pointsAwarded"] == 300
    assert s["couponsIssued"] == 1
    assert s["conversionRate"] == 0.4
    assert s["rewardsCost"] == 3.0  # 300 points x 0.01
    assert s["roi"] == round((120.5 - 3.0) / 3.0, 4)
    assert [step["count"] for step in s["funnel"]] == [5, 3, 2, 2, 0]
    assert len(s["series"]) == 7
    assert day(s, "2026-11-02")["clicks"] == 2
    assert day(s, "2026-11-04")["referralRevenue"] == 40.5
    assert s["topAdvocates"][0]["name"] == "Ann"
    assert s["topAdvocates"][0]["referredOrders"] == 2
    assert s["topAdvocates"][0]["pointsEarned"] == 200
    assert s["topAdvocates"][0]["email"] == "a***@example.com"
    assert s["currency"] == "USD" and s["timezone"] == "UTC"


def test_reversals_and_discounts_change_points_and_cost(shop: Shop, history: History) -> None:
    """A reversal takes points back; a fixed discount adds its value to the rewards cost."""
    shop.point_value = Decimal("0.05")
    ann, code = history.advocate("ann@example.com")
    r1 = history.referral(ann, code, "cat@example.com", "2026-11-02 12:00")
    history.rewarded(r1, ann, "100.00", "2026-11-02 13:00")
    history.entry(r1, ann, EntryType.REVERSAL, "2026-11-05 10:00", points=-100)
    friend_grant = history.entry(r1, ann, EntryType.GRANT, "2026-11-02 13:00", kind=RewardKind.FIXED_AMOUNT,
                                 amount="10.00", side=Side.FRIEND)
    history.entry(r1, ann, EntryType.REVERSAL, "2026-11-05 10:00", kind=RewardKind.FIXED_AMOUNT, amount="-4.00",
                  side=Side.FRIEND, related=friend_grant)
    db.session.commit()

    s = shop_summary(shop, D(2026, 11, 1), D(2026, 11, 30))

    assert s["pointsAwarded"] == 50
    assert s["rewardsCost"] == 2.5 + 6.0
    assert s["funnel"][-1] == {"step": "reversed", "label": "Reversed", "count": 1}


def test_end_day_is_included_and_next_day_is_not(shop: Shop, history: History) -> None:
    """An event at 23:59:59 on the end day counts; one at 00:00 the next day does not."""
    _, code = history.advocate("ann@example.com")
    history.click(code, "2026-11-01 00:00")
    history.click(code, "2026-11-07 23:59:59")
    history.click(code, "2026-11-08 00:00")
    history.click(code, "2026-10-31 23:59:59")
    db.session.commit()

    s = shop_summary(shop, D(2026, 11, 1), D(2026, 11, 7))

    assert s["clicks"] == 2
    assert day(s, "2026-11-07")["clicks"] == 1 and day(s, "2026-11-01")["clicks"] == 1


def test_days_are_the_shops_days(shop: Shop, history: History) -> None:
    """In New York, 23:59 local on Nov 3 (04:59 UTC Nov 4) lands on Nov 3; 00:30 local Nov 4 on Nov 4."""
    shop.timezone = "America/New_York"
    _, code = history.advocate("ann@example.com")
    history.click(code, "2026-11-04 04:59")  # Nov 3, 23:59 EST
    history.click(code, "2026-11-04 05:30")  # Nov 4, 00:30 EST
    history.click(code, "2026-11-01 03:30")  # Oct 31, 23:30 EDT, before the range
    history.click(code, "2026-11-01 04:30")  # Nov 1, 00:30 EDT: daylight saving still on
    db.session.commit()

    s = shop_summary(shop, D(2026, 11, 1), D(2026, 11, 4))

    assert s["timezone"] == "America/New_York"
    assert s["clicks"] == 3
    assert [row["clicks"] for row in s["series"]] == [1, 0, 1, 1]


def test_half_hour_zone(shop: Shop, history: History) -> None:
    """India is UTC+5:30: 18:29 UTC is still today, 18:30 UTC is tomorrow."""
    shop.timezone = "Asia/Kolkata"
    _, code = history.advocate("ann@example.com")
    history.click(code, "2026-11-01 18:29")
    history.click(code, "2026-11-01 18:30")
    db.session.commit()

    s = shop_summary(shop, D(2026, 11, 1), D(2026, 11, 2))

    assert [row["clicks"] for row in s["series"]] == [1, 1]


def test_pending_shows_held_rewards_and_waiting_friends(shop: Shop, history: History) -> None:
    """Held referrals, their points and the next release date are reported, whatever the range."""
    ann, code = history.advocate("ann@example.com")
    held = history.referral(ann, code, "cat@example.com", "2026-11-02 12:00", status=ReferralStatus.HELD,
                            hold_until=at("2026-12-01 00:00"))
    history.referral(ann, code, "dan@example.com", "2026-11-02 12:00")
    history.order(held, "50.00", "2026-11-03 10:00", decision="held", reason="HOLD_PERIOD")
    history.entry(held, ann, EntryType.HOLD, "2026-11-03 10:00", points=100, available_at=at("2026-12-01 00:00"))
    db.session.commit()

    pending = shop_summary(shop, D(2025, 1, 1), D(2025, 1, 2))["pending"]

    assert pending["heldReferrals"] == 1
    assert pending["awaitingFirstOrder"] == 1
    assert pending["pointsOnHold"] == 100
    assert pending["nextReleaseAt"].startswith("2026-12-01")


def test_other_shops_rows_are_not_counted(shop: Shop, history: History) -> None:
    """A second shop's history never shows up in this shop's summary."""
    from tests.conftest import make_shop

    other = make_shop("other-shop.myshopify.com")
    _, code = History(other).advocate("zed@example.com")
    History(other).click(code, "2026-11-02 10:00")
    db.session.commit()

    assert shop_summary(shop, D(2026, 11, 1), D(2026, 11, 7))["clicks"] == 0


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        ("2026-11-08", "2026-11-01", "INVALID_RANGE"),
        ("2026-13-01", "2026-11-01", "INVALID_DATE"),
        ("yesterday", None, "INVALID_DATE"),
        ("2024-01-01", "2026-01-01", "RANGE_TOO_LONG"),
        ("9999-12-30", "9999-12-31", "INVALID_DATE"),
        ("0001-01-01", "0001-01-02", "INVALID_DATE"),
        ("2026-11-1", "2026-11-02", "INVALID_DATE"),
    ],
)
def test_bad_ranges_are_refused(shop: Shop, start: str, end: str | None, code: str) -> None:
    """A reversed, unreadable or over-long range raises a stable code."""
    with pytest.raises(ValidationError) as caught:
        parse_range(shop, start, end)
    assert caught.value.code == code


def test_default_range_is_the_last_30_shop_days(shop: Shop) -> None:
    """Without dates the range ends today in the shop's zone and spans 30 days."""
    shop.timezone = "Pacific/Auckland"
    now = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)  # already Nov 23 in Auckland
    start, end = parse_range(shop, None, None, now=now)
    assert end == D(2026, 11, 23)
    assert (end - start).days == 29
