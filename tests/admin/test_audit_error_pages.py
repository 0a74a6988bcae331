"""Dashboard errors stay inside the dashboard: its tabs, the problem in words, a way back, the frame policy."""

from __future__ import annotations

from referral_plugin.extensions import db
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import ensure_default_campaign
from tests.admin.conftest import Dashboard
from tests.shopify_actions import SHOP


def test_a_bad_filter_keeps_the_tabs_and_links_back(shop: Shop, dashboard: Dashboard) -> None:
    """An unknown status filter answers 400 with the tabs, the message and 'Back to referrals' carrying the token."""
    response = dashboard.get("/admin/referrals", status="bogus")

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'nav class="tabs"' in html
    assert 'role="alert">Unknown status.</div>' in html
    assert 'href="/admin/referrals?id_token=' in html and "Back to referrals" in html
    assert response.headers["Content-Security-Policy"] == f"frame-ancestors https://{SHOP} https://admin.shopify.com;"


def test_swapped_dates_are_named_not_an_empty_list(shop: Shop, dashboard: Dashboard) -> None:
    """From after To is refused with the reason, instead of a silent '0 referrals'."""
    response = dashboard.get("/admin/referrals", start="2026-11-10", end="2026-11-01")

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "The start date must not be after the end date." in html
    assert "0 referrals" not in html


def test_unknown_campaign_and_expired_form_stay_in_the_dashboard(shop: Shop, dashboard: Dashboard) -> None:
    """Another shop's campaign token is a 404 and a form without its CSRF token a 403, both with the tabs."""
    campaign = ensure_default_campaign(shop)
    db.session.commit()

    missing = dashboard.get("/admin/campaigns/ZZZZZ")
    forged = dashboard.post(f"/admin/campaigns/{campaign.token}", {"name": "x"}, csrf=False)

    assert missing.status_code == 404 and "Back to campaigns" in missing.get_data(as_text=True)
    assert forged.status_code == 403
    assert 'nav class="tabs"' in forged.get_data(as_text=True)
    assert "The form expired" in forged.get_data(as_text=True)


def test_json_endpoints_keep_their_envelope(shop: Shop, dashboard: Dashboard) -> None:
    """The summary and review JSON calls still answer errors as JSON."""
    summary = dashboard.api("/admin/api/summary", start="2026-13-01")
    review = dashboard.post_json("/admin/api/review", {"action": "approve", "ids": "1"})

    assert summary.status_code == 400 and summary.get_json()["error"]["code"] == "INVALID_DATE"
    assert review.status_code == 400 and review.get_json()["error"]["code"] == "INVALID_IDS"
