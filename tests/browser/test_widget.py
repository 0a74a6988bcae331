"""The widget in a real Chromium: a live server plays both the app and a Shopify storefront in front of it.

The storefront side mimics what Shopify does: ``/apps/referrals/*`` is signed afresh and forwarded to
``/proxy/*`` (Liquid pages get wrapped in a theme layout, or not with ``{% layout none %}``), ``/cart/update.js``
records cart attributes, and ordinary pages load ``widget.js`` as the theme app embed would.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from urllib.parse import quote
from urllib.parse import urlencode

import pytest
from flask import Flask
from werkzeug.test import Client
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response

from referral_plugin import create_app
from referral_plugin.extensions import db
from referral_plugin.models import Campaign
from referral_plugin.models import Customer
from referral_plugin.models import Invitation
from referral_plugin.models import Referral
from referral_plugin.models import ReferralCode
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import ensure_default_campaign
from referral_plugin.referrals.codes import get_or_create_code
from referral_plugin.referrals.customers import upsert_customer
from referral_plugin.referrals.ledger import grant_referral_rewards
from tests.browser.conftest import free_port
from tests.browser.conftest import serve
from tests.browser.conftest import shot
from tests.conftest import make_shop
from tests.shopify_actions import API_KEY
from tests.shopify_actions import API_SECRET
from tests.shopify_actions import SHOP
from tests.shopify_actions import proxy_signature

pytestmark = pytest.mark.browser

CUSTOMER_ID = 7001

THEME_LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Test Shop</title>
<style>
  body {{ margin: 0; font-family: Georgia, 'Times New Roman', serif; color: #1d1b19; background: #fbf8f3; }}
  header, footer {{ padding: 1rem 1.25rem; background: #1d1b19; color: #fbf8f3; }}
  header a {{ color: inherit; text-decoration: none; font-weight: bold; letter-spacing: .04em; }}
  main {{ padding: 1rem; max-width: 72rem; margin: 0 auto; }}
</style></head>
<body><header><a href="/">TEST SHOP</a></header><main>{body}</main><footer>© Test Shop</footer>
{scripts}</body></html>"""


@dataclass
class Storefront:
    """The live server's state: its URL and the cart updates it received."""

    url: str = ""
    cart_updates: list[dict[str, t.Any]] = field(default_factory=list)
    customer_id: int | None = CUSTOMER_ID


def _render_like_shopify(body: str) -> str:
    """Do what Shopify does with an application/liquid answer; our pages carry no Liquid but this one tag."""
    layout_none = body.startswith("{% layout none %}")
    if layout_none:
        body = body[len("{% layout none %}"):]
    assert "{{" not in body and "{%" not in body, "the widget must not carry Liquid"
    return body if layout_none else THEME_LAYOUT.format(body=body, scripts="")


def _storefront_wsgi(app: Flask, front: Storefront) -> t.Callable[..., t.Any]:
    """Return the WSGI app of the fake storefront, forwarding the app proxy and static files to ``app``."""
    backend = Client(app)

    @Request.application  # type: ignore[arg-type]
    def handle(request: Request) -> Response:
        path = request.path
        if path.startswith("/static/"):
            inner = backend.get(path, buffered=True)
            inner.close()
            return Response(inner.get_data(), status=inner.status_code, headers=dict(inner.headers))
        if path.startswith("/apps/referrals/"):
            pairs = [(k, v) for k, v in request.args.items(multi=True)]
            pairs += [("shop", SHOP), ("logged_in_customer_id", str(front.customer_id or "")),
                      ("path_prefix", "/apps/referrals"), ("timestamp", str(int(time.time())))]
            pairs.append(("signature", proxy_signature(pairs, API_SECRET)))
            target = "/proxy/" + path[len("/apps/referrals/"):] + "?" + urlencode(pairs, quote_via=quote)
            headers = {k: v for k, v in request.headers.items()
                       if k.lower() in ("content-type", "accept", "origin", "x-referral-token", "user-agent")}
            headers["X-Forwarded-For"] = "203.0.113.9"
            inner = backend.open(target, method=request.method, data=request.get_data(), headers=headers,
                                 buffered=True)
            inner.close()
            if inner.mimetype == "application/liquid":
                html = _render_like_shopify(inner.get_data(as_text=True))
                return Response(html, status=inner.status_code, mimetype="text/html")
            return Response(inner.get_data(), status=inner.status_code, headers=dict(inner.headers))
        if path == "/cart/update.js" and request.method == "POST":
            front.cart_updates.append(json.loads(request.get_data() or b"{}"))
            attributes = front.cart_updates[-1].get("attributes", {})
            return Response(json.dumps({"token": "cart-1", "attributes": attributes}), mimetype="application/json")
        if path == "/pages/refer":
            # A theme page with the section block as the extension renders it.
            block = ('<div class="rp-block rp-block-member" data-rp-src="/apps/referrals/widget?view=fragment"'
                     ' aria-busy="true"><p class="rp-block-fallback">'
                     '<a href="/apps/referrals/widget">Refer a friend</a></p></div>')
            scripts = '<link rel="stylesheet" href="/static/widget.css"><script src="/static/widget.js" defer></script>'
            return Response(THEME_LAYOUT.format(body=block, scripts=scripts), mimetype="text/html")
        if path == "/" or path.startswith("/products/"):
            scripts = '<script src="/static/widget.js" defer></script>'
            body = "<h1>Linen shirt</h1><p>Soft, breathable, made to last.</p>"
            return Response(THEME_LAYOUT.format(body=body, scripts=scripts), mimetype="text/html")
        return Response("not found", status=404)

    return handle


def _seed_friends(shop: Shop, campaign: Campaign, advocate: Customer) -> None:
    """Give the advocate some history: a rewarded, a held, a rejected and a pending friend, and an invitation."""
    release = dt.datetime.now(dt.UTC) + dt.timedelta(days=12)
    story = [(8001, "Bo", "Chen", ReferralStatus.REWARDED, "QUALIFIED"),
             (8002, "Cy", None, ReferralStatus.HELD, "HOLD_PERIOD"),
             (8003, "Dee", "Park", ReferralStatus.REJECTED, "NOT_FIRST_ORDER"),
             (8004, "<b>Eve</b> {{ shop }}", None, ReferralStatus.PENDING, None)]
    for order, (shopify_id, first, last, status, reason) in enumerate(story, start=1):
        friend = upsert_customer(shop, shopify_id, email=f"f{shopify_id}@example.com", first_name=first,
                                 last_name=last)
        db.session.flush()
        referral = Referral(shop_id=shop.id, campaign_id=campaign.id, advocate_id=advocate.id, friend_id=friend.id,
                            source="cart_attribute", status=status, reason=reason,
                            shopify_order_id=order if status != ReferralStatus.PENDING else None,
                            hold_until=release if status == ReferralStatus.HELD else None)
        db.session.add(referral)
        db.session.flush()
        if status in (ReferralStatus.REWARDED, ReferralStatus.HELD):
            grant_referral_rewards(shop, referral, campaign, order_id=order, hold=status == ReferralStatus.HELD,
                                   available_at=release if status == ReferralStatus.HELD else None)
    db.session.add(Invitation(shop_id=shop.id, campaign_id=campaign.id, advocate_id=advocate.id, channel="email",
                              identifier="gus@example.com", name="Gus", source="widget"))


@pytest.fixture
def storefront(tmp_path: Path) -> Iterator[tuple[Storefront, Flask]]:
    """Run the app behind a fake storefront on a free loopback port; seed a shop and a customer."""
    port = free_port()
    front = Storefront(url=f"http://127.0.0.1:{port}")
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "browser-secret",
        "SHOPIFY_API_KEY": API_KEY,
        "SHOPIFY_API_SECRET": API_SECRET,
        "APP_URL": front.url,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'browser.sqlite'}",
        "HUEY_IMMEDIATE": True,
        "RATELIMIT_STORAGE_URI": "memory://",
    })
    with app.app_context():
        db.create_all()
        shop = make_shop()
        campaign = ensure_default_campaign(shop)
        customer = upsert_customer(shop, CUSTOMER_ID, email="ana@example.com", first_name="Ana", last_name="Lima")
        db.session.commit()
        get_or_create_code(shop, customer, campaign)
        _seed_friends(shop, campaign, customer)
        db.session.commit()
    with serve(_storefront_wsgi(app, front), app, port=port, threaded=False):
        yield front, app


def _code(app: Flask) -> str:
    with app.app_context():
        query = (db.select(ReferralCode.code).join(Customer, Customer.id == ReferralCode.customer_id)
                 .where(Customer.shopify_customer_id == CUSTOMER_ID))
        return str(db.session.scalars(query).one())


def test_copy_link_and_invite_friends_on_desktop(storefront: tuple[Storefront, Flask], browser: t.Any) -> None:
    """The widget loads through the proxy; Copy puts the invite link on the clipboard; the form shows results."""
    front, app = storefront
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=front.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{front.url}/apps/referrals/widget")
    code = _code(app)
    link = f"https://{SHOP}/apps/referrals/r/{code}"
    assert page.input_value("#rp-link") == link
    page.wait_for_selector("[data-rp-widget][data-rp-ready]")
    shot(page, "widget-desktop.png")

    page.get_by_role("button", name="Copy link").click()
    page.wait_for_function("document.querySelector('[data-rp-live]').textContent === 'Link copied'")
    assert page.evaluate("navigator.clipboard.readText()") == link

    page.fill("#rp-friends", "bea@example.com, not-an-email@")
    page.get_by_role("button", name="Send invitations").click()
    page.wait_for_selector(".rp-result-created")
    results = page.locator("[data-rp-results] li").all_inner_texts()
    assert len(results) == 2
    assert "bea@example.com" in results[0] and "Send it yourself" in results[0]
    assert "That doesn't look like an email address." in results[1]
    assert page.input_value("#rp-friends") == "not-an-email@"
    href = page.locator(".rp-result-created a").get_attribute("href")
    assert href.startswith("mailto:bea@example.com?")
    shot(page, "widget-invited-desktop.png")
    assert errors == []
    friends = page.locator(".rp-friends li").all_inner_texts()
    assert any("Bo C." in f and "rewarded" in f for f in friends)
    assert any("Dee P." in f and "only a first order counts" in f for f in friends)
    assert any("<b>Eve</b> {{ shop }}" in f for f in friends)
    assert page.locator("b", has_text="Eve").count() == 0
    context.close()


def test_mobile_layout_and_keyboard_copy(storefront: tuple[Storefront, Flask], browser: t.Any) -> None:
    """On a phone-sized screen the widget fits without horizontal scrolling, and Copy works from the keyboard."""
    front, app = storefront
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=front.url)
    page = context.new_page()
    page.goto(f"{front.url}/apps/referrals/widget")
    page.wait_for_selector("[data-rp-widget][data-rp-ready]")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.focus("#rp-link")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Copy link"
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('[data-rp-live]').textContent === 'Link copied'")
    shot(page, "widget-mobile.png")
    context.close()


def test_anonymous_visitor_sees_the_offer_and_login(storefront: tuple[Storefront, Flask], browser: t.Any) -> None:
    """A logged-out shopper sees the offer and a login link that returns to the widget."""
    front, _app = storefront
    front.customer_id = None
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{front.url}/apps/referrals/widget")
    assert page.get_by_role("heading", level=2).inner_text() == "Give 50 points, get 100 points"
    login = page.get_by_role("link", name="Log in")
    assert login.get_attribute("href") == "/account/login?return_url=%2Fapps%2Freferrals%2Fwidget"
    shot(page, "widget-anonymous-mobile.png")
    context.close()


def test_ref_from_the_url_is_written_to_the_cart(storefront: tuple[Storefront, Flask], browser: t.Any) -> None:
    """widget.js on any page keeps ?ref= and writes it to the cart as attributes[referral_code], once per session."""
    front, _app = storefront
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{front.url}/?ref=abcd2345")
    page.wait_for_function("window.ReferralWidget && window.ReferralWidget.ready")
    page.evaluate("window.ReferralWidget.ready")
    assert front.cart_updates == [{"attributes": {"referral_code": "ABCD2345"}}]
    page.goto(f"{front.url}/products/linen-shirt")
    page.evaluate("window.ReferralWidget.ready")
    assert len(front.cart_updates) == 1
    saved = page.evaluate("JSON.parse(localStorage.getItem('rp_ref')).c")
    assert saved == "ABCD2345"

    # A new session on this device (same localStorage, fresh sessionStorage) writes it to the new cart again.
    second = context.new_page()
    second.goto(f"{front.url}/products/linen-shirt")
    second.evaluate("window.ReferralWidget.ready")
    assert front.cart_updates[-1] == {"attributes": {"referral_code": "ABCD2345"}}
    assert len(front.cart_updates) == 2
    context.close()


def test_hostile_ref_is_ignored(storefront: tuple[Storefront, Flask], browser: t.Any) -> None:
    """A ``ref`` that is not a code shape is not stored or sent."""
    front, _app = storefront
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{front.url}/?ref=%3Cscript%3Ex%3C%2Fscript%3E")
    page.evaluate("window.ReferralWidget.ready")
    assert front.cart_updates == []
    assert page.evaluate("localStorage.getItem('rp_ref')") is None
    context.close()


def test_section_block_loads_the_widget_without_layout_shift(storefront: tuple[Storefront, Flask],
                                                             browser: t.Any) -> None:
    """The theme block fetches the widget fragment into reserved space; the page does not jump."""
    front, app = storefront
    context = browser.new_context(viewport={"width": 1024, "height": 900})
    page = context.new_page()
    page.add_init_script("""
      window.__cls = 0;
      new PerformanceObserver(list => {
        for (const e of list.getEntries()) if (!e.hadRecentInput) window.__cls += e.value;
      }).observe({type: 'layout-shift', buffered: true});
    """)
    page.goto(f"{front.url}/pages/refer")
    page.wait_for_selector(".rp-block [data-rp-widget][data-rp-ready]")
    assert page.input_value(".rp-block #rp-link").endswith(_code(app))
    page.wait_for_timeout(300)
    shot(page, "widget-section-block.png")
    cls = page.evaluate("window.__cls")
    assert cls < 0.1, cls
    context.close()


def test_an_ended_program_shows_its_end_and_no_invite_form(storefront: tuple[Storefront, Flask],
                                                          browser: t.Any) -> None:
    """After the campaign's end the widget says so and keeps the shopper's progress and pending rewards, but offers
    no link to share and no form for inviting friends into a program that can no longer reward them."""
    front, app = storefront
    with app.app_context():
        campaign = db.session.scalars(db.select(Campaign)).one()
        campaign.ends_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        db.session.commit()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{front.url}/apps/referrals/widget")
    page.wait_for_selector("[data-rp-widget][data-rp-ready]")
    assert page.get_by_text("This program ended").is_visible()
    assert page.locator("form[data-rp-invite]").count() == 0
    assert page.get_by_role("heading", name="Your referrals").is_visible()
    assert page.locator("#rp-link").count() == 0 and page.get_by_role("button", name="Copy link").count() == 0
    assert page.get_by_text("Pending rewards").is_visible()
    shot(page, "widget-ended-desktop.png")
    assert errors == []
    page.close()
