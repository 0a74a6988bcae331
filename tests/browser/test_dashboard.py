"""The dashboard in a real Chromium, on the seeded demo shop: overview, a campaign edit, a review decision.

The app runs in demo mode on a free loopback port; ``/demo/admin`` plays Shopify admin's first load
(a fresh ``id_token``) and ``/demo/session-token`` stands in for App Bridge, so every click goes through
the same session-token guard as inside the admin. Screenshots land in ``tests/artifacts/``.
"""

from __future__ import annotations

import re
import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from referral_plugin import create_app
from referral_plugin.demo.seed import seed_demo
from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Referral
from referral_plugin.models import ReferralStatus
from tests.browser.conftest import free_port
from tests.browser.conftest import installed_shop_app
from tests.browser.conftest import serve
from tests.browser.conftest import shot

pytestmark = pytest.mark.browser



@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, Flask]]:
    """Run the demo app, seeded through its webhooks, on a free loopback port."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app({
        "TESTING": True,
        "APP_URL": base,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'dashboard.sqlite'}",
        "HUEY_IMMEDIATE": True,
        "RATELIMIT_STORAGE_URI": "memory://",
    })
    assert app.config["DEMO_MODE"]
    with app.app_context():
        db.create_all()
    seed_demo(app, echo=lambda line: None)
    with serve(app, app, port=port, threaded=True):
        yield base, app


def _page(browser: t.Any, base: str, width: int = 1280) -> tuple[t.Any, list[str], list[str]]:
    """Open a page that records script errors and any request leaving the app."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    outside: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: None if request.url.startswith(base) else outside.append(request.url))
    return page, errors, outside


def test_overview_shows_the_demo_shop(demo: tuple[str, Flask], browser: t.Any) -> None:
    """The overview shows KPIs, the server-drawn chart with per-day titles, the funnel and top advocates."""
    base, _ = demo
    page, errors, outside = _page(browser, base)
    page.goto(f"{base}/demo/admin")

    assert page.get_by_role("heading", name="Referral program").is_visible()
    revenue = page.locator(".kpi", has_text="Referral revenue").locator(".value").inner_text()
    assert revenue.split()[0] not in ("0.00", "")
    chart = page.locator("svg.chart")
    assert chart.get_attribute("role") == "img"
    assert chart.locator("g.day").count() == 30
    # Each day's title reads e.g. "Oct 25: 1 click, 0 signups, 0 referred orders, 0.00 USD revenue" (the demo's
    # first day of the range holds whatever its random seed put there, one click included).
    day_title = chart.locator("g.day title").first.text_content() or ""
    assert re.fullmatch(r"\w{3} \d{1,2}: \d+ clicks?, \d+ signups?, \d+ referred orders?, [\d,.]+ [A-Z]{3} revenue",
                        day_title), day_title
    assert page.locator(".funnel li").count() == 5
    assert page.locator("section[aria-labelledby=advocates-heading] tbody tr").count() >= 1
    shot(page, "dashboard-overview-desktop.png")

    page.get_by_role("link", name="Last 90 days").click()
    page.wait_for_url("**start=*")
    assert page.locator("svg.chart g.day").count() == 90

    mobile, mobile_errors, _ = _page(browser, base, width=390)
    mobile.goto(f"{base}/demo/admin")
    assert mobile.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(mobile, "dashboard-overview-mobile.png")
    assert errors == [] and mobile_errors == []
    assert outside == []


def test_edit_the_default_campaign(demo: tuple[str, Flask], browser: t.Any) -> None:
    """Editing the default campaign shows a field error for a bad value, then saves a good one."""
    base, app = demo
    page, errors, _ = _page(browser, base)
    page.goto(f"{base}/demo/admin")
    page.locator("nav.tabs").get_by_role("link", name="Campaigns").click()
    page.locator("table.data tbody th a").first.click()
    page.wait_for_url("**/admin/campaigns/*")

    page.select_option("#friend_reward_kind", "percentage")
    page.fill("#friend_reward_value", "150")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    assert page.locator("#friend_reward_value-error").is_visible()
    assert page.locator("#friend_reward_value").get_attribute("aria-invalid") == "true"
    shot(page, "dashboard-campaign-error.png")

    page.fill("#friend_reward_value", "15")
    page.fill("#advocate_reward_value", "250")
    page.fill("#hold_days", "14")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**notice=campaign-saved*")
    assert page.get_by_role("status").inner_text() == "Campaign saved."
    assert page.locator("#advocate_reward_value").input_value() == "250"
    shot(page, "dashboard-campaign-saved.png")
    assert errors == []
    with app.app_context():
        campaign = db.session.scalars(db.select(Campaign).where(Campaign.is_default.is_(True))).one()
        assert (campaign.friend_reward_kind, int(campaign.friend_reward_value), campaign.hold_days) == (
            "percentage", 15, 14)


def test_approve_a_held_referral(demo: tuple[str, Flask], browser: t.Any) -> None:
    """Approving a held referral from the queue releases it and takes it off the queue."""
    base, app = demo
    with app.app_context():
        held_before = db.session.scalar(db.select(db.func.count()).where(Referral.status == ReferralStatus.HELD))
    assert held_before, "the demo seed should hold at least one referral for review"
    page, errors, _ = _page(browser, base)
    page.goto(f"{base}/demo/admin")
    page.locator("nav.tabs").get_by_role("link", name="Review").click()
    page.wait_for_url("**/admin/review*")
    shot(page, "dashboard-review-before.png")
    # A referral held only for review (no hold days left) is released on approval; one still inside its
    # return-window hold stays held by design, so pick the disposable-email one.
    first = page.locator(".review-item", has_text="disposable email").first
    referral_id = int(first.locator("input[name=ids]").get_attribute("value") or 0)
    first.get_by_role("button", name="Approve").click()
    page.wait_for_url("**notice=approved*")
    assert "Approved" in page.get_by_role("status").inner_text()
    assert page.locator(f".review-item input[value='{referral_id}']").count() == 0
    shot(page, "dashboard-review-after.png")
    assert errors == []
    with app.app_context():
        referral = db.session.get(Referral, referral_id)
        assert referral is not None and referral.status == ReferralStatus.REWARDED


def test_works_without_app_bridge(tmp_path: Path, browser: t.Any) -> None:
    """With real credentials but Shopify's CDN unreachable, the page still renders and its links work."""
    from tests.shopify_actions import API_KEY
    from tests.shopify_actions import session_token

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = installed_shop_app(tmp_path / "embedded.sqlite", base)
    with serve(app, app, port=port, threaded=True):
        page, errors, _ = _page(browser, base)
        blocked: list[str] = []
        page.route("https://cdn.shopify.com/**", lambda route: (blocked.append(route.request.url), route.abort()))
        page.goto(f"{base}/admin?id_token={session_token()}")
        assert page.locator('meta[name="shopify-api-key"]').get_attribute("content") == API_KEY
        assert blocked == ["https://cdn.shopify.com/shopifycloud/app-bridge.js"]
        assert page.get_by_role("heading", name="Referral program").is_visible()
        page.locator("nav.tabs").get_by_role("link", name="Settings").click()
        page.wait_for_url("**/admin/settings*")
        assert page.get_by_role("heading", name="Settings").is_visible()
        shot(page, "dashboard-no-app-bridge.png")
        assert errors == []
