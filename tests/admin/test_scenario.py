"""The summary against a history built only through signed webhooks and the app proxy."""

from __future__ import annotations

from referral_plugin.extensions import db
from referral_plugin.models import Shop
from referral_plugin.reports.summary import shop_today
from tests.admin.conftest import Dashboard
from tests.admin.conftest import Storefront
from tests.admin.conftest import paid_order


def test_summary_counts_what_shopify_sent(shop: Shop, storefront: Storefront, dashboard: Dashboard) -> None:
    """Three clicks, two friends' first orders with Ann's code and one self-referral give exact figures."""
    ann = storefront.register("ann@example.com", "Ann")
    code = storefront.code_of(ann)
    for _ in range(3):
        storefront.click(code)
    cat = storefront.register("cat@example.net", "Cat")
    dan = storefront.register("dan@example.org", "Dan")
    storefront.pay(paid_order(cat, "80.00", code))
    storefront.pay(paid_order(dan, "40.50", code))
    storefront.pay(paid_order(ann, "99.00", code))  # her own code: rejected, not counted
    db.session.expire_all()
    today = shop_today(shop).isoformat()

    summary = dashboard.api("/admin/api/summary", start=today, end=today).get_json()

    assert summary["clicks"] == 3
    assert summary["signups"] == 2
    assert summary["referredOrders"] == 2
    assert summary["referralRevenue"] == 120.5
    assert summary["pointsAwarded"] == 2 * (100 + 50)
    assert summary["conversionRate"] == round(2 / 3, 4)
    assert summary["rewardsCost"] == 3.0
    assert summary["series"] == [{"date": today, "clicks": 3, "invites": 0, "signups": 2, "referredOrders": 2,
                                  "referralRevenue": 120.5, "pointsAwarded": 300, "couponsIssued": 0}]
    assert summary["topAdvocates"][0]["name"].startswith("Ann")
    assert summary["topAdvocates"][0]["pointsEarned"] == 200

    page = dashboard.get("/admin", start=today, end=today).get_data(as_text=True)
    assert "120.50" in page and "Ann" in page
    log = dashboard.get("/admin/referrals").get_data(as_text=True)
    assert "c***@example.net" in log and "cat@example.net" not in log
