"""Merchant workflows: campaigns, the review queue, settings, API keys, adjustments, the log and exports."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from referral_plugin import apikeys
from referral_plugin.extensions import db
from referral_plugin.models import AuditEvent
from referral_plugin.models import Campaign
from referral_plugin.models import EntryType
from referral_plugin.models import LedgerEntry
from referral_plugin.models import Referral
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import ensure_default_campaign
from tests.admin.conftest import Dashboard
from tests.admin.conftest import History
from tests.admin.conftest import at

CAMPAIGN_FORM = {
    "name": "Summer friends", "status": "active", "advocate_reward_kind": "points", "advocate_reward_value": "250",
    "friend_reward_kind": "percentage", "friend_reward_value": "15", "min_order_subtotal": "30",
    "advocate_cap": "5", "hold_days": "14", "starts_at": "", "ends_at": "",
}


def audit_actions(shop: Shop) -> list[str]:
    """Return the shop's audit actions, oldest first."""
    return [e.action for e in db.session.query(AuditEvent).filter_by(shop_id=shop.id).order_by(AuditEvent.id)]


def held(history: History, email: str = "cat@example.com", reason: str = "REVIEW_VELOCITY") -> Referral:
    """Return a referral held for review, with held points for both sides."""
    advocate, code = history.advocate(f"adv-{email}", "Ann")
    referral = history.referral(advocate, code, email, "2026-11-02 12:00", status=ReferralStatus.HELD,
                                reason=reason, evidence={"velocity": {"referrals": 6, "window": "1h"}})
    history.order(referral, "60.00", "2026-11-02 13:00", decision="held", reason=reason)
    friend_id = referral.friend_id
    history.entry(referral, advocate, EntryType.HOLD, "2026-11-02 13:00", points=100)
    from referral_plugin.models import Customer

    friend = db.session.get(Customer, friend_id)
    assert friend is not None
    history.entry(referral, friend, EntryType.HOLD, "2026-11-02 13:00", points=50, side="friend")
    db.session.commit()
    return referral


def test_edit_the_default_campaign(shop: Shop, dashboard: Dashboard) -> None:
    """Saving the default campaign's form changes its rewards and rules and records who changed what."""
    campaign = ensure_default_campaign(shop)
    db.session.commit()
    assert dashboard.get(f"/admin/campaigns/{campaign.token}").status_code == 200

    response = dashboard.post(f"/admin/campaigns/{campaign.token}", {**CAMPAIGN_FORM, "new_customers_only": "on"})

    assert response.status_code == 303
    assert "notice=campaign-saved" in response.headers["Location"]
    db.session.refresh(campaign)
    assert campaign.name == "Summer friends"
    assert campaign.advocate_reward_value == Decimal(250)
    assert (campaign.friend_reward_kind, campaign.friend_reward_value) == ("percentage", Decimal(15))
    assert (campaign.advocate_cap, campaign.hold_days, campaign.new_customers_only) == (5, 14, True)
    event = db.session.query(AuditEvent).filter_by(shop_id=shop.id, action="campaign.update").one()
    assert event.actor == "shopify-user:42"
    change = event.details["advocate_reward_value"]
    assert Decimal(change["from"]) == 100 and Decimal(change["to"]) == 250
    listing = dashboard.get("/admin/campaigns").get_data(as_text=True)
    assert "Give 15% off, get 250 points" in listing


def test_invalid_campaign_edit_shows_the_field_and_changes_nothing(shop: Shop, dashboard: Dashboard) -> None:
    """A 150% discount is refused with a message next to the field; the campaign keeps its values."""
    campaign = ensure_default_campaign(shop)
    db.session.commit()

    response = dashboard.post(f"/admin/campaigns/{campaign.token}",
                              {**CAMPAIGN_FORM, "friend_reward_value": "150"})

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="friend_reward_value-error"' in html and "from 1 to 100" in html
    assert 'value="150"' in html  # what was typed is shown back
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).name != "Summer friends"
    assert "campaign.update" not in audit_actions(shop)


def test_create_a_campaign_and_refuse_a_bad_number(shop: Shop, dashboard: Dashboard) -> None:
    """A new campaign is created from the form; hold days that are not a number are refused by field."""
    ensure_default_campaign(shop)
    db.session.commit()

    bad = dashboard.post("/admin/campaigns/new", {**CAMPAIGN_FORM, "hold_days": "two weeks"})
    assert bad.status_code == 400 and 'id="hold_days-error"' in bad.get_data(as_text=True)

    good = dashboard.post("/admin/campaigns/new", {**CAMPAIGN_FORM, "starts_at": "2026-12-01T09:00",
                                                   "ends_at": "2026-12-31T18:00"})
    assert good.status_code == 303
    created = db.session.query(Campaign).filter_by(shop_id=shop.id, name="Summer friends").one()
    assert created.is_default is False
    assert created.starts_at is not None and created.starts_at.isoformat() == "2026-12-01T09:00:00+00:00"
    assert "campaign.create" in audit_actions(shop)


def test_campaign_of_another_shop_is_not_found(shop: Shop, dashboard: Dashboard) -> None:
    """A campaign token of another shop is a 404 here."""
    from tests.conftest import make_shop

    other = make_shop("other-shop.myshopify.com")
    theirs = ensure_default_campaign(other)
    db.session.commit()
    assert dashboard.get(f"/admin/campaigns/{theirs.token}").status_code == 404


def test_review_queue_shows_evidence_and_approve_releases(shop: Shop, history: History,
                                                          dashboard: Dashboard) -> None:
    """A held referral is listed with its evidence; approving releases its points and is audited."""
    referral = held(history)
    page = dashboard.get("/admin/review").get_data(as_text=True)
    assert "many referrals in a short time" in page and "REVIEW_VELOCITY" in page and "velocity" in page

    response = dashboard.post("/admin/review", {"decide-one": f"approve:{referral.id}"})

    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).status == ReferralStatus.REWARDED
    releases = db.session.query(LedgerEntry).filter_by(referral_id=referral.id, entry_type="release").all()
    assert sorted(e.points for e in releases) == [50, 100]
    assert "referral.approve" in audit_actions(shop)
    assert "Nothing to review" in dashboard.get("/admin/review").get_data(as_text=True)


def test_bulk_reject_through_the_json_call(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """The JSON call rejects several held referrals at once, voids their holds and skips unknown ids."""
    first = held(history, "cat@example.com")
    second = held(history, "dan@example.com")

    response = dashboard.post_json("/admin/api/review", {"action": "reject", "ids": [first.id, second.id, 999999],
                                                         "reason": "same household"})

    assert response.status_code == 200
    assert response.get_json() == {"decided": [first.id, second.id], "skipped": [999999]}
    db.session.expire_all()
    for referral_id in (first.id, second.id):
        assert db.session.get(Referral, referral_id).status == ReferralStatus.REJECTED
        assert db.session.query(LedgerEntry).filter_by(referral_id=referral_id, entry_type="void").count() == 2
    assert audit_actions(shop).count("referral.reject") == 2


def test_bulk_form_approves_only_selected(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """The bulk form decides the ticked referrals and leaves the others held."""
    first = held(history, "cat@example.com")
    second = held(history, "dan@example.com")

    response = dashboard.post("/admin/review", [("ids", str(first.id)), ("action", "approve")])

    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Referral, first.id).status == ReferralStatus.REWARDED
    assert db.session.get(Referral, second.id).status == ReferralStatus.HELD


def test_review_back_link_must_be_an_ascii_number(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """A ``back`` that only looks numeric ("²") sends the merchant back to the queue, not to a 500."""
    referral = held(history)

    response = dashboard.post("/admin/review", {"decide-one": f"approve:{referral.id}", "back": "²"})

    assert response.status_code == 303
    assert "/admin/review?" in response.headers["Location"]


def test_ids_beyond_64_bits_name_no_referral(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """A referral id too large for the database is a 404 page, a skipped id, or an unchanged queue: never a 500."""
    big = "9" * 30
    referral = held(history)

    assert dashboard.get(f"/admin/referrals/{big}").status_code == 404
    decided = dashboard.post_json("/admin/api/review", {"action": "approve", "ids": [referral.id, int(big)]})
    assert decided.status_code == 200
    assert decided.get_json() == {"decided": [referral.id], "skipped": [int(big)]}
    assert dashboard.post("/admin/review", [("ids", big), ("action", "approve")]).status_code == 303


def test_campaign_cap_beyond_the_column_is_a_field_error(shop: Shop, dashboard: Dashboard) -> None:
    """An advocate cap too large for its column is shown as the form's error (400), not a 500."""
    response = dashboard.post("/admin/campaigns/new", {**CAMPAIGN_FORM, "advocate_cap": "9" * 30})
    assert response.status_code == 400
    assert db.session.query(Campaign).filter_by(name=CAMPAIGN_FORM["name"]).count() == 0


def test_review_json_refuses_bad_input(shop: Shop, dashboard: Dashboard) -> None:
    """A JSON decision with an unknown action or without ids is a 400 with a stable code."""
    bad_action = dashboard.post_json("/admin/api/review", {"action": "delete", "ids": [1]})
    assert bad_action.status_code == 400 and bad_action.get_json()["error"]["code"] == "INVALID_ACTION"
    no_ids = dashboard.post_json("/admin/api/review", {"action": "approve"})
    assert no_ids.status_code == 400 and no_ids.get_json()["error"]["code"] == "INVALID_IDS"


def test_api_key_life_cycle(shop: Shop, dashboard: Dashboard) -> None:
    """A key is shown once on creation, listed by prefix afterwards, works, and stops working when revoked."""
    created = dashboard.post("/admin/settings/api-keys", {"name": "Klaviyo"})
    assert created.status_code == 200
    assert created.headers["Cache-Control"] == "no-store"
    html = created.get_data(as_text=True)
    marker = "data-new-key>"
    key = html[html.index(marker) + len(marker):].split("<", 1)[0]
    assert key.startswith("rpk_")
    assert apikeys.authenticate(key) is not None
    db.session.commit()

    later = dashboard.get("/admin/settings").get_data(as_text=True)
    prefix = apikeys.split_prefix(key)
    assert prefix is not None and prefix in later and key not in later and "Klaviyo" in later

    revoked = dashboard.post(f"/admin/settings/api-keys/{prefix}/revoke", {})
    assert revoked.status_code == 303
    db.session.expire_all()
    assert apikeys.authenticate(key) is None
    assert "Revoked" in dashboard.get("/admin/settings").get_data(as_text=True)
    assert {"api_key.created", "api_key.revoked"} <= set(audit_actions(shop))


def test_cannot_revoke_another_shops_key(shop: Shop, dashboard: Dashboard) -> None:
    """Revoking a prefix that belongs to another shop is a 404 and the key keeps working."""
    from tests.conftest import make_shop

    other = make_shop("other-shop.myshopify.com")
    theirs = apikeys.create_key(other, "theirs")
    db.session.commit()
    response = dashboard.post(f"/admin/settings/api-keys/{theirs.api_key.prefix}/revoke", {})
    assert response.status_code == 404
    assert apikeys.authenticate(theirs.key) is not None


def test_settings_save_and_validate(shop: Shop, dashboard: Dashboard) -> None:
    """Valid settings are saved and audited; a bad phone region is refused by field."""
    ok = dashboard.post("/admin/settings", {"reward_test_orders": "on", "phone_region": "gb", "point_value": "0.05"})
    assert ok.status_code == 303
    db.session.refresh(shop)
    assert (shop.reward_test_orders, shop.phone_region, shop.point_value) == (True, "GB", Decimal("0.05"))
    assert "settings.update" in audit_actions(shop)

    bad = dashboard.post("/admin/settings", {"phone_region": "XX", "point_value": "0.05"})
    assert bad.status_code == 400
    assert 'id="phone_region-error"' in bad.get_data(as_text=True)
    db.session.refresh(shop)
    assert shop.phone_region == "GB"


def test_manual_adjustment_writes_a_ledger_row(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """Adjusting points by email writes an adjustment row with the reason; an unknown customer is refused."""
    customer = history.customer("ann@example.com", "Ann")
    db.session.commit()

    ok = dashboard.post("/admin/settings/adjustments", {"customer": "ann@example.com", "points": "-40",
                                                        "reason": "Returned a gift"})
    assert ok.status_code == 303
    row = db.session.query(LedgerEntry).filter_by(customer_id=customer.id, entry_type="adjustment").one()
    assert (row.points, row.note) == (-40, "Returned a gift")

    missing = dashboard.post("/admin/settings/adjustments", {"customer": "nobody@example.com", "points": "5",
                                                             "reason": "x"})
    assert missing.status_code == 400 and 'id="customer-error"' in missing.get_data(as_text=True)
    zero = dashboard.post("/admin/settings/adjustments", {"customer": "ann@example.com", "points": "0",
                                                          "reason": "x"})
    assert zero.status_code == 400 and 'id="points-error"' in zero.get_data(as_text=True)


def test_log_filters_search_and_pages(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """The log filters by status and date, finds by email or code, masks emails and pages by 25."""
    ann, ann_code = history.advocate("ann@example.com", "Ann")
    bob, bob_code = history.advocate("bob@example.com", "Bob")
    for i in range(27):
        history.referral(ann, ann_code, f"friend{i}@example.com", f"2026-11-0{1 + i % 5} 10:00")
    rewarded = history.referral(bob, bob_code, "zed@example.com", "2026-11-09 10:00")
    history.rewarded(rewarded, bob, "70.00", "2026-11-09 11:00")
    db.session.commit()

    first = dashboard.get("/admin/referrals").get_data(as_text=True)
    assert "28 referrals" in first and "Page 1 of 2" in first
    assert "z***@example.com" in first and "zed@example.com" not in first
    second = dashboard.get("/admin/referrals", page="2").get_data(as_text=True)
    assert "Page 2 of 2" in second
    only_rewarded = dashboard.get("/admin/referrals", status="rewarded").get_data(as_text=True)
    assert "1 referral<" in only_rewarded and "+100 pts advocate" in only_rewarded
    assert "+50 pts friend" in only_rewarded
    by_email = dashboard.get("/admin/referrals", q="zed@example.com").get_data(as_text=True)
    assert "1 referral<" in by_email
    by_code = dashboard.get("/admin/referrals", q=bob_code.code.lower()).get_data(as_text=True)
    assert "1 referral<" in by_code
    by_date = dashboard.get("/admin/referrals", start="2026-11-05", end="2026-11-05").get_data(as_text=True)
    assert "5 referrals" in by_date
    assert dashboard.get("/admin/referrals", status="bogus").status_code == 400


def test_referral_detail_has_ledger_and_evidence(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """The detail page shows the decision in words, the attribution evidence and every ledger row."""
    ann, code = history.advocate("ann@example.com", "Ann")
    referral = history.referral(ann, code, "cat@example.com", "2026-11-02 12:00")
    history.rewarded(referral, ann, "80.00", "2026-11-03 15:00")
    history.entry(referral, ann, EntryType.REVERSAL, "2026-11-05 10:00", points=-100)
    referral.reason = "QUALIFIED"
    db.session.commit()

    html = dashboard.get(f"/admin/referrals/{referral.id}").get_data(as_text=True)

    assert "The friend&#39;s order qualified" in html and "QUALIFIED" in html
    assert "discount_codes" in html  # the attribution evidence
    assert html.count("badge-entry-grant") == 2 and "badge-entry-reversal" in html
    assert "+50 points" in html  # net: 100 + 50 - 100


def test_summary_api_refuses_bad_ranges(shop: Shop, dashboard: Dashboard) -> None:
    """Reversed, unreadable or too long ranges are 400 JSON with a stable code."""
    reversed_ = dashboard.api("/admin/api/summary", start="2026-11-08", end="2026-11-01")
    assert reversed_.status_code == 400 and reversed_.get_json()["error"]["code"] == "INVALID_RANGE"
    bad = dashboard.api("/admin/api/summary", start="11/01/2026")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "INVALID_DATE"
    long = dashboard.api("/admin/api/summary", start="2020-01-01", end="2026-01-01")
    assert long.status_code == 400 and long.get_json()["error"]["code"] == "RANGE_TOO_LONG"
    default = dashboard.api("/admin/api/summary").get_json()
    assert len(default["series"]) == 30


def test_overview_with_a_bad_range_falls_back(shop: Shop, dashboard: Dashboard) -> None:
    """The page explains a bad range and shows the last 30 days instead."""
    response = dashboard.get("/admin", start="2026-11-08", end="2026-11-01")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "INVALID_RANGE" in html and "Referral revenue" in html and "<svg" in html


def test_csv_exports_are_complete_and_injection_safe(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """Both exports hold the range's rows; cells that look like formulas are neutralised."""
    ann, code = history.advocate("ann@example.com", "Ann")
    inside = history.referral(ann, code, "cat@example.com", "2026-11-02 12:00")
    history.rewarded(inside, ann, "80.00", "2026-11-03 15:00")
    inside.order_name = "=HYPERLINK(\"http://evil\")"
    history.referral(ann, code, "dan@example.com", "2026-12-02 12:00")  # outside the range
    history.entry(None, ann, EntryType.ADJUSTMENT, "2026-11-04 10:00", points=5)
    db.session.query(LedgerEntry).filter_by(entry_type="adjustment").one().note = "+1 for @everyone"
    db.session.commit()

    referrals = dashboard.get("/admin/exports/referrals.csv", start="2026-11-01", end="2026-11-30")
    assert referrals.status_code == 200 and referrals.mimetype == "text/csv"
    assert "attachment" in referrals.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(referrals.get_data(as_text=True))))
    assert len(rows) == 1
    assert rows[0]["friend_email"] == "cat@example.com" and rows[0]["status"] == "rewarded"
    assert rows[0]["order_name"] == "'=HYPERLINK(\"http://evil\")"
    assert rows[0]["order_total"] == "80.00"

    ledger = dashboard.get("/admin/exports/ledger.csv", start="2026-11-01", end="2026-11-30")
    entries = list(csv.DictReader(io.StringIO(ledger.get_data(as_text=True))))
    assert [(e["entry_type"], e["points"]) for e in entries] == [("grant", "100"), ("grant", "50"),
                                                                  ("adjustment", "5")]
    assert entries[2]["note"] == "'+1 for @everyone"
    assert dashboard.get("/admin/exports/ledger.csv", start="2026-11-30", end="2026-11-01").status_code == 400


def test_pending_panel_lists_held(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """The overview's pending panel counts held referrals and links to the queue."""
    held(history)
    history.referral(*history.advocate("bob@example.com"), "eve@example.com", "2026-11-02 12:00")
    db.session.commit()
    html = dashboard.get("/admin").get_data(as_text=True)
    assert "Open the review queue" in html
    assert at("2026-11-02 12:00").year == 2026
