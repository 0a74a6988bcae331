"""A referral held for the merchant's review has no release date: the engine releases it only on approval."""

from __future__ import annotations

import datetime as dt
import re

from referral_plugin.extensions import db
from referral_plugin.models import EntryType
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from referral_plugin.reports.summary import shop_summary
from tests.admin.conftest import Dashboard
from tests.admin.conftest import History
from tests.admin.conftest import at


def _held(history: History, email: str, reason: str, until: str) -> int:
    """Hold a referral for ``reason`` with 100 points whose hold date is ``until``; return its id."""
    advocate, code = history.advocate(f"adv-{email}", "Ann")
    referral = history.referral(advocate, code, email, "2026-11-02 12:00", status=ReferralStatus.HELD,
                                reason=reason, hold_until=at(until))
    history.order(referral, "60.00", "2026-11-02 13:00", decision="held", reason=reason)
    history.entry(referral, advocate, EntryType.HOLD, "2026-11-02 13:00", points=100, available_at=at(until))
    return referral.id


def test_next_release_skips_referrals_waiting_for_review(shop: Shop, history: History) -> None:
    """A review-held referral dated Dec 1 does not make 'next release' Dec 1; the hold-period one on Dec 9 does."""
    _held(history, "rev@example.com", "REVIEW_VELOCITY", "2026-12-01 00:00")
    _held(history, "hold@example.com", "HOLD_PERIOD", "2026-12-09 00:00")
    db.session.commit()

    pending = shop_summary(shop, dt.date(2026, 11, 1), dt.date(2026, 11, 30))["pending"]

    assert pending["heldReferrals"] == 2 and pending["pointsOnHold"] == 200
    assert pending["nextReleaseAt"].startswith("2026-12-09")


def test_only_review_held_means_no_next_release(shop: Shop, history: History) -> None:
    """With every held referral waiting for review, there is no next release date."""
    _held(history, "rev@example.com", "REVIEW_SHARED_ADDRESS", "2026-12-01 00:00")
    db.session.commit()

    assert shop_summary(shop, dt.date(2026, 11, 1), dt.date(2026, 11, 30))["pending"]["nextReleaseAt"] is None


def test_review_queue_and_overview_promise_no_date_for_a_review(shop: Shop, history: History,
                                                                 dashboard: Dashboard) -> None:
    """The queue says 'only when you approve, not before ...' and the overview 'waits for your review' for a review."""
    review_id = _held(history, "rev@example.com", "REVIEW_VELOCITY", "2026-12-01 00:00")
    hold_id = _held(history, "hold@example.com", "HOLD_PERIOD", "2026-12-09 00:00")
    db.session.commit()

    queue = dashboard.get("/admin/review").get_data(as_text=True)
    review_item = queue[queue.index(f'value="{review_id}"'):queue.index(f'value="{hold_id}"')]
    assert "only when you approve, not before" in review_item and "Dec 01, 2026 00:00" in review_item
    hold_item = queue[queue.index(f'value="{hold_id}"'):]
    assert "<dt>Releases</dt><dd><time" in hold_item

    html = dashboard.get("/admin", start="2026-11-01", end="2026-11-30").get_data(as_text=True)
    panel = re.sub(r"<[^>]+>", "", html.split('id="pending-heading"')[1])
    assert "waits for your review" in panel
    assert "releases Dec 01" not in panel and "releases Dec 09" in panel
    assert "Next releaseDec 09, 2026" in panel  # in the shop's words, not "2026-12-09"


def test_next_release_is_the_shops_day(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """A release at 20:00 UTC on Dec 9 reads 'Dec 10, 2026' for a shop in Tokyo (the UTC date was cut from ISO)."""
    shop.timezone = "Asia/Tokyo"
    _held(history, "hold@example.com", "HOLD_PERIOD", "2026-12-09 20:00")
    db.session.commit()

    html = dashboard.get("/admin", start="2026-11-01", end="2026-11-30").get_data(as_text=True)

    assert "Next releaseDec 10, 2026" in re.sub(r"<[^>]+>", "", html.split('id="pending-heading"')[1])
