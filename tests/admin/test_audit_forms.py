"""Dashboard forms under hostile input: every refusal is a field error on the page, never a 500."""

from __future__ import annotations

import pytest

from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import ensure_default_campaign
from tests.admin.conftest import Dashboard

FORM = {
    "name": "Autumn friends", "status": "active", "advocate_reward_kind": "points", "advocate_reward_value": "100",
    "friend_reward_kind": "points", "friend_reward_value": "50", "min_order_subtotal": "0", "hold_days": "0",
}


@pytest.mark.parametrize("field", ["advocate_reward_value", "friend_reward_value", "min_order_subtotal"])
@pytest.mark.parametrize("typed", ["1e309", "111111111111111111111111111111", "9" * 400])
def test_huge_amount_is_a_field_error(shop: Shop, dashboard: Dashboard, field: str, typed: str) -> None:
    """An amount beyond any reward (30 digits, 1e309) is refused next to its field, on create and on edit."""
    campaign = ensure_default_campaign(shop)
    db.session.commit()

    for path in ("/admin/campaigns/new", f"/admin/campaigns/{campaign.token}"):
        response = dashboard.post(path, {**FORM, field: typed})
        assert response.status_code == 400, path
        assert f'id="{field}-error"' in response.get_data(as_text=True)
    assert db.session.query(Campaign).filter_by(shop_id=shop.id, name="Autumn friends").count() == 0


@pytest.mark.parametrize("typed", ["0001-01-01T00:00", "9999-12-31T23:59", "0001-01-01T00:00+14:00",
                                   "9999-12-31T23:59-12:00"])
@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles"])
def test_campaign_dates_at_the_ends_of_the_calendar_are_field_errors(shop: Shop, dashboard: Dashboard,
                                                                     typed: str, zone: str) -> None:
    """A start or end in year 1 or 9999 (no UTC instant in the shop's zone) is a field error and saves nothing."""
    shop.timezone = zone
    campaign = ensure_default_campaign(shop)
    db.session.commit()

    for field in ("starts_at", "ends_at"):
        for path in ("/admin/campaigns/new", f"/admin/campaigns/{campaign.token}"):
            response = dashboard.post(path, {**FORM, field: typed})
            assert response.status_code == 400, (path, field)
            assert f'id="{field}-error"' in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).starts_at is None
    assert dashboard.get(f"/admin/campaigns/{campaign.token}").status_code == 200


def test_far_but_real_campaign_dates_still_save(shop: Shop, dashboard: Dashboard) -> None:
    """A campaign running to the end of 2999 in the shop's zone saves and shows back as typed."""
    shop.timezone = "Asia/Tokyo"
    campaign = ensure_default_campaign(shop)
    db.session.commit()

    response = dashboard.post(f"/admin/campaigns/{campaign.token}", {**FORM, "ends_at": "2999-12-31T23:59"})

    assert response.status_code == 303
    assert 'value="2999-12-31T23:59"' in dashboard.get(f"/admin/campaigns/{campaign.token}").get_data(as_text=True)
