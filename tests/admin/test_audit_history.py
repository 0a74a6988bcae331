"""Change history in the merchant's words: what happened, who did it, to what, never the raw event names."""

from __future__ import annotations

from referral_plugin.extensions import db
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import ensure_default_campaign
from tests.admin.conftest import Dashboard
from tests.admin.conftest import History
from tests.admin.test_workflows import CAMPAIGN_FORM
from tests.admin.test_workflows import held


def test_settings_recent_changes_read_as_sentences(shop: Shop, dashboard: Dashboard) -> None:
    """A new key and saved settings read 'API key created by staff user 42 (API key #1)', not 'api_key.created'."""
    dashboard.post("/admin/settings/api-keys", {"name": "Klaviyo sync"})
    dashboard.post("/admin/settings", {"point_value": "0.02", "phone_region": "GB"})

    html = dashboard.get("/admin/settings").get_data(as_text=True)

    assert "<strong>API key created</strong> by staff user 42" in html
    assert "<strong>Settings changed</strong> by staff user 42" in html
    assert "(API key #1)" in html
    for raw in ("api_key.created", "settings.update", "shopify-user:42", "(api_key 1)"):
        assert raw not in html


def test_campaign_history_names_the_fields(shop: Shop, dashboard: Dashboard) -> None:
    """A campaign's change history says 'Campaign changed ... Hold days: 0 → 14', not 'hold_days'."""
    campaign = ensure_default_campaign(shop)
    db.session.commit()
    dashboard.post(f"/admin/campaigns/{campaign.token}", {**CAMPAIGN_FORM, "hold_days": "14"})

    html = dashboard.get(f"/admin/campaigns/{campaign.token}").get_data(as_text=True)

    assert "Campaign changed by staff user 42" in html
    assert "Hold days: 0 → 14" in html
    assert "campaign.update" not in html and "hold_days:" not in html


def test_a_rejection_note_shows_on_the_referral(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """Rejecting with a reason shows 'Held referral rejected by staff user 42 · “same household”' on its page."""
    referral = held(history)
    dashboard.post("/admin/review", {"action": "reject", "ids": str(referral.id), "reason": "same household"})

    html = dashboard.get(f"/admin/referrals/{referral.id}").get_data(as_text=True)

    assert "Held referral rejected by staff user 42 · “same household”" in html
    assert "referral.reject" not in html
