"""Audit of the dashboard and widget pages in a real Chromium, at a desktop and a phone width.

The demo app (seeded through its own webhooks) runs on a loopback port; ``/demo/admin`` and ``/demo/widget``
stand in for Shopify admin and the storefront's app proxy. Screenshots land in ``tests/artifacts/``.
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from referral_plugin import apikeys
from referral_plugin import create_app
from referral_plugin.demo.seed import seed_demo
from referral_plugin.extensions import db
from referral_plugin.models import Shop
from tests.browser.conftest import ARTIFACTS
from tests.browser.conftest import free_port
from tests.browser.conftest import installed_shop_app
from tests.browser.conftest import serve
from tests.browser.conftest import shot

pytestmark = pytest.mark.browser

PHONE = 390
TABS = ("Overview", "Referrals", "Review", "Campaigns", "Settings")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Flask]]:
    """Run the seeded demo app on a free loopback port, once for this module (the pages only read it)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app({
        "TESTING": True,
        "APP_URL": base,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path_factory.mktemp('audit') / 'audit.sqlite'}",
        "HUEY_IMMEDIATE": True,
        "RATELIMIT_STORAGE_URI": "memory://",
    })
    with app.app_context():
        db.create_all()
    seed_demo(app, echo=lambda line: None)
    with app.app_context():
        shop = db.session.scalars(db.select(Shop)).one()
        apikeys.create_key(shop, "Klaviyo sync", actor="test")
        apikeys.create_key(shop, "Warehouse integration for the autumn catalogue", actor="test")
        db.session.commit()
    with serve(app, app, port=port, threaded=True):
        yield base, app


def shot_path(name: str) -> Path:
    """Return where a cropped screenshot goes in ``tests/artifacts/``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def _page(browser: t.Any, width: int) -> tuple[t.Any, list[str]]:
    """Open a page of ``width`` pixels that records script errors."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


def _overflow(page: t.Any) -> int:
    """Return how many pixels the document is wider than the window (0 when it fits)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


@pytest.mark.parametrize("width", [1280, PHONE])
def test_every_dashboard_tab_fits_the_window(demo: tuple[str, Flask], browser: t.Any, width: int) -> None:
    """No dashboard tab scrolls sideways, on a desktop or a phone; wide tables scroll inside their card."""
    base, _ = demo
    page, errors = _page(browser, width)
    page.goto(f"{base}/demo/admin")
    for tab in TABS:
        if tab != "Overview":
            with page.expect_navigation():
                page.locator("nav.tabs").get_by_role("link", name=tab).click()
        page.wait_for_load_state("load")
        shot(page, f"audit-dash-{tab.lower()}-{width}.png")
        assert _overflow(page) <= 1, f"{tab} is {_overflow(page)}px wider than a {width}px window"
    assert errors == []


@pytest.mark.parametrize("width", [1280, PHONE])
def test_chart_axis_labels_are_readable(demo: tuple[str, Flask], browser: t.Any, width: int) -> None:
    """The overview chart's axis labels render at least 8 px tall on a desktop and on a phone."""
    base, _ = demo
    page, errors = _page(browser, width)
    page.goto(f"{base}/demo/admin")

    heights = page.evaluate(
        "Array.from(document.querySelectorAll('svg.chart text.axis')).map(t => t.getBoundingClientRect().height)")

    page.locator("svg.chart").screenshot(path=str(shot_path(f"audit-chart-{width}.png")))
    assert heights and min(heights) >= 8, heights
    assert errors == []


@pytest.mark.parametrize("width", [1280, PHONE])
def test_widget_invitations_read_right(demo: tuple[str, Flask], browser: t.Any, width: int) -> None:
    """A mixed batch shows each friend with its words: the number with its '+', words that are neither, a repeat."""
    base, _ = demo
    page, errors = _page(browser, width)
    customer = 7100000000003 if width == PHONE else 7100000000004
    page.goto(f"{base}/demo/widget?customer={customer}")
    page.wait_for_selector("[data-rp-widget][data-rp-ready]")

    def send(text: str) -> list[str]:
        page.fill("#rp-friends", text)
        page.get_by_role("button", name="Send invitations").click()
        page.wait_for_function("!document.querySelector('form[data-rp-invite]').hasAttribute('aria-busy')")
        return [item.replace("\n", " ") for item in page.locator("[data-rp-results] li").all_inner_texts()]

    invited = int(page.locator("[data-rp-stat=invited]").inner_text())
    first = send(f"amy{width}@example.com\nana.example.com\n+1 415 555 {width:04d}")
    assert int(page.locator("[data-rp-stat=invited]").inner_text()) == invited + 2
    assert first[1].startswith("ana.example.com ")
    assert "That doesn't look like an email address or mobile number." in first[1]
    assert first[2].startswith(f"+1415555{width:04d}")
    page.locator("form[data-rp-invite]").screenshot(path=str(shot_path(f"audit-widget-invite-{width}.png")))

    again = send(f"amy{width}@example.com")
    assert "You've already invited this friend." in again[0]
    assert int(page.locator("[data-rp-stat=invited]").inner_text()) == invited + 2
    many = send(", ".join(f"f{n}.{width}@example.com" for n in range(11)))
    assert many == ["Invite at most 10 friends at a time."]
    assert _overflow(page) <= 1
    shot(page, f"audit-widget-{width}.png")
    assert errors == []


@pytest.mark.parametrize("width", [1280, PHONE])
def test_a_fresh_shop_shows_empty_states(tmp_path: Path, browser: t.Any, width: int) -> None:
    """Right after install, every tab renders its empty state with zeros, no 'nan' or 'None', and fits the window."""
    from tests.shopify_actions import session_token

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = installed_shop_app(tmp_path / "fresh.sqlite", base)
    with serve(app, app, port=port, threaded=True):
        page, errors = _page(browser, width)
        page.route("https://cdn.shopify.com/**", lambda route: route.abort())
        for path in ("/admin", "/admin/referrals", "/admin/review", "/admin/campaigns", "/admin/settings"):
            response = page.goto(f"{base}{path}?id_token={session_token()}")
            assert response is not None and response.status == 200, path
            text = page.inner_text("main")
            for junk in ("nan", "None", "NaN", "undefined", "inf"):
                assert f" {junk} " not in f" {text} ".replace("\n", " "), (path, junk)
            assert _overflow(page) <= 1, path
            shot(page, f"audit-fresh{path.replace('/', '-')}-{width}.png")
        assert errors == []
